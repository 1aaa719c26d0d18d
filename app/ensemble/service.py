"""The ensemble as the service's answer (PRICER_ESTIMATOR=ensemble, the default).

At start-up (`load_ensemble(settings)`, sync: the app runs it in a worker thread) the newest
finished bundle is loaded leniently: a member that is missing or does not match (a knn member whose
index was never built on this machine, a saved estimator that cannot load or fails its warm-up) is
recorded with the reason and the service runs with the members it has. No bundle at all, or no
member left: the LLM alone answers, and GET /v1/ensemble says why.

Per request (`EnsembleService.answer`), the saved members (sklearn/skops, the llm-head, knn) run in
worker threads (app.ensemble.runner) and the `llm` member through the engine the service already
leases, all concurrently, each bounded by PRICER_MEMBER_TIMEOUT_S. A member that fails or times out
is left out of that answer (logged, counted in pricer_member_left_out_total) and the bundle's stack
fitted for exactly the members that answered combines the rest, with the interval of the item's
richness class (app.model.richness: title, short, full) where the bundle has one per class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.engine.cpu_binding import member_placement
from app.ensemble.bundle import Bundle, BundleError, find_bundles
from app.ensemble.combine import NoMembersError
from app.ensemble.external import is_content_member, is_endpoint_member, load_content_member, load_endpoint_member
from app.ensemble.member_text import TextCut, member_text_cutter
from app.ensemble.runner import MemberLeftOut, MemberRunner, left_out, observe
from app.model.items import Item
from app.model.richness import richness

log = logging.getLogger("pricer.ensemble")

DEFAULT_NAME = "pricer-ensemble"
LLM_MEMBER = "llm"
PROBE = Item(title="Probe", price=1.0, text="Probe\nA small probe item that warms up the ensemble's members.")


@dataclass
class Answer:
    """One item's served answer: the point and interval, the adapter that answered (the LLM), and
    each member's price (None: left out) when the ensemble answered. `seconds`: each member's wall
    time on the call that priced this item (queueing included; shared by the call's items)."""

    price: float
    low: float
    high: float
    adapter: str | None
    components: dict[str, float | None] | None = None
    seconds: dict[str, float] | None = None
    richness: str | None = None  # the item's class, which chose its interval (app.model.richness)


# Items one member time-out covers: PRICER_MEMBER_TIMEOUT_S was sized on 16 requests in flight.
TIMEOUT_ITEMS = 16


@dataclass
class EnsembleService:
    bundle: Bundle
    runners: dict[str, MemberRunner]
    llm: str | None  # the member the engine answers for, if the bundle has one
    missing: dict[str, str] = field(default_factory=dict)  # member -> why it is not served
    timeout_s: float = 5.0
    llm_label: str | None = None  # the adapter version the stack was fitted on (name@version), if known
    text_cut: TextCut | None = None  # the members' text as curated (app/ensemble/member_text.py); None: whole
    in_flight: int = 0  # answers running now: a swapped-out bundle is closed once none are left (app/ensemble/manager.py)

    @property
    def label(self) -> str:
        return self.bundle.label

    def describe(self) -> dict:
        rows = []
        for row in self.bundle.manifest["members"]:
            name = row["name"]
            status = "missing" if name in self.missing else "loaded"
            rows.append({"name": name, "kind": row["kind"], "status": status, "reason": self.missing.get(name),
                         **({"ref": row.get("ref")} if row["kind"] == "external" else {})})
        return {
            "estimator": "ensemble", "ensemble": self.label, "path": str(self.bundle.path),
            "level": self.bundle.ensemble.level, "member_timeout_s": self.timeout_s,
            "loaded": [r["name"] for r in rows if r["status"] == "loaded"],
            "missing": dict(self.missing), "members": rows, "interval": self.bundle.ensemble.intervals(),
            "promotion": self.bundle.manifest.get("promotion"),  # `pricer build`'s measurement, if it promoted this
        }

    async def answer(
        self,
        items: Sequence[Item],
        llm_call: Callable[..., Awaitable[tuple[list, str | None]]],
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> list[Answer]:
        """Every member on `items` at once; `llm_call()` prices them with the leased adapter and
        returns (PriceEstimate list, adapter label); when the stack was fitted on one adapter version
        it is called as `llm_call(only=label)` and raises OtherAdapter for any other. Exceptions in `passthrough` (the client's
        mistakes, a dead engine) are raised as they are; any other failure leaves a member out."""
        self.in_flight += 1
        try:
            return await self._answer(items, llm_call, passthrough)
        finally:
            self.in_flight -= 1

    async def _answer(self, items, llm_call, passthrough) -> list[Answer]:
        names = list(self.runners)
        timeout_s = self.timeout_for(len(items))
        member_items = await asyncio.to_thread(self._member_items, items) if self.text_cut and names else items
        calls = [self.runners[n].predict(member_items, timeout_s) for n in names]
        if self.llm is not None:
            names.append(self.llm)
            calls.append(self._llm(llm_call, len(items), passthrough, timeout_s))
        seconds: dict[str, float] = {}
        results = await asyncio.gather(*(_timed(n, c, seconds) for n, c in zip(names, calls, strict=True)),
                                       return_exceptions=True)
        prices: dict[str, list[float] | None] = {}
        adapter = None
        for name, result in zip(names, results, strict=True):
            if isinstance(result, passthrough):
                raise result
            if isinstance(result, MemberLeftOut):
                prices[name] = None
            elif isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                left_out(name, "error", f"{type(result).__name__}: {result}")
                prices[name] = None
            elif name == self.llm:
                prices[name], adapter = result
            else:
                prices[name] = result
        return [self._combine(i, prices, adapter, seconds, richness(item)) for i, item in enumerate(items)]

    def _member_items(self, items: Sequence[Item]) -> list[Item]:
        """The items with their text cut for the members (tokenising: a worker thread, not the loop)."""
        return [i.model_copy(update={"text": self.text_cut(i.text)}) for i in items]

    def timeout_for(self, count: int) -> float:
        """The member time-out for a request of `count` items: the setting per TIMEOUT_ITEMS items
        (a batch of 32 is as much work for the LLM as 32 single requests in flight)."""
        return self.timeout_s * max(1.0, count / TIMEOUT_ITEMS)

    async def _llm(self, llm_call, count: int, passthrough, timeout_s: float) -> tuple[list[float], str | None]:
        started = time.perf_counter()
        try:
            # The stack's weights are for the fitted version's answers (a service without an index
            # serves the adapter trained without comparables): only= makes the call check the leased
            # version first and raise OtherAdapter, the engine never running for an unused answer.
            call = llm_call(only=self.llm_label) if self.llm_label is not None else llm_call()
            estimates, label = await asyncio.wait_for(call, timeout=timeout_s)
        except OtherAdapter as e:
            raise left_out(self.llm, "other-adapter", f"{e.label} is serving, the stack was fitted on {self.llm_label}") from None
        except TimeoutError:
            raise left_out(self.llm, "timeout", f"over {timeout_s:g} s") from None
        except passthrough:
            raise
        except Exception as e:
            raise left_out(self.llm, "error", f"{type(e).__name__}: {e}") from None
        finally:
            observe(self.llm, time.perf_counter() - started)
        if len(estimates) != count:
            raise left_out(self.llm, "error", f"{len(estimates)} answers for {count} items")
        return [e.price for e in estimates], label

    def _combine(self, i: int, prices: dict[str, list[float] | None], adapter: str | None,
                 seconds: dict[str, float], klass: str) -> Answer:
        components = {m: (None if prices.get(m) is None else _round(prices[m][i])) for m in self.bundle.ensemble.members}
        raw = {m: (None if prices.get(m) is None else prices[m][i]) for m in prices}
        try:
            combined = self.bundle.ensemble.combine_full(raw, klass)
        except NoMembersError:
            raise NoMembersAnswered(f"no member of {self.label} answered ({', '.join(prices)} all left out)") from None
        used = set(combined.members)
        components = {m: (p if m in used else None) for m, p in components.items()}
        llm_answered = self.llm is not None and self.llm in used
        return Answer(combined.price, combined.low, combined.high, adapter if llm_answered else None, components, seconds,
                      klass)

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.runners.values()), return_exceptions=True)


