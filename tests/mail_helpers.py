"""Reading what mailbeacon produced the way a mail client would."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx

TRACKING_URL = re.compile(r"""https?://[^\s"'<>]+/(?:o|c|u)/[A-Za-z0-9_-]+(?:\.gif)?""")


def parse_mime(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_of(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def tracking_urls(text: str, kind: str) -> list[str]:
    return [u for u in TRACKING_URL.findall(text) if f"/{kind}/" in u]


def message_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"email": "news@sender.example", "name": "Sender News"},
        "to": [{"email": "ada@example.org", "name": "Ada"}, {"email": "bob@example.org"}],
        "subject": "Our November news",
        "html": (
            "<html><body><p>Hello!</p>"
            '<a href="https://shop.example.com/sale?x=1&amp;y=2#top">Sale</a> '
            '<a href="https://blog.example.com/post">Blog</a> '
            '<a href="mailto:help@sender.example">Help</a> '
            '<a href="{{mb_unsubscribe}}">Unsubscribe</a>'
            "</body></html>"
        ),
        "text": "Sale: https://shop.example.com/sale?x=1&y=2#top\nUnsubscribe: {{mb_unsubscribe}}\n",
        "campaign": "november",
        "tags": ["newsletter"],
        "metadata": {"crm_id": "42"},
    }
    body.update(overrides)
    return body


def create_message(client: httpx.Client | Any, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/messages", json=message_body(**overrides), headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def copy_of(
    client: httpx.Client | Any, auth: dict[str, str], message_id: int, recipient_id: int
) -> EmailMessage:
    response = client.get(f"/v1/messages/{message_id}/recipients/{recipient_id}/mime", headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("message/rfc822")
    return parse_mime(response.content)
