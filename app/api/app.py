"""The FastAPI application factory.

`create_app(settings, engine=None)`: with no engine, the app builds one from the settings
(app.engine.factory.build_engine: vLLM, or the fake engine with PRICER_ENGINE=fake) in the
background at startup and closes it at shutdown; an engine passed in is started if needed but never
closed by the app (tests share one engine).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.api.auth import is_loopback, secret_bytes
from app.api.deps import require_ready
from app.api.errors import install_handlers
from app.api.lifecycle import Lifecycle
from app.api.admission import LatencyAdmission
from app.api.middleware import ServiceMiddleware
from app.api.openapi import install_docs
from app.api.routes import ensemble, estimate, health
from app.config import Settings
from app.engine.base import Engine

log = logging.getLogger(__name__)

DESCRIPTION = """Estimate a product's price from its description with a fine-tuned LLM served by vLLM.

Keys travel as `Authorization: Bearer <key>` (estimates: PRICER_API_KEY, unset: none needed; admin:
PRICER_ADMIN_KEY, unset: admin routes answer only loopback clients of a loopback-bound service); use
**Authorize** to send one from this page. Every error is `application/problem+json`."""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    lifecycle = Lifecycle(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        lifecycle.begin()
        try:
            yield
        finally:
            await lifecycle.shutdown()

    app = FastAPI(title="Pricer", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None)
    # Read only by app/api/deps.py (typed dependencies) and the middleware below.
    app.state.settings = settings
    app.state.lifecycle = lifecycle
    app.state.api_key = secret_bytes(settings.api_key)
    app.state.admin_key = secret_bytes(settings.admin_key)
    if app.state.admin_key is None and not is_loopback(settings.host):
        log.warning("PRICER_ADMIN_KEY is unset and the service listens on %s: the admin routes refuse every client", settings.host)

    install_handlers(app)
    app.state.admission = LatencyAdmission(settings.admission_target, settings.admission_floor, settings.inflight_limit)
    app.add_middleware(ServiceMiddleware, max_inflight=settings.inflight_limit, max_body_bytes=settings.max_body_bytes,
                       keys={"pricer": app.state.api_key, "pricer-admin": app.state.admin_key},
                       per_client_share=settings.max_inflight_per_client, body_timeout_s=settings.body_timeout_s,
                       admission=app.state.admission, bind_host=settings.host)
    app.include_router(health.router)
    app.include_router(estimate.router)
    app.include_router(ensemble.router)
    _include_admin_router(app)
    install_docs(app)
    return app


def _include_admin_router(app: FastAPI) -> None:
    from app.api.routes.adapters import router as adapters_router
    from app.api.routes.ensembles import router as ensembles_router
    from app.api.routes.fleet import router as fleet_router

    # The router requires the admin key itself; it needs the manager, so not before startup is done.
    app.include_router(adapters_router, dependencies=[Depends(require_ready)])
    app.include_router(ensembles_router)
    app.include_router(fleet_router)  # the store's view: answers while this replica still loads
