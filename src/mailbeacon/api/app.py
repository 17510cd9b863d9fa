"""The FastAPI application: routes, error shape, OpenAPI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mailbeacon import __version__
from mailbeacon.api.errors import install_error_handlers
from mailbeacon.api.routes import account, dmarc, events, inbound, messages, suppressions
from mailbeacon.api.routes import logs as log_routes
from mailbeacon.api.services import Services

STATIC_DIR = Path(__file__).parent / "static"
DESCRIPTION = """
Self-hosted email tracking. Authenticate with `Authorization: Bearer API_KEY`.
Every request sees only the data of the account its key belongs to.
"""


def create_api(services: Services) -> FastAPI:
    api = FastAPI(
        title="mailbeacon", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    api.state.services = services
    # Swagger UI is vendored so the docs work without reaching a CDN (mailbeacon runs offline too).
    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="mailbeacon API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    install_error_handlers(api)
    for module in (messages, events, suppressions, inbound, account, dmarc):
        api.include_router(module.router)
    api.include_router(log_routes.router)

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
