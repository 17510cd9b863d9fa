"""The mail client, platform, browser and OS behind a user agent (and `X-Requested-With`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ua_parser import Domain, Result, load_lazy_builtins
from ua_parser.basic import Resolver as BasicResolver

from mailbeacon.enrich.known import (
    ANDROID_APPS,
    BROWSER_FAMILIES,
    CLIENT_FAMILIES,
    CLIENT_TOKENS,
    WEBVIEW_FAMILIES,
    Platform,
)

try:  # ua-parser's regex extension (a Rust matcher): some 20 times faster than the pure-Python one.
    from ua_parser.regex import Resolver
except ImportError:  # pragma: no cover - the extension is a dependency, this is a safety net
    Resolver = BasicResolver  # type: ignore[assignment, misc]

DEVICE_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class Device:
    """What a user agent tells. `client` is the mail client when it can be told; `platform` is where the
    mail was read: a desktop client, webmail (a browser), a mobile app, or unknown."""

    client: str | None = None
    platform: Platform = "unknown"
    browser: str | None = None  # the agent as ua-parser names it, with its major version
    os: str | None = None
    device: str | None = None
    app: str | None = None  # the Android app's package, from X-Requested-With
    bot: bool = False  # ua-parser knows it as a crawler or bot

    @property
    def is_browser(self) -> bool:
        return self.platform == "webmail"


NO_DEVICE = Device()

_resolver = functools.cache(lambda: Resolver(load_lazy_builtins()))


def _named(family: str | None, major: str | None) -> str | None:
    if family is None or family == "Other":
        return None
    return f"{family} {major}" if major else family


def _from_parse(user_agent: str, result: Result) -> Device:
    ua, os, hardware = result.user_agent, result.os, result.device
    family = ua.family if ua else None
    browser = _named(family, ua.major if ua else None)
    os_name = _named(os.family if os else None, os.major if os else None)
    device = hardware.family if hardware and hardware.family != "Other" else None
    bot = device == "Spider"
    client: str | None = None
    platform: Platform = "unknown"
    if family in CLIENT_FAMILIES:
        client, platform = CLIENT_FAMILIES[family]
    else:
        for pattern, name, where in CLIENT_TOKENS:
            if pattern.search(user_agent):
                client, platform = name, where
                break
    if client is None and family == "Edge" and ua is not None and ua.major and int(ua.major) < 79:
        # EdgeHTML stopped shipping as a browser in 2021; its engine lives on in Windows 10's Mail app,
        # which every parser takes for old Edge.
        client, platform = "Windows Mail", "desktop"
    if client is None:
        if family in BROWSER_FAMILIES:
            platform = "webmail"
        elif family in WEBVIEW_FAMILIES:
            platform = "mobile"  # an app's web view, the app unnamed
    return Device(client, platform, browser, os_name, device, None, bot)


@functools.lru_cache(maxsize=DEVICE_CACHE_SIZE)
def describe_agent(user_agent: str | None, requested_with: str | None = None) -> Device:
    """Describe the agent of a hit. Parses are cached by (user agent, X-Requested-With), bounded."""
    device = NO_DEVICE
    if user_agent:
        device = _from_parse(user_agent, _resolver()(user_agent, Domain.ALL).complete())
    app = (requested_with or "").strip()
    if not app or app == "XMLHttpRequest":
        return device
    if app in ANDROID_APPS:
        return Device(ANDROID_APPS[app], "mobile", device.browser, device.os, device.device, app, device.bot)
    # An unnamed app: a web view is that app; a browser that sends its own package stays a browser.
    platform: Platform = device.platform if device.is_browser else "mobile"
    return Device(device.client, platform, device.browser, device.os, device.device, app, device.bot)
