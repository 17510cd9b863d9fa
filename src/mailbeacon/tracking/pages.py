"""The small pages a recipient may see: unsubscribe confirmation and done, and an invalid link."""

from __future__ import annotations

from html import escape

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
  background:#f4f5f7;color:#1d2330}}
main{{max-width:32rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:12px;
  box-shadow:0 1px 3px #0002}}
h1{{font-size:1.4rem;margin:0 0 1rem}}
button{{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:8px;background:#1d4ed8;color:#fff;
  cursor:pointer}}
button:focus{{outline:3px solid #93c5fd}}
@media (max-width:36rem){{main{{margin:6vh 1rem}}}}
</style></head>
<body><main>{body}</main></body></html>
"""


def _page(title: str, body: str) -> bytes:
    return _PAGE.format(title=escape(title), body=body).encode()


def unsubscribe_confirm(action: str) -> bytes:
    return _page(
        "Unsubscribe",
        "<h1>Unsubscribe?</h1><p>You will no longer receive these emails.</p>"
        f'<form method="post" action="{escape(action)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


def unsubscribe_done() -> bytes:
    return _page(
        "Unsubscribed",
        "<h1>You are unsubscribed</h1><p>You will no longer receive these emails.</p>",
    )


def invalid_link() -> bytes:
    return _page(
        "Link not valid",
        "<h1>This link is not valid</h1><p>It may have been copied incompletely. "
        "Please use the link from the original email.</p>",
    )


def temporarily_unavailable() -> bytes:
    return _page("Try again", "<h1>Please try again</h1><p>This page is briefly unavailable.</p>")
