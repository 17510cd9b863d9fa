"""What mailbeacon knows of email clients, proxies, scanners and their networks: lookup tables, no logic.

Sources: ua-parser's family names (ua-parser-builtins), the apps' Android package names as they send
them in `X-Requested-With`, and the networks' owners as the IPinfo Lite database names them.
"""

from __future__ import annotations

import re
from typing import Literal

Platform = Literal["desktop", "webmail", "mobile", "unknown"]

# ua-parser user agent family -> (email client, platform).
CLIENT_FAMILIES: dict[str, tuple[str, Platform]] = {
    "Apple Mail": ("Apple Mail", "desktop"),  # ua-parser's name for a bare AppleWebKit UA on a Mac
    "Mobile Safari UI/WKWebView": ("Apple Mail", "mobile"),  # the same on iOS: Mail's web view
    "Outlook": ("Outlook", "desktop"),
    "MacOutlook": ("Outlook", "desktop"),
    "Outlook-iOS": ("Outlook", "mobile"),
    "Outlook-iOS-Android": ("Outlook", "mobile"),
    "Windows Live Mail": ("Windows Live Mail", "desktop"),
    "Thunderbird": ("Thunderbird", "desktop"),
    "Airmail": ("Airmail", "desktop"),
    "Postbox": ("Postbox", "desktop"),
    "Barca": ("Barca", "desktop"),
    "Lotus Notes": ("Lotus Notes", "desktop"),
    "kmail2": ("KMail", "desktop"),
    "YahooMobileMail": ("Yahoo Mail", "mobile"),
    # Image proxies fetch for the reader, whether on the web or in an app: the platform is unknown.
    "GmailImageProxy": ("Gmail", "unknown"),
    "YahooMailProxy": ("Yahoo Mail", "unknown"),
}

# Mail clients ua-parser does not name, by a token of their user agent.
CLIENT_TOKENS: tuple[tuple[re.Pattern[str], str, Platform], ...] = (
    (re.compile(r"^Outlook-Android/"), "Outlook", "mobile"),
    (re.compile(r"\bMicrosoft Outlook\b|\bms-office\b"), "Outlook", "desktop"),
    (re.compile(r"\bSamsungEmail/|\bSamsung ?Email\b"), "Samsung Email", "mobile"),
    (re.compile(r"\bYahooMailProxy\b"), "Yahoo Mail", "unknown"),
)

# `X-Requested-With` of Android web views: the app that shows the mail.
ANDROID_APPS: dict[str, str] = {
    "com.google.android.gm": "Gmail",
    "com.samsung.android.email.provider": "Samsung Email",
    "com.microsoft.office.outlook": "Outlook",
    "com.yahoo.mobile.client.android.mail": "Yahoo Mail",
    "com.aol.mobile.aolapp": "AOL",
    "ch.protonmail.android": "Proton Mail",
    "me.proton.android.mail": "Proton Mail",
    "com.fsck.k9": "K-9 Mail",
    "net.thunderbird.android": "Thunderbird",
    "com.readdle.spark": "Spark",
    "com.easilydo.mail": "Edison Mail",
    "me.bluemail.mail": "BlueMail",
    "com.android.email": "Android Email",
    "com.huawei.email": "Huawei Email",
    "com.yandex.mail": "Yandex Mail",
    "ru.mail.mailapp": "Mail.ru",
    "de.gmx.mobile.android.mail": "GMX Mail",
    "de.web.mobile.android.mail": "WEB.DE Mail",
    "com.zoho.mail": "Zoho Mail",
    "com.tencent.androidqqmail": "QQ Mail",
}

# Browsers: a pixel loaded by one means the mail was read on the web.
BROWSER_FAMILIES = frozenset(
    {
        "Chrome",
        "Chromium",
        "HeadlessChrome",  # Chromium without a window: automation, and sandboxes caught by other rules
        "Chrome Mobile",
        "Chrome Mobile iOS",
        "Firefox",
        "Firefox Mobile",
        "Firefox iOS",
        "Safari",
        "Mobile Safari",
        "Edge",
        "Edge Mobile",
        "Opera",
        "Opera Mobile",
        "Samsung Internet",
        "Brave",
        "Vivaldi",
        "Yandex Browser",
        "UC Browser",
        "DuckDuckGo Mobile",
        "IE",
    }
)
WEBVIEW_FAMILIES = frozenset({"Chrome Mobile WebView"})

