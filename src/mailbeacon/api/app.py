"""The FastAPI application: routes, error shape, OpenAPI."""

from __future__ import annotations

from fastapi import FastAPI

from mailbeacon import __version__
from mailbeacon.api.errors import install_error_handlers
from mailbeacon.api.routes import account, events, messages
from mailbeacon.api.services import Services

DESCRIPTION = """
Self-hosted email tracking. Authenticate with `Authorization: Bearer API_KEY`.
Every request sees only the data of the account its key belongs to.
"""


def create_api(services: Services) -> FastAPI:
    api = FastAPI(title="mailbeacon", version=__version__, description=DESCRIPTION, docs_url="/docs")
    api.state.services = services
    install_error_handlers(api)
    for module in (messages, events, account):
        api.include_router(module.router)

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
