"""What the API's routes share: the store, the token keyring and the public base URL."""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.config import Settings
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.store import Store
from mailbeacon.tracking.keyring import Keyring


@dataclass
class Services:
    settings: Settings
    store: Store
    keyring: Keyring

    @property
    def base_url(self) -> str:
        return self.settings.resolved_public_base_url()

    def tracking_urls(self, policy: dict[str, object]) -> TrackingUrls:
        return TrackingUrls(
            self.keyring.current_signer(),
            str(policy["tracking_base_url"]),
            path_preserving=bool(policy["path_preserving"]),
        )
