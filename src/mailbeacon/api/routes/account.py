"""/v1/account: the account's tracking settings."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.schemas import AccountSettings, AccountSettingsPatch
from mailbeacon.store.accounts import Account, update_settings

router = APIRouter(prefix="/v1/account", tags=["account"])


def _out(account: Account) -> AccountSettings:
    return AccountSettings.model_validate(asdict(account))


@router.get("", response_model=AccountSettings, summary="Account settings")
def get_account_settings(account: AccountDep) -> AccountSettings:
    return _out(account)


@router.patch("", response_model=AccountSettings, summary="Change account settings")
def patch_account_settings(
    body: AccountSettingsPatch, account: AccountDep, services: ServicesDep
) -> AccountSettings:
    """Change only the fields given. `excluded_domains` replaces the whole list (the defaults included)."""
    changes = body.model_dump(exclude_unset=True)
    with services.store.write() as conn:
        return _out(update_settings(conn, account.id, changes))
