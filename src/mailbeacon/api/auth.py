"""Bearer API keys: each key belongs to exactly one account, and every query is scoped to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailbeacon.api.services import Services
from mailbeacon.store.accounts import Account, account_for_api_key
from mailbeacon.tracking.ingest import catch_up, enricher_from

_bearer = HTTPBearer(auto_error=False, description="An API key made by `mailbeacon init` or the API.")


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def current_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "missing API key: send `Authorization: Bearer API_KEY`", headers=challenge)
    with services(request).store.read() as conn:
        account = account_for_api_key(conn, credentials.credentials)
    if account is None:
        raise HTTPException(401, "invalid or revoked API key", headers=challenge)
    # Whatever this request reads next counts every tracking hit answered before it arrived.
    found = services(request)
    catch_up(found.store, enricher_from(found.settings))
    return account


AccountDep = Annotated[Account, Depends(current_account)]
ServicesDep = Annotated[Services, Depends(services)]
