"""What the serving stack loads beside the engine: the ensemble bundle (app.ensemble.service) and
the comparables index (app.index.service). The answer built from them is app.pricing.core's."""

from __future__ import annotations

from app.ensemble.service import EnsembleService


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
                    "members": [], "promotion": None, "index": index}
        return {**self.ensemble.describe(), "index": index}

    async def close(self) -> None:
        if self.ensemble is not None:
            await self.ensemble.close()
