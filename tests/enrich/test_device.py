"""Mail client and platform of real user agents, as the clients send them when they load images."""

from __future__ import annotations

import pytest

from mailbeacon.enrich.device import DEVICE_CACHE_SIZE, describe_agent

ANDROID_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "client", "platform"),
    [
        # Apple Mail on macOS and iOS load images with WebKit's bare user agent (no Safari/Version).
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
            "Apple Mail",
            "desktop",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Mobile/15E148",
            "Apple Mail",
            "mobile",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
            " Mobile/15E148",
            "Apple Mail",
            "mobile",
        ),
        # Outlook for Windows (Microsoft 365 and 2016, Word's rendering engine).
        ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)", "Outlook", "desktop"),
        (
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E;"
            " Microsoft Outlook 16.0.5413; ms-office; MSOffice 16)",
            "Outlook",
            "desktop",
        ),
        # Outlook for Mac, Outlook for iOS and Android (their own user agents, known to ua-parser's rules).
        ("MacOutlook/16.79.23111718 (Intelx64 Mac OS X 14.1 (Build 23B74))", "Outlook", "desktop"),
        ("Outlook-iOS/723.4027091.prod.iphone (4.2331.0)", "Outlook", "mobile"),
        ("Outlook-Android/2.0", "Outlook", "mobile"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
            "Thunderbird",
            "desktop",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.2",
            "Thunderbird",
            "desktop",
        ),
        # Image proxies: the client is known, whether the reader is on the web or in an app is not.
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "Gmail",
            "unknown",
        ),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "Yahoo Mail", "unknown"),
        # Windows 10/11 Mail renders with EdgeHTML and sends old Edge's user agent.
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
            "Windows Mail",
            "desktop",
        ),
        # Browsers: webmail, which one cannot be told.
        (CHROME_WINDOWS, None, "webmail"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            None,
            "webmail",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
            " Version/17.1 Safari/605.1.15",
            None,
            "webmail",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
            " Version/17.1 Mobile/15E148 Safari/604.1",
            None,
            "webmail",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", None, "webmail"),
        # An Android app's web view that does not say which app it is.
        (ANDROID_WEBVIEW, None, "mobile"),
        ("curl/8.5.0", None, "unknown"),
        ("Mozilla/5.0", None, "unknown"),
        (None, None, "unknown"),
    ],
)
def test_client_and_platform_of_real_user_agents(
    user_agent: str | None, client: str | None, platform: str
) -> None:
    device = describe_agent(user_agent)
    assert (device.client, device.platform) == (client, platform)


@pytest.mark.parametrize(
    ("package", "client"),
    [
        ("com.samsung.android.email.provider", "Samsung Email"),
        ("com.google.android.gm", "Gmail"),
        ("com.microsoft.office.outlook", "Outlook"),
        ("com.yahoo.mobile.client.android.mail", "Yahoo Mail"),
    ],
)
def test_x_requested_with_names_the_android_mail_app(package: str, client: str) -> None:
    device = describe_agent(ANDROID_WEBVIEW, package)
    assert (device.client, device.platform, device.app) == (client, "mobile", package)
    assert device.os == "Android 14"
    assert device.device == "Samsung SM-S918B"


def test_an_unknown_app_is_kept_and_a_browser_stays_a_browser() -> None:
    webview = describe_agent(ANDROID_WEBVIEW, "com.example.reader")
    assert (webview.client, webview.platform, webview.app) == (None, "mobile", "com.example.reader")
    browser = describe_agent(CHROME_WINDOWS, "XMLHttpRequest")
    assert (browser.platform, browser.app) == ("webmail", None)


def test_browser_and_os_are_named_with_major_versions() -> None:
    device = describe_agent(CHROME_WINDOWS)
    assert (device.browser, device.os, device.bot) == ("Chrome 131", "Windows 10", False)
    assert describe_agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").bot


def test_parses_are_cached_by_user_agent_and_bounded() -> None:
    describe_agent(CHROME_WINDOWS)
    before = describe_agent.cache_info()
    describe_agent(CHROME_WINDOWS)
    after = describe_agent.cache_info()
    assert after.hits == before.hits + 1
    assert after.maxsize == DEVICE_CACHE_SIZE
