"""HTTP-layer tests on the fake engine: a real app (real middleware, routes, adapter manager on an
empty store) served in-process through httpx's ASGI transport."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine


@pytest.fixture
def store(tmp_path):
    base = tmp_path / "base" / "fake"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")  # enough for the manager's base fingerprint
    return tmp_path


@pytest.fixture
def make_service(store):
    """`async with make_service(engine=..., wait=True, **settings) as (client, app):`"""

    @asynccontextmanager
    async def factory(engine: FakeEngine | None = None, wait: bool = True, **overrides):
        values = dict(
            models_dir=store, base_model=str(store / "base" / "fake"), watch_adapters=False, default_adapter=None
        )
        values.update(overrides)
        settings = Settings(**values)
        engine = engine or FakeEngine(model_dir=store / "base" / "fake")
        app = create_app(settings, engine)
        async with app.router.lifespan_context(app):
            if wait:
                await app.state.lifecycle.wait_ready()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pricer.test") as client:
                yield client, app

    return factory


@pytest.fixture
async def service(make_service):
    async with make_service() as pair:
        yield pair


@pytest.fixture
def client(service):
    return service[0]
