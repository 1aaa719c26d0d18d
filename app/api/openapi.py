"""The API's description for clients: the OpenAPI document (every error as application/problem+json
with the Problem schema, the bearer security scheme) and /docs served from local files, so the docs
work offline (Swagger UI's assets come from the swagger-ui-bundle-v2 package, not a CDN)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.staticfiles import StaticFiles

from app.api.errors import PROBLEM_JSON
from app.api.schemas import Problem

ASSETS = "/docs-assets"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(descriptions: dict[int, str]) -> dict[int, dict]:
    """`responses=` for a router: each status documented; the body schema is set by `install_docs`."""
    return {code: {"description": why} for code, why in descriptions.items()}


# The admin routers' (app/api/routes/: adapters, ensembles, fleet)
ADMIN_PROBLEMS = {401: "Missing or wrong admin key", 403: "No admin key set: loopback clients of a loopback-bound service only"}


def _problem_content(document: dict) -> dict:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
    return document


def install_docs(app: FastAPI) -> None:
    """Call with `FastAPI(docs_url=None)`: /docs from the packaged Swagger UI, a corrected OpenAPI."""
    import swagger_ui_bundle

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = _problem_content(document)
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
