"""A recipient's finished copy as an RFC 5322 message."""

from __future__ import annotations

from collections.abc import Sequence
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache

from mailbeacon.messages.content import (
    Personaliser,
    PreparedContent,
    prepare_content,
    prepared_key,
    recall_prepared,
    remember_prepared,
)
from mailbeacon.messages.service import rewrite_policy
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.rewrite.mime import MimeSource
from mailbeacon.store.messages import StoredMessage, StoredRecipient

# Headers of a submitted message that never reach the recipient: mailbeacon's own options, and
# Bcc (the envelope carries blind copies; the header would reveal them).
STRIPPED_HEADERS = ("X-Mailbeacon-*", "Bcc")


def prepared_content(message: StoredMessage) -> PreparedContent:
    # Scanning is deterministic, so the stored policy rebuilds exactly the link positions stored at creation.
    key = prepared_key(message.id, message.html, message.text, message.policy)
    found = recall_prepared(key)
    if found is None:
        found = prepare_content(message.html, message.text, rewrite_policy(message.policy))
        remember_prepared(key, found)
    return found


@lru_cache(maxsize=64)
def _source(message_id: int, source_mime: bytes) -> MimeSource:
    return MimeSource.parse(source_mime)


def render_copy(
    message: StoredMessage,
    recipient: StoredRecipient,
    urls: TrackingUrls,
    links: Sequence[tuple[int, str]],
    *,
    unsubscribe_mailto: str | None = None,
) -> bytes:
    """A copy as the recipient gets it: built from the stored bodies (API), or spliced into the MIME
    as received (SMTP), where every byte but the tracked bodies and a few headers stays as it was."""
    if message.source_mime is None:
        return render_copy_mime(message, recipient, urls, links, unsubscribe_mailto=unsubscribe_mailto)
    source = _source(message.id, message.source_mime)
    positions = {url: position for position, url in links}
    copy = Personaliser(prepared_content(message), urls, positions).render(recipient.id)
    remove: list[str] = list(STRIPPED_HEADERS)
    add: list[tuple[str, str]] = []
    if message.track_unsubscribes:
        # Ours replaces any the sender set: the unsubscribe must reach mailbeacon to be honoured.
        remove += ["List-Unsubscribe", "List-Unsubscribe-Post"]
        add += [
            ("List-Unsubscribe", list_unsubscribe(copy.unsubscribe_url, unsubscribe_mailto)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
    return source.render(
        copy.html if source.html is not None else None,
        copy.text if source.text is not None else None,
        remove_headers=remove,
        add_headers=add,
    )


def list_unsubscribe(url: str, mailto: str | None) -> str:
    return f"<{url}>" + (f", <mailto:{mailto}>" if mailto else "")


def _address(email: str, name: str | None) -> HeaderAddress:
    username, _, domain = email.rpartition("@")
    return HeaderAddress(display_name=name or "", username=username, domain=domain)


def render_copy_mime(
    message: StoredMessage,
    recipient: StoredRecipient,
    urls: TrackingUrls,
    links: Sequence[tuple[int, str]],
    *,
    unsubscribe_mailto: str | None = None,
) -> bytes:
    """``links`` are the message's stored (position, url) pairs: the ones its click redirects resolve.

    ``unsubscribe_mailto`` (an address) joins the https URL in List-Unsubscribe for mail that is sent.
    """
    positions = {url: position for position, url in links}
    copy = Personaliser(prepared_content(message), urls, positions).render(recipient.id)
    mail = EmailMessage(policy=SMTP)
    mail["From"] = _address(message.from_email, message.from_name)
    mail["To"] = _address(recipient.email, recipient.name)
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = recipient.message_id_header
    for name, value in message.headers.items():
        if name.lower() != "message-id":
            mail[name] = value
    if message.track_unsubscribes:
        # RFC 8058 one-click unsubscribe: mailbox providers POST to this URL.
        mail["List-Unsubscribe"] = list_unsubscribe(copy.unsubscribe_url, unsubscribe_mailto)
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if copy.text is not None and copy.html is not None:
        mail.set_content(copy.text)
        mail.add_alternative(copy.html, subtype="html")
    elif copy.html is not None:
        mail.set_content(copy.html, subtype="html")
    else:
        mail.set_content(copy.text or "")
    for part in mail.iter_parts():
        del part["MIME-Version"]  # add_alternative() stamps it on sub-parts, where it does not belong
    return mail.as_bytes()
