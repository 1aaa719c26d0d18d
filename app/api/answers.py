"""What EstimateService adds around the LLM: the ensemble's answer (app.ensemble.service) and the
comparables (app.index.service), kept out of app/api/serving.py so that it stays about the request.

- `answer(...)`: the ensemble's answers when one is loaded (the LLM is one member, called through
  the caller's leased `llm_call`), else the LLM's own.
- `comparables(...)`: the k most similar indexed items per request item; a request that asks for
  them on a service without an index is a 409 problem (`comparables-unavailable`), never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

from app.api.errors import ProblemError
from app.api.schemas import EstimateRequest
from app.engine.base import EngineDeadError
from app.ensemble.service import Answer, EnsembleService, NoMembersAnswered
from app.items import Item

# llm_call(only=None): the LLM's (estimates, adapter label); with only=LABEL it raises
# app.ensemble.service.OtherAdapter, without running the engine, when another version is leased.
LlmCall = Callable[..., Awaitable[tuple[list, str | None]]]


def member_item(body: EstimateRequest, text: str) -> Item:
    """The request as an item for the saved members: the same text the LLM gets (its first line is
    the title, as in curated items), the category, and the details as curated items hold them."""
    title = text.partition("\n")[0].strip() or (body.title or "").strip() or "item"
    details = json.dumps(body.details) if body.details else None
    return Item(title=title, category=body.category, price=1.0, text=text, details=details)


def _passthrough() -> tuple[type[BaseException], ...]:
    from app.adapters.manager import AdapterUnavailableError, UnknownAdapterError

    # The client's mistakes (an unknown or rejected pin) and a dead engine keep their own answers.
    return (ProblemError, EngineDeadError, UnknownAdapterError, AdapterUnavailableError)


async def answer(ensemble: EnsembleService | None, bodies: Sequence[EstimateRequest], texts: Sequence[str],
                 llm_call: LlmCall) -> list[Answer]:
    if ensemble is None:
        estimates, label = await llm_call()
        return [Answer(e.price, e.low, e.high, label) for e in estimates]
    items = [member_item(body, text) for body, text in zip(bodies, texts, strict=True)]
    try:
        return await ensemble.answer(items, llm_call, _passthrough())
    except NoMembersAnswered as e:
        raise ProblemError(503, "No estimate", f"{e}; retry later", type="no-estimate", headers={"Retry-After": "5"}) from None


def no_index_problem() -> ProblemError:
    return ProblemError(
        409, "Comparables unavailable",
        "this service has no index of priced items (build one with `pricer index build --data ...`, then restart);"
        " ask with comparables=0",
        type="comparables-unavailable",
    )


def require_index(service, bodies: Sequence[EstimateRequest]) -> None:
    """Before any work: comparables asked of a service without an index is the client's 409."""
    if service is None and any(body.comparables for body in bodies):
        raise no_index_problem()


async def comparables(service, bodies: Sequence[EstimateRequest], texts: Sequence[str]) -> list[list | None]:
    """Per item: its comparables (a list) when it asked for k > 0, else None. One embedding batch per k."""
    found: list[list | None] = [None] * len(bodies)
    by_k: dict[int, list[int]] = {}
    for index, body in enumerate(bodies):
        if body.comparables:
            by_k.setdefault(body.comparables, []).append(index)
    if not by_k:
        return found
    require_index(service, bodies)
    for k, indices in by_k.items():
        results = await service.alookup_many([texts[i] for i in indices], k)
        for index, result in zip(indices, results, strict=True):
            found[index] = [c.model_dump() for c in result]
    return found


class Extras:
    """What start-up loads once the engine is up (off the event loop): the ensemble and the index."""

    def __init__(self, ensemble: EnsembleService | None = None, reason: str = "not loaded yet", comparables=None):
        self.ensemble, self.reason, self.comparables = ensemble, reason, comparables

    @classmethod
    def load(cls, settings, ensemble_folder=None) -> Extras:
        """Sync and slow (models, the index): run it in a worker thread. Never raises for a missing
        or broken bundle or index: each is logged and the service runs without it. `ensemble_folder`:
        the bundle version to serve (app.ensemble.manager chooses it), else the newest."""
        from app.ensemble.service import load_ensemble
        from app.index.service import index_from_settings

        ensemble, reason = load_ensemble(settings, ensemble_folder)
        return cls(ensemble, reason, index_from_settings(settings))

    def describe(self) -> dict:
        """GET /v1/ensemble: which bundle and members answer, which are missing and why."""
        index = self.comparables.describe() if self.comparables is not None else None
        if self.ensemble is None:
            return {"estimator": "llm", "ensemble": None, "reason": self.reason, "loaded": ["llm"], "missing": {},
                    "members": [], "index": index}
        return {**self.ensemble.describe(), "index": index}

    async def close(self) -> None:
        if self.ensemble is not None:
            await self.ensemble.close()
