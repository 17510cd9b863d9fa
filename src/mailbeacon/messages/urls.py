"""The tracking URLs of one recipient copy."""

from __future__ import annotations

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

    def open_url(self, recipient_id: int) -> str:
        return f"{self.base_url}/o/{self.signer.sign(TokenKind.OPEN, recipient_id)}.gif"

    def unsubscribe_url(self, recipient_id: int) -> str:
        return f"{self.base_url}/u/{self.signer.sign(TokenKind.UNSUBSCRIBE, recipient_id)}"

    def click_url(self, recipient_id: int, position: int, original_url: str) -> str:
        token = self.signer.sign(TokenKind.CLICK, recipient_id, position)
        if not self.path_preserving:
            return f"{self.base_url}/c/{token}"
        # The tracking host replaces the original host; path and query stay visible to the reader.
        parts = urlsplit(original_url)
        path = parts.path or "/"
        query = f"{parts.query}&" if parts.query else ""
        return f"{self.base_url}{path}?{query}{PATH_PRESERVING_PARAM}={token}"
