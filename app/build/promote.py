"""Promotion by measurement: a new bundle answers on every replica only when it measures better than
the active one on the same held-out items.

Both bundles' answers are nested out-of-fold on the new build's held-out (stacking) items, with the
same folds and seed (app.build.oof; the active bundle's through app.build.active), paired on item
keys, and scored in dollars.

The rule (`decide`), one of:

    if-better  promote only when the 95% paired bootstrap interval of (new - active) mean absolute
               error lies wholly below zero AND the new bundle's interval coverage on the held-out
               items is at least level - 0.05 (an 80% interval must cover at least 75%); with no
               active bundle at all, promote ("nothing active to compare against").
    always     promote, whatever the numbers (the reason still states them).
    never      do not promote (the reason still states the numbers).

The reason states the numbers, e.g. "new $97.10 vs active $99.20: -$2.10 [-$5.00, +$0.80] includes
zero: not better". `record` writes the measurement and the decision into the new bundle's
manifest.json (not hash-checked: Bundle.load checks the members and the stack only); `promote`
then writes the desired state's ensemble, which every replica hot-loads. Record first, so a replica
that loads the promoted bundle reads its promotion too.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.build.active import active_answers, active_oof, bundle_fingerprints, member_fingerprint
from app.build.oof import OOF_FILE, oof_rows, read_oof, recorded_oof, write_oof
from app.model.items import Item

__all__ = ["RULES", "Comparison", "ComparisonError", "Decision", "active_answers", "active_folder", "active_oof",
           "bundle_fingerprints", "compare", "decide", "member_fingerprint", "OOF_FILE", "oof_rows", "promote",
           "read_oof", "record", "recorded_oof", "write_oof"]

RULES = ("if-better", "always", "never")
COVERAGE_SLACK = 0.05  # if-better: coverage at least level minus this


class ComparisonError(ValueError):
    """Two sets of out-of-fold rows that are not on the same held-out items; the message says which."""


@dataclass(frozen=True)
class Comparison:
    """The new bundle against the active one on the same n held-out items (dollars, fractions)."""

    n: int
    new_mean_error: float
    active_mean_error: float
    difference: float  # new - active: negative = the new bundle is better
    difference_ci: tuple[float, float]  # 95% paired bootstrap interval of the difference
    new_coverage: float
    active_coverage: float
    new_hit_rate: float
    active_hit_rate: float
    level: float  # the intervals' nominal level
    new_rmsle: float | None = None
    active_rmsle: float | None = None
    rmsle_difference_ci: tuple[float, float] | None = None  # 95% paired bootstrap interval of new - active

    def to_dict(self) -> dict:
        return {**asdict(self), "difference_ci": list(self.difference_ci),
                "rmsle_difference_ci": list(self.rmsle_difference_ci) if self.rmsle_difference_ci else None}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def _paired(rows: Sequence[dict], keys: list[str], which: str) -> list[dict]:
    """`rows` in the order of `keys`; a key that occurs twice (two identical items) pairs in order."""
    queues: dict[str, deque] = defaultdict(deque)
    for row in rows:
        queues[row["item"]].append(row)
    out, missing = [], []
    for key in keys:
        if queues.get(key):
            out.append(queues[key].popleft())
        else:
            missing.append(key)
    extra = sum(len(q) for q in queues.values())
    if missing or extra:
        raise ComparisonError(
            f"the {which} out-of-fold answers are not on the {len(keys)} held-out items: {len(missing)} missing"
            f"{' (e.g. ' + missing[0] + ')' if missing else ''}, {extra} on other items; compute them on the same "
            "held-out file")
    return out


def compare(new_rows: Sequence[dict], active_rows: Sequence[dict], items: Sequence[Item], level: float) -> Comparison:
    """Pair both bundles' rows on the items' keys; every held-out item must be in both, nothing else."""
    from app.evaluation.bootstrap import coverage, paired_difference, paired_rmsle_difference
    from app.evaluation.metrics import score
    from app.evaluation.report import item_key

    if not items:
        raise ComparisonError("no held-out items to compare on")
    keys = [item_key(item) for item in items]
    new, active = _paired(new_rows, keys, "new"), _paired(active_rows, keys, "active")
    truths = [float(item.price) for item in items]
    errors = {name: [abs(float(r["guess"]) - t) for r, t in zip(rows, truths, strict=True)]
              for name, rows in (("new", new), ("active", active))}
    diff = paired_difference(errors["new"], errors["active"])

    def cover(rows):
        return coverage(truths, [float(r["low"]) for r in rows], [float(r["high"]) for r in rows])

    new_rmsle, active_rmsle, rmsle_ci = paired_rmsle_difference(
        truths, [float(r["guess"]) for r in new], [float(r["guess"]) for r in active])
    return Comparison(
        new_rmsle=new_rmsle, active_rmsle=active_rmsle, rmsle_difference_ci=rmsle_ci,
        n=len(items), new_mean_error=diff.mean_a, active_mean_error=diff.mean_b, difference=diff.difference,
        difference_ci=diff.ci, new_coverage=cover(new), active_coverage=cover(active),
        new_hit_rate=score(truths, [float(r["guess"]) for r in new]).hit_rate,
        active_hit_rate=score(truths, [float(r["guess"]) for r in active]).hit_rate, level=level)


def _signed(value: float) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):.2f}"


def _numbers(c: Comparison) -> str:
    low, high = c.difference_ci
    return (f"new ${c.new_mean_error:.2f} vs active ${c.active_mean_error:.2f}: {_signed(c.difference)} "
            f"[{_signed(low)}, {_signed(high)}]")


def rmsle_line(c: Comparison) -> str:
    """The same pairing in RMSLE (reported beside the rule, which decides on dollars)."""
    low, high = c.rmsle_difference_ci
    return f"RMSLE new {c.new_rmsle:.3f} vs active {c.active_rmsle:.3f}: {c.new_rmsle - c.active_rmsle:+.3f} [{low:+.3f}, {high:+.3f}]"


def decide(comparison: Comparison | None, rule: str, level: float) -> Decision:
    """The rule (module docstring) applied to the comparison (None: no active bundle at all)."""
    if rule not in RULES:
        raise ValueError(f"unknown promotion rule {rule!r} (one of {', '.join(RULES)})")
    numbers = "nothing active to compare against" if comparison is None else _numbers(comparison)
    if rule == "never":
        return Decision(False, f"{numbers}: rule never: not promoted")
    if rule == "always":
        return Decision(True, f"{numbers}: rule always: promoted")
    if comparison is None:
        return Decision(True, numbers)
    low, high = comparison.difference_ci
    if high >= 0:
        return Decision(False, f"{numbers} {'includes zero' if low <= 0 else 'wholly above zero'}: not better")
    floor = level - COVERAGE_SLACK
    cov = f"coverage {comparison.new_coverage * 100:.1f}%"
    if comparison.new_coverage < floor - 1e-9:
        return Decision(False, f"{numbers} wholly below zero, but {cov} < {floor * 100:.0f}% "
                               f"(a {level * 100:.0f}% interval): not promoted")
    return Decision(True, f"{numbers} wholly below zero, {cov} >= {floor * 100:.0f}%: better")


def record(bundle_folder: Path | str, comparison: Comparison | None, decision: Decision, rule: str,
           against_label: str | None) -> dict:
    """Add "promotion" to the bundle's manifest.json (read, add the key, atomic write); returns it."""
    from app.runtime.atomic import atomic_write_text

    path = Path(bundle_folder) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    promotion = {"rule": rule, "against": against_label, "promote": decision.promote, "reason": decision.reason,
                 "comparison": None if comparison is None else comparison.to_dict(),
                 "decided_at": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_text(path, json.dumps({**manifest, "promotion": promotion}, indent=2) + "\n")
    return promotion


def promote(models_dir: Path | str, name: str, version: str, by: str = "pricer build"):
    """Make <models_dir>/ensembles/<name>/<version> every replica's ensemble (the desired state's
    next generation, as `pricer fleet activate ensemble` writes it); returns the state written."""
    from app.versions import desired
    from app.versions.folders import is_safe_name

    folder = Path(models_dir) / "ensembles" / name / version
    if not (is_safe_name(name) and is_safe_name(version)) or not (folder / "manifest.json").is_file():
        raise FileNotFoundError(f"no ensemble version {name}@{version} in {Path(models_dir) / 'ensembles'}")
    return desired.update(Path(models_dir), ensemble=(name, version), by=by)


def active_folder(models_dir: Path | str, name: str, exclude: str | None = None) -> Path | None:
    """The bundle the fleet answers with: the desired state's ensemble when chosen and present, else
    the newest finished version of `name` other than `exclude` (what the default `latest` policy
    serves when nothing is chosen); None when there is none."""
    from app.ensemble.bundle import find_bundles
    from app.versions import desired

    chosen = desired.read(Path(models_dir)).ensemble
    if chosen is not None and (Path(models_dir) / "ensembles" / chosen[0] / chosen[1] / "manifest.json").is_file():
        return Path(models_dir) / "ensembles" / chosen[0] / chosen[1]
    versions = [p for p in find_bundles(Path(models_dir) / "ensembles", name) if p.name != exclude]
    return versions[-1] if versions else None