class OtherAdapter(Exception):
    """Raised by an `llm_call(only=label)` whose leased adapter is not `label`, before the engine
    runs: the stack would leave that answer out anyway, so it is never computed."""

    def __init__(self, label: str | None):
        super().__init__(f"{label} is the adapter serving")
        self.label = label


class NoMembersAnswered(RuntimeError):
    """Every member failed on one request (the service answers 503)."""


async def _timed(name: str, call: Awaitable, seconds: dict[str, float]):
    """Await one member's call, recording its wall time in `seconds` whatever the outcome."""
    started = time.perf_counter()
    try:
        return await call
    finally:
        seconds[name] = time.perf_counter() - started


def _round(price: float | None) -> float | None:
    return None if price is None else round(float(price), 2)


def bundle_folder(settings) -> Path | None:
    """PRICER_ENSEMBLE_DIR (a version folder, or a root holding versions), else the newest finished
    version under <models_dir>/ensembles/pricer-ensemble/."""
    root = Path(settings.ensemble_dir) if settings.ensemble_dir else Path(settings.models_dir) / "ensembles" / DEFAULT_NAME
    if (root / "manifest.json").is_file():
        return root
    versions = find_bundles(root.parent, root.name)
    return versions[-1] if versions else None


def load_ensemble(settings, folder: Path | None = None) -> tuple[EnsembleService | None, str]:
    """(the service, "") or (None, why the LLM alone answers). Sync and slow (loads models): run it
    off the event loop. Never raises for a missing or broken bundle. `folder`: this bundle version
    (app/ensemble/manager.py chooses it), else `bundle_folder(settings)`."""
    if settings.estimator != "ensemble":
        return None, "PRICER_ESTIMATOR=llm: the LLM alone answers"
    folder = folder or bundle_folder(settings)
    if folder is None:
        why = (f"no ensemble bundle under {settings.ensemble_dir or Path(settings.models_dir) / 'ensembles' / DEFAULT_NAME}"
               " (`pricer ensemble fit` writes one): the LLM alone answers")
        log.warning("ensemble disabled: %s", why)
        return None, why
    try:
        bundle = Bundle.load(folder, models_dir=settings.models_dir, strict=False)
    except (BundleError, OSError, KeyError, json.JSONDecodeError) as e:
        why = f"bundle {folder} cannot be served ({e}): the LLM alone answers"
        log.error("ensemble disabled: %s", why)
        return None, why
    service = EnsembleService(bundle, {}, None, dict(bundle.unavailable), settings.member_timeout_s,
                              text_cut=member_text_cutter(settings))
    for row in bundle.manifest["members"]:
        name = row["name"]
        if name in service.missing:
            continue
        if is_llm_member(row):
            if name == LLM_MEMBER or str(row.get("ref") or "").startswith("adapters/"):
                service.llm, service.llm_label = name, fitted_adapter_label(row)
            else:
                service.missing[name] = "an external member the service cannot run"
            continue
        runner, why = _load_member(bundle, row, settings)
        if runner is None:
            service.missing[name] = why
        else:
            service.runners[name] = runner
    if not service.runners and service.llm is None:
        why = f"bundle {bundle.label}: no member can be served ({service.missing}): the LLM alone answers"
        log.error("ensemble disabled: %s", why)
        return None, why
    for name, reason in service.missing.items():
        log.warning("ensemble %s: member %s is left out of every answer: %s", bundle.label, name, reason)
    log.info("ensemble %s serving members %s", bundle.label, [*service.runners, *([service.llm] if service.llm else [])])
    return service, ""


