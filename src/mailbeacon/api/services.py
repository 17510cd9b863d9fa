"""What the API's routes share: the store, the token keyring and the public base URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailbeacon.config import Settings
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.store import Store
from mailbeacon.tracking.keyring import Keyring


def _nothing() -> None:
    return None


@dataclass
class Services:
    settings: Settings
    store: Store
    keyring: Keyring
    on_queued: Callable[[], None] = _nothing  # wakes this process's delivery worker, if it runs one

    @property
    def base_url(self) -> str:
        return self.settings.resolved_public_base_url()

    def tracking_urls(self, policy: dict[str, object]) -> TrackingUrls:
        return TrackingUrls(
            self.keyring.current_signer(),
            str(policy["tracking_base_url"]),
            path_preserving=bool(policy["path_preserving"]),
        )
