"""Where the members' answers on the stacking rows come from.

    --member NAME            a registry estimator, fitted on the training file(s) (never on the
                             stacking rows), saved into the bundle
    --member NAME=DIR        a folder that `pricer fit` wrote (fitted on training data only), copied in
    --member-report NAME=FILE   precomputed answers: a per-item report from `pricer evaluate --report`
                             on the stacking file (e.g. the LLM's vLLM answers); the member itself
                             lives in the model store: `--member-ref NAME=PATH` (relative to the store)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.model.items import Item

# A bundle member's "fitted": where its weights came from. The manifest's data.train_used_by lists the
# members that read `ensemble fit --train` (READS_TRAIN), never a folder fitted before on its own data.
FITTED_HERE = "here, on --train"
FITTED_BEFORE = "before (a saved folder)"
FITTED_INDEX = "its index, built from --train"  # knn: app.ensemble.external.content_row
READS_TRAIN = frozenset({FITTED_HERE, FITTED_INDEX})


class MemberError(ValueError):
    """A member that cannot be used; the message says which and why."""


@dataclass
class MemberSource:
    name: str
    estimator: str | None = None  # registry name to fit
    folder: Path | None = None  # a saved, fitted estimator
    report: Path | None = None  # precomputed answers on the stacking rows
    ref: str | None = None  # external member: a folder under the model store


@dataclass
class MemberAnswers:
    name: str
    prices: list[float]
    saved: Path | None = None  # folder to copy into the bundle
    info: dict = field(default_factory=dict)


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise MemberError(f"{option} takes NAME=VALUE, got {value!r}")
        if name in out:
            raise MemberError(f"{option}: member {name!r} given twice")
        out[name] = rest
    return out


def parse_sources(members: Sequence[str], reports: Sequence[str], refs: Sequence[str]) -> list[MemberSource]:
    sources: dict[str, MemberSource] = {}
    for value in members:
        name, sep, folder = value.partition("=")
        source = MemberSource(name, folder=Path(folder)) if sep else MemberSource(name, estimator=name)
        if name in sources:
            raise MemberError(f"member {name!r} given twice")
        sources[name] = source
    for name, path in _pairs(reports, "--member-report").items():
        if name in sources:
            raise MemberError(f"member {name!r} given twice")
        sources[name] = MemberSource(name, report=Path(path))
    for name, ref in _pairs(refs, "--member-ref").items():
        if name not in sources or sources[name].report is None:
            raise MemberError(f"--member-ref {name}: only a --member-report member takes a reference")
        sources[name].ref = ref
    if not sources:
        raise MemberError("no members: give --member and/or --member-report")
    if "+" in "".join(sources):
        raise MemberError("member names cannot contain '+'")
    return list(sources.values())


def answers_from_report(source: MemberSource, items: Sequence[Item]) -> list[float]:
    from app.evaluation.compare import ReportError, legacy_key, load_report
    from app.evaluation.report import item_key

    try:
        rows = load_report(source.report)
    except ReportError as e:
        raise MemberError(f"member {source.name!r}: {e}") from None
    keys = [item_key(item) for item in items]
    if not any(k in rows for k in keys):  # a report written before rows carried `item`
        keys = [legacy_key(item.title, item.price) for item in items]
    missing = [k for k in keys if k not in rows]
    if missing or len(rows) != len(keys):
        raise MemberError(
            f"member {source.name!r}: report {source.report} is not on the stacking items "
            f"({len(missing)} of {len(keys)} items missing, {len(rows)} rows): evaluate it on the same --val file"
        )
    return [rows[k].guess for k in keys]


def report_facts(path: Path) -> dict:
    """A report member's answers, recorded by content: the file is usually scratch (a /tmp path at fit
    time), so its sha256 is what lets a later reader check a regenerated report against the bundle."""
    data = Path(path).read_bytes()
    return {"path": str(path), "rows": sum(1 for line in data.splitlines() if line.strip()),
            "sha256": hashlib.sha256(data).hexdigest()}


def member_answers(source: MemberSource, train: Sequence[Item], stacking: Sequence[Item], options,
                   workdir: Path) -> MemberAnswers:
    """The member's answers on the stacking rows; fitted on `train` only when it must be fitted."""
    from app.estimators.base import create
    from app.evaluation.runner import predict_all

    if source.report is not None:
        return MemberAnswers(source.name, answers_from_report(source, stacking), info={"report": report_facts(source.report)})
    started = time.perf_counter()
    estimator = create(str(source.folder) if source.folder else source.estimator, options)
    try:
        saved = source.folder
        if saved is None:
            if not train:
                raise MemberError(f"member {source.name!r} must be fitted: pass --train")
            estimator.fit(train)
            saved = workdir / source.name
            estimator.save(saved)
        fit_s = time.perf_counter() - started
        prices = predict_all(estimator, stacking, label=source.name)
    finally:
        estimator.close()
    fitted = FITTED_HERE if source.folder is None else FITTED_BEFORE
    return MemberAnswers(source.name, prices, saved, {"fit_seconds": round(fit_s, 2), "fitted": fitted})
