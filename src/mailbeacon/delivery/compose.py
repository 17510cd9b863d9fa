"""A stored copy made ready for the wire: tracked bodies, unsubscribe headers, VERP return path, DKIM."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailbeacon.delivery.dkim import DkimKeyring, sign
from mailbeacon.messages.content import Personaliser
from mailbeacon.messages.mime import list_unsubscribe, prepared_content, render_copy_mime
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.rewrite.mime import MimeSource
from mailbeacon.store.messages import StoredMessage, StoredRecipient
from mailbeacon.tokens import TokenKind, TokenSigner

RETURN_PATH_LOCAL = "bounces"
UNSUBSCRIBE_LOCAL = "unsubscribe"
# Headers of the submitted message that never reach the recipient: mailbeacon's own options, and
# Bcc (the envelope carries blind copies; the header would reveal them).
STRIPPED_HEADERS = ("X-Mailbeacon-*", "Bcc")
_SOURCE_CACHE = 64


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
        dkim: DkimKeyring | None,
        *,
        verp: bool = True,
    ) -> None:
        self._signer = signer
        self.bounce_domain = bounce_domain
        self.dkim = dkim
        self.verp = verp
        self._sources: OrderedDict[int, MimeSource] = OrderedDict()

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
        if message.source_mime is None:
            data = render_copy_mime(message, recipient, urls, links, unsubscribe_mailto=mailto)
        else:
            data = self._render_source(message, recipient, urls, links, mailto)
        if self.dkim is not None:
            key = self.dkim.key_for(message.from_email.rpartition("@")[2])
            if key is not None:
                data = sign(data, key)
        sender = (
            return_path(signer, recipient.id, self.bounce_domain)
            if self.verp
            else (message.envelope_from or message.from_email)
        )
        return OutgoingCopy(message.account_id, message.id, recipient.id, sender, recipient.email, data)

    def _render_source(
        self,
        message: StoredMessage,
        recipient: StoredRecipient,
        urls: TrackingUrls,
        links: Sequence[tuple[int, str]],
        mailto: str,
    ) -> bytes:
        source = self._source(message)
        positions = {url: position for position, url in links}
        copy = Personaliser(prepared_content(message), urls, positions).render(recipient.id)
        remove: list[str] = list(STRIPPED_HEADERS)
        add: list[tuple[str, str]] = []
        if message.track_unsubscribes:
            # Ours replaces any the sender set: the unsubscribe must reach mailbeacon to be honoured.
            remove += ["List-Unsubscribe", "List-Unsubscribe-Post"]
            add += [
                ("List-Unsubscribe", list_unsubscribe(copy.unsubscribe_url, mailto)),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
        return source.render(
            copy.html if source.html is not None else None,
            copy.text if source.text is not None else None,
            remove_headers=remove,
            add_headers=add,
        )

    def _source(self, message: StoredMessage) -> MimeSource:
        found = self._sources.get(message.id)
        if found is None:
            assert message.source_mime is not None
            found = MimeSource.parse(message.source_mime)
            self._sources[message.id] = found
            if len(self._sources) > _SOURCE_CACHE:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(message.id)
        return found
