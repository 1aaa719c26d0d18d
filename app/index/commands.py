"""`pricer index build`. (`pricer index bench` is `pricer bench index`, app/bench/index.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_options import fail

index_cli = typer.Typer(help="Retrieval: a versioned ANN index of priced items (comparables, knn).", no_args_is_help=True)


@index_cli.command("build")
def build_command(
    data: Annotated[list[Path], typer.Option(help="Priced items JSONL; repeat to index several files.")],
    out: Annotated[Path, typer.Option(help="Index root; the version goes in a new folder below it.")] = Path("models/index"),
    embedder: Annotated[str, typer.Option(help="Embedder name (minilm: the packaged all-MiniLM-L6-v2).")] = "minilm",
    kind: Annotated[str, typer.Option(help="hnsw (approximate) or flat (exact).")] = "hnsw",
    m: Annotated[int, typer.Option(help="HNSW links per node.")] = 32,
    ef_construction: Annotated[int, typer.Option(help="HNSW build beam width.")] = 200,
    ef_search: Annotated[int, typer.Option(help="HNSW search beam width.")] = 128,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Build nothing when a version under --out was built with this embedder from exactly "
                                "these files (by content); `make index` uses it.")] = False,
) -> None:
    """Embed the items (title and text) and write models/index/<version>/ (manifest last; no pickle)."""
    from pydantic import ValidationError

    from app.index.ann import AnnParams
    from app.index.embedders import UnknownEmbedderError, get_embedder
    from app.index.manifest import IndexManifest, find_built_from, sha256_file
    from app.index.store import build_from_files
    from app.model.item_files import ItemsFileError

    if skip_existing:
        missing = [str(p) for p in data if not Path(p).is_file()]
        if missing:
            fail(f"data file not found: {', '.join(missing)}")
        folder, _ = find_built_from(out, embedder, [sha256_file(p) for p in data])
        if folder is not None:
            typer.echo(f"index: {folder} was built with {embedder} from these files; nothing to do", err=True)
            typer.echo(json.dumps({"index": str(folder), "items": IndexManifest.read(folder).count, "embedder": embedder,
                                   "skipped": True}))
            return
    try:
        params = AnnParams(kind=kind, m=m, ef_construction=ef_construction, ef_search=ef_search)
        chosen = get_embedder(embedder)
        folder = build_from_files(data, out, chosen, params, progress=True)
    except (FileNotFoundError, ItemsFileError, UnknownEmbedderError, ValidationError, ValueError) as e:
        fail(e)
    except RuntimeError as e:  # a missing extra (faiss, the embedder package)
        fail(e, code=1)
    typer.echo(json.dumps({"index": str(folder), "items": IndexManifest.read(folder).count, "embedder": embedder}))


def register(cli: typer.Typer) -> None:
    cli.add_typer(index_cli, name="index")
