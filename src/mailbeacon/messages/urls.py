"""The tracking URLs of one recipient copy."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from mailbeacon.tokens import TokenKind, TokenSigner

PATH_PRESERVING_PARAM = "_mb"


def host_of(base_url: str) -> str:
    return urlsplit(base_url).netloc.lower()


class TrackingUrls:
    """Builds open, click and unsubscribe URLs on one tracking base URL."""

    def __init__(self, signer: TokenSigner, base_url: str, *, path_preserving: bool = False) -> None:
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self.path_preserving = path_preserving

    @property
    def click_urls_need_no_escaping(self) -> bool:
        """True when click URLs are the base URL plus a token: nothing in them needs HTML escaping."""
        return not self.path_preserving and not any(c in self.base_url for c in "&<>\"'")

    def open_url(self, recipient_id: int) -> str:
        return f"{self.base_url}/o/{self.signer.sign(TokenKind.OPEN, recipient_id)}.gif"

    def unsubscribe_url(self, recipient_id: int) -> str:
        return f"{self.base_url}/u/{self.signer.sign(TokenKind.UNSUBSCRIBE, recipient_id)}"

    def click_urls(self, recipient_id: int, links: Mapping[str, int]) -> dict[str, str]:
        """Every tracked URL of one recipient: original URL -> click URL, for ``links`` (URL -> position)."""
        tokens = self.signer.sign_clicks(recipient_id, list(links.values()))
        if not self.path_preserving:
            base = f"{self.base_url}/c/"
            return {url: base + token for url, token in zip(links, tokens, strict=True)}
        return {url: self._click_url(token, url) for url, token in zip(links, tokens, strict=True)}

    def _click_url(self, token: str, original_url: str) -> str:
        if not self.path_preserving:
            return f"{self.base_url}/c/{token}"
        # The tracking host replaces the original host; path and query stay visible to the reader.
        parts = urlsplit(original_url)
        path = parts.path or "/"
        query = f"{parts.query}&" if parts.query else ""
        return f"{self.base_url}{path}?{query}{PATH_PRESERVING_PARAM}={token}"
