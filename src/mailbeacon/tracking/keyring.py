"""The token signer of this process, refreshed from the store when a token names a key it does not know."""

from __future__ import annotations

import asyncio
import time

from mailbeacon.store import Store
from mailbeacon.store.signing_keys import load_signing_keys
from mailbeacon.tokens import Token, TokenSigner

REFRESH_INTERVAL_S = 1.0
# How stale the signing key may get: after a rotation, every process signs with the new key within this.
SIGNING_MAX_AGE_S = 60.0


class Keyring:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.signer = self._load()
        self._last_refresh = time.monotonic()
        self._refreshing: asyncio.Future[None] | None = None

    def _load(self) -> TokenSigner:
        with self._store.read() as conn:
            keys = load_signing_keys(conn)
        if not keys:
            raise RuntimeError("the store has no signing key; run `mailbeacon init` or `mailbeacon migrate`")
        return TokenSigner(keys)

    def current_signer(self) -> TokenSigner:
        """For signing, from a worker thread (never the event loop): reloads when the keys are stale."""
        if time.monotonic() - self._last_refresh > SIGNING_MAX_AGE_S:
            self.reload()
        return self.signer

    def reload(self) -> None:
        self.signer = self._load()
        self._last_refresh = time.monotonic()

    async def verify_after_refresh(self, token: str) -> Token | None:
        """For a token the current keys reject: if it names a key this process has not seen yet."""
        parsed = TokenSigner.parse_unverified(token)
        if parsed is None or self.signer.knows(parsed[0].key_id):
            return None
        # A key added by another process (a rotation): look again, at most once a second.
        await self._refresh()
        return self.signer.verify(token)

    async def _refresh(self) -> None:
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        if time.monotonic() - self._last_refresh < REFRESH_INTERVAL_S:
            return
        self._refreshing = asyncio.get_running_loop().run_in_executor(None, self.reload)
        try:
            await asyncio.shield(self._refreshing)
        finally:
            self._refreshing = None