def member_estimator(bundle: Bundle, row: dict, settings):
    """The estimator a member row (other than the LLM) names: knn over this machine's index
    (app/ensemble/external.py), the frontier model where an endpoint is configured, else the saved
    folder in the bundle. BundleError when it cannot be had here."""
    from app.estimators.base import EstimatorOptions, create

    if is_content_member(row):
        return load_content_member(row, settings)
    if is_endpoint_member(row):
        return load_endpoint_member(row, settings)
    return create(str(bundle.member_folder(row["name"])), EstimatorOptions(settings=settings))


def is_llm_member(row: dict) -> bool:
    """An external member served by the engine (the LLM's adapter), not loaded as an estimator."""
    return row["kind"] == "external" and not is_content_member(row) and not is_endpoint_member(row)


def _load_member(bundle: Bundle, row: dict, settings) -> tuple[MemberRunner | None, str]:
    try:
        runner = MemberRunner(row["name"], member_estimator(bundle, row, settings), gather_s=settings.member_gather_ms / 1000,
                              placement=member_placement(row["name"], settings))
        runner.warm_up(PROBE)
    except BundleError as e:
        return None, str(e)
    except Exception as e:  # any estimator's load or warm-up failure: serve without it
        return None, f"cannot load or warm up: {type(e).__name__}: {e}"
    return runner, ""


def fitted_adapter_label(row: dict) -> str | None:
    """name@version of the adapter an external LLM member's ref names (adapters/<name>/<version>)."""
    parts = str(row.get("ref") or "").strip("/").split("/")
    return f"{parts[1]}@{parts[2]}" if len(parts) == 3 and parts[0] == "adapters" else None
