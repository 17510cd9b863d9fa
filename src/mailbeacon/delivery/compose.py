"""A stored copy made ready for the wire: tracked bodies, unsubscribe headers, VERP return path, DKIM."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailbeacon.delivery.dkim import DkimKeyError, DkimKeyring, sign
from mailbeacon.messages.mime import render_copy
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.store.messages import StoredMessage, StoredRecipient
from mailbeacon.tokens import TokenKind, TokenSigner

log = logging.getLogger(__name__)

RETURN_PATH_LOCAL = "bounces"
UNSUBSCRIBE_LOCAL = "unsubscribe"
DKIM_RECHECK_S = 5.0


@dataclass(frozen=True)
class OutgoingCopy:
    account_id: int
    message_id: int
    recipient_id: int
    envelope_from: str
    recipient: str
    data: bytes


def return_path(signer: TokenSigner, recipient_id: int, bounce_domain: str) -> str:
    return f"{RETURN_PATH_LOCAL}+{signer.sign(TokenKind.RETURN_PATH, recipient_id)}@{bounce_domain}"


def unsubscribe_address(signer: TokenSigner, recipient_id: int, bounce_domain: str) -> str:
    return f"{UNSUBSCRIBE_LOCAL}+{signer.sign(TokenKind.UNSUBSCRIBE, recipient_id)}@{bounce_domain}"


class Composer:
    def __init__(
        self,
        signer: Callable[[], TokenSigner],
        bounce_domain: str,
        dkim: DkimKeyring | Path | None,
        *,
        verp: bool = True,
    ) -> None:
        """``dkim``: a keyring, or the directory to keep one loaded from (new keys are picked up)."""
        self._signer = signer
        self.bounce_domain = bounce_domain
        self.verp = verp
        self._dkim_dir = dkim if isinstance(dkim, Path) else None
        self._dkim = dkim if isinstance(dkim, DkimKeyring) else None
        self._dkim_seen: float | None = None
        self._dkim_checked = 0.0

    @property
    def dkim(self) -> DkimKeyring | None:
        """Keys added by `mailbeacon dkim generate` are used without a restart (looked for every few s)."""
        if self._dkim_dir is None:
            return self._dkim
        now = time.monotonic()
        if self._dkim is None or now - self._dkim_checked > DKIM_RECHECK_S:
            self._dkim_checked = now
            try:
                changed: float | None = self._dkim_dir.stat().st_mtime
            except FileNotFoundError:
                changed = None
            if self._dkim is None or changed != self._dkim_seen:
                try:
                    self._dkim = DkimKeyring.from_directory(self._dkim_dir)
                except DkimKeyError:
                    # A bad file must not stop delivery: keep signing with the keys read before.
                    log.exception(
                        "could not read the DKIM keys in %s; keeping the previous ones", self._dkim_dir
                    )
                    self._dkim = self._dkim or DkimKeyring()
                self._dkim_seen = changed
        return self._dkim

    def compose(
        self, message: StoredMessage, recipient: StoredRecipient, links: Sequence[tuple[int, str]]
    ) -> OutgoingCopy:
        signer = self._signer()
        urls = TrackingUrls(
            signer,
            str(message.policy["tracking_base_url"]),
            path_preserving=bool(message.policy["path_preserving"]),
        )
        mailto = unsubscribe_address(signer, recipient.id, self.bounce_domain)
        data = render_copy(message, recipient, urls, links, unsubscribe_mailto=mailto)
        keyring = self.dkim
        if keyring is not None:
            key = keyring.key_for(message.from_email.rpartition("@")[2])
            if key is not None:
                data = sign(data, key)
        if message.origin == "smtp" and message.envelope_from == "":
            sender = ""  # a bounce or notice relayed with a null sender keeps it
        elif self.verp:
            sender = return_path(signer, recipient.id, self.bounce_domain)
        else:
            sender = message.envelope_from or message.from_email
        return OutgoingCopy(message.account_id, message.id, recipient.id, sender, recipient.email, data)
