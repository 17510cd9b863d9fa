"""`mailbeacon prepare`: store a message for tracking and print each recipient's tracked HTML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mailbeacon.config import Settings
from mailbeacon.messages.content import Personaliser
from mailbeacon.messages.draft import Address, MessageDraft
from mailbeacon.messages.service import create_message
from mailbeacon.messages.urls import TrackingUrls
from mailbeacon.store import Store
from mailbeacon.store.accounts import Account
from mailbeacon.tracking.keyring import Keyring


def run_prepare(store: Store, account: Account, settings: Settings, options: dict[str, Any]) -> None:
    html = options["html_file"].read()
    text = options["text_file"].read() if options["text_file"] else None
    draft = MessageDraft(
        sender=Address(options["sender"]),
        to=tuple(Address(email) for email in options["recipients"]),
        subject=options["subject"],
        html=html,
        text=text,
        campaign=options["campaign"],
    )
    created = create_message(store, account, draft, settings.resolved_public_base_url())
    policy = created.policy
    urls = TrackingUrls(
        Keyring(store).signer,
        policy["tracking_base_url"],
        path_preserving=policy["path_preserving"],
    )
    personaliser = Personaliser(created.content, urls)
    out_dir: Path | None = options["out_dir"]
    if len(created.recipients) > 1 and out_dir is None:
        raise ValueError("several recipients: give --out-dir to get one file each")
    for recipient in created.recipients:
        copy = personaliser.render(recipient.id)
        if out_dir is None:
            sys.stdout.write(copy.html or "")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{recipient.id}-{recipient.email}.html"
        target.write_text(copy.html or "", encoding="utf-8")
    _report(created.id, created.content.links, created.content.skipped, created.recipients)


def _report(message_id: int, links: Any, skipped: Any, recipients: Any) -> None:
    err = sys.stderr
    err.write(f"message {message_id}: {len(links)} distinct links tracked")
    err.write(f", {len(skipped)} skipped\n" if skipped else "\n")
    for item in skipped:
        err.write(f"  skipped ({item.reason}) line {item.line} [{item.part}]: {item.url}\n")
    for recipient in recipients:
        if recipient.suppressed:
            err.write(f"  warning: {recipient.email} is suppressed in this account (id {recipient.id})\n")
