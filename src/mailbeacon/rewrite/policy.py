"""What the rewriter may change: the per-campaign tracking policy."""

from __future__ import annotations

from dataclasses import dataclass

# App-store links: iOS universal links and Android app links stop opening the app when the
# click goes through a redirect, so these are never rewritten.
DEFAULT_EXCLUDED_DOMAINS: tuple[str, ...] = (
    "apps.apple.com",
    "itunes.apple.com",
    "testflight.apple.com",
    "play.google.com",
)


@dataclass(frozen=True)
class TrackingPolicy:
    track_clicks: bool = True
    track_opens: bool = True
    # Lower-case hosts (may include ":port") that serve our tracking URLs.
    tracking_hosts: frozenset[str] = frozenset()
    # A link whose host equals or is a subdomain of one of these is left alone.
    excluded_domains: tuple[str, ...] = DEFAULT_EXCLUDED_DOMAINS
    scam_prevention: bool = True
