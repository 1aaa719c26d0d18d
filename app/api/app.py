"""The FastAPI application factory.

`create_app(settings, engine=None)`: with no engine, the app builds one from the settings
(app.engine.factory.build_engine) in the background at startup and closes it at shutdown; an
engine passed in is started if needed but never closed by the app (tests share one engine).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.api.deps import require_ready
from app.api.errors import install_handlers
from app.api.lifecycle import Lifecycle
from app.api.middleware import ServiceMiddleware
from app.api.routes import estimate, health
from app.config import Settings
from app.engine.base import Engine

log = logging.getLogger(__name__)

DESCRIPTION = """Estimate a product's price from its description with a fine-tuned LLM served by vLLM.

Keys travel as `Authorization: Bearer <key>` (estimates: PRICER_API_KEY; adapter admin:
PRICER_ADMIN_KEY; unset: none needed). Every error is `application/problem+json`."""


def _secret(value) -> bytes | None:
    return value.get_secret_value().encode() if value is not None and value.get_secret_value() else None


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    lifecycle = Lifecycle(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        lifecycle.begin(app)
        try:
            yield
        finally:
            await lifecycle.shutdown()

    app = FastAPI(title="Pricer", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.lifecycle = lifecycle
    app.state.engine = engine
    app.state.adapters = None
    app.state.api_key = _secret(settings.api_key)
    app.state.admin_key = _secret(settings.admin_key)
    if app.state.admin_key is None and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("PRICER_ADMIN_KEY is unset and the service listens on %s: anyone can switch adapters", settings.host)

    install_handlers(app)
    app.add_middleware(ServiceMiddleware, max_inflight=settings.max_inflight, max_body_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(estimate.router)
    _include_admin_router(app)
    return app


def _include_admin_router(app: FastAPI) -> None:
    try:
        from app.api.routes.adapters import router as adapters_router
    except ImportError:  # the adapter admin API is not built yet
        log.warning("app.api.routes.adapters is missing: no adapter admin API")
        return
    # The router requires the admin key itself; it needs the manager, so not before startup is done.
    app.include_router(adapters_router, dependencies=[Depends(require_ready)])