# Image proxies that fetch the pixel when a person opens the mail (the reader's IP and client stay hidden).
PROXY_AGENTS: tuple[tuple[re.Pattern[str], Literal["gmail_proxy", "other_proxy"], str], ...] = (
    (re.compile(r"GoogleImageProxy"), "gmail_proxy", "Gmail's image proxy (GoogleImageProxy)"),
    (re.compile(r"YahooMailProxy"), "other_proxy", "Yahoo Mail's image proxy (YahooMailProxy)"),
)

# Software that fetches links or images ahead of a reader: link previews, Office's link probes.
PREFETCH_AGENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Slackbot-LinkExpanding|Slack-ImgProxy"), "Slack's link preview"),
    (re.compile(r"facebookexternalhit|Facebot"), "Facebook's link preview"),
    (re.compile(r"WhatsApp/"), "WhatsApp's link preview"),
    (re.compile(r"TelegramBot"), "Telegram's link preview"),
    (re.compile(r"Discordbot"), "Discord's link preview"),
    (re.compile(r"Twitterbot"), "X/Twitter's link preview"),
    (re.compile(r"LinkedInBot"), "LinkedIn's link preview"),
    (re.compile(r"SkypeUriPreview"), "Skype/Teams link preview"),
    (
        re.compile(r"Microsoft Office Existence Discovery|Microsoft Office (Word|Excel|PowerPoint) \d"),
        "Microsoft Office checking a link before opening it",
    ),
)

# User agents of security gateways, sandboxes, HTTP libraries and command-line tools.
SCANNER_AGENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Barracuda"), "Barracuda's link scanner"),
    (re.compile(r"Mimecast", re.IGNORECASE), "Mimecast's link scanner"),
    (re.compile(r"Proofpoint", re.IGNORECASE), "Proofpoint's link scanner"),
    (re.compile(r"^(curl|Wget|HTTPie)/", re.IGNORECASE), "a command-line HTTP tool"),
    (
        re.compile(
            r"^(python-requests|python-urllib|Python-urllib|aiohttp|python-httpx|Go-http-client|Java/"
            r"|Apache-HttpClient|libwww-perl|node-fetch|axios|undici|PostmanRuntime|Ruby|Faraday)",
        ),
        "an HTTP library, not a mail client or browser",
    ),
)

# Networks that only machines fetch from: Apple's privacy relay for Mail (MPP) and the scanners of
# mail security vendors. Humans browse from Microsoft's cloud too (Windows 365, Azure Virtual
# Desktop), so its network counts only for agents that are not mail clients.
APPLE_ASNS = frozenset({714, 6185})
SCANNER_ASNS: dict[int, str] = {
    8075: "Microsoft Defender for Office 365 (Safe Links)",
    **dict.fromkeys((30031, 33538, 42427, 39588, 60492, 208638, 136792, 37235), "Mimecast"),
    **dict.fromkeys((52129, 26211, 22843, 13916), "Proofpoint"),
    15324: "Barracuda Networks",
    **dict.fromkeys((16417, 30238, 30215, 40427), "Cisco IronPort"),
    35289: "Symantec (Broadcom) Email Security",
    16880: "Trend Micro",
    **dict.fromkeys((17330, 46484), "Trellix"),
    33151: "Trustwave",
    **dict.fromkeys((13380, 53780, 59519), "Zix / AppRiver"),
    401943: "Hornetsecurity",
    399342: "Sophos",
    48328: "retarus",
    20317: "Abnormal Security",
}

# Request headers by which browsers announce a prefetch or preview rather than a visit (Sec-Purpose is
# the standard one; the others are older spellings), and the values that mean it.
PREFETCH_HEADERS = ("sec-purpose", "purpose", "x-purpose", "x-moz")
PREFETCH_VALUES = re.compile(r"prefetch|prerender|preview", re.IGNORECASE)
