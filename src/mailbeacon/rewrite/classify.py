"""Deciding whether a link is tracked, and if not, why."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from mailbeacon.rewrite.placeholders import contains_placeholder, contains_unsubscribe
from mailbeacon.rewrite.policy import TrackingPolicy
from mailbeacon.rewrite.urls import hostname, http_authority

SKIP_REASONS: Final = (
    "empty",
    "anchor",
    "mailto",
    "tel",
    "sms",
    "javascript",
    "not_http",
    "placeholder",
    "excluded_domain",
    "notrack",
    "scam_prevention",
    "already_tracked",
    "clicks_off",
    "unsubscribe",
)

_SCHEME: Final = re.compile(r"(?P<named>mailto|tel|sms|javascript):|https?://", re.IGNORECASE)


def url_reason(raw: str, url: str) -> str | None:
    """Why the value cannot be a tracked link whatever the policy; None if it can be.

    ``raw`` is the value as written (checked for the unsubscribe placeholder, which is
    replaced in the source text), ``url`` the decoded value stripped of whitespace.
    """
    if not url:
        return "empty"
    if contains_unsubscribe(raw):
        return "unsubscribe"
    if contains_placeholder(url):
        return "placeholder"
    if url[0] == "#":
        return "anchor"
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "not_http"
    named = scheme.group("named")
    if named:
        return named.lower()
    authority = http_authority(url)
    if authority is None or not hostname(authority[0]):
        return "not_http"
    return None


class LinkClassifier:
    """Applies one policy to the links of a document, caching repeated URLs."""

    def __init__(self, policy: TrackingPolicy) -> None:
        self._policy = policy
        domains = tuple(domain.lower() for domain in policy.excluded_domains)
        self._excluded = frozenset(domains)
        self._excluded_suffixes = tuple("." + domain for domain in domains)
        self._tracking_hosts = frozenset(host.lower() for host in policy.tracking_hosts)
        self._cache: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    def skip_reason(
        self,
        raw: str,
        url: str,
        *,
        notrack: bool = False,
        looks_like_scam: Callable[[], bool] | None = None,
    ) -> str | None:
        """The reason a link is not tracked, or None to track it.

        What the URL is (empty, placeholder, scheme ...) comes before the author's opt-out
        and where it points, so a report names the most basic cause; "clicks_off" is last
        because it only applies to links that would otherwise be tracked.
        ``looks_like_scam`` is called only when everything else allows tracking.
        """
        key = (raw, url)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = (url_reason(raw, url), self._destination_reason(url))
        kind_reason, destination_reason = cached
        if kind_reason is not None:
            return kind_reason
        if notrack:
            return "notrack"
        if destination_reason is not None:
            return destination_reason
        policy = self._policy
        if policy.scam_prevention and looks_like_scam is not None and looks_like_scam():
            return "scam_prevention"
        if not policy.track_clicks:
            return "clicks_off"
        return None

    def _destination_reason(self, url: str) -> str | None:
        authority = http_authority(url)
        if authority is None:
            return None
        host = authority[0]
        name = hostname(host)
        if name in self._excluded or name.endswith(self._excluded_suffixes):
            return "excluded_domain"
        if host in self._tracking_hosts:
            return "already_tracked"
        return None
