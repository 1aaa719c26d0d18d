"""What the admin routes share about the desired state: the `?wait=true` query, answering with the
generation written (and, when asked, the fleet once it has converged), and the problems of a write."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated

from fastapi import Query

from app.api.errors import ProblemError
from app.fleet import view
from app.versions.desired import GenerationConflict, StateError

Wait = Annotated[bool, Query(description="Answer once every replica with a fresh heartbeat serves the new generation (or at timeout_s).")]
WaitTimeout = Annotated[float, Query(gt=0, le=300, description="With wait=true: seconds to wait at most.")]
IfGeneration = Annotated[int | None, Query(ge=0, description="Write only if the desired state is still at this generation (else 409).")]


@contextmanager
def desired_problems():
    """A compare-and-set that lost -> 409; a store that cannot take the write -> 503."""
    try:
        yield
    except GenerationConflict as e:
        raise ProblemError(409, "Generation conflict", f"{e}; read GET /v1/fleet and retry with that generation",
                           type="generation-conflict", generation=e.found.generation) from None
    except StateError as e:
        raise ProblemError(503, "Desired state not written", str(e), type="desired-state-unwritable") from None


async def answer(result: dict, lifecycle, wait: bool, timeout_s: float) -> dict:
    """`result` with `generation`; with wait, also `fleet` (the view once converged, or at time-out)."""
    fleet = lifecycle.fleet
    if fleet is not None:
        fleet.wake()
    if wait and result.get("generation") is not None:
        settings = lifecycle.settings
        result["fleet"] = await view.wait_converged(settings.models_dir, settings.fleet_stale_s, result["generation"], timeout_s)
        result["converged"] = result["fleet"]["converged"]
    return result
