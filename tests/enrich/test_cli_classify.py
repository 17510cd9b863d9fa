"""`mailbeacon classify` run as users run it: a real process, JSON out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import run_cli

DATA = Path(__file__).parent / "data"
IPINFO_NOTICE = (
    "IP address data powered by IPinfo (https://ipinfo.io), IPinfo Lite, licensed under CC BY-SA 4.0"
)


def classify(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(run_cli("classify", *args, env=env))
    return answer


def test_classify_explains_an_apple_privacy_prefetch() -> None:
    answer = classify(
        "--user-agent",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "--ip",
        "17.58.0.1",
    )
    assert answer["machine_class"] == "apple_privacy"
    assert answer["human"] is False
    assert (answer["country"], answer["asn"], answer["as_org"]) == ("US", 714, "Apple Inc.")
    assert (answer["client"], answer["platform"]) == ("Apple Mail", "unknown")
    assert any("AS714" in reason for reason in answer["evidence"])
    assert answer["attribution"] == [IPINFO_NOTICE]


def test_classify_reads_headers_method_and_kind() -> None:
    answer = classify(
        "--user-agent",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36"
        " (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36",
        "--header",
        "X-Requested-With: com.samsung.android.email.provider",
        "--ip",
        "::ffff:81.2.69.142",
    )
    assert (answer["client"], answer["platform"], answer["human"]) == ("Samsung Email", "mobile", True)
    assert answer["country"] == "GB"
    head = classify("--user-agent", "curl/8.5.0", "--method", "head", "--kind", "click", "--ip", "10.0.0.7")
    assert (head["machine_class"], head["country"], head["asn"]) == ("scanner", None, None)
    assert any(reason.startswith("HEAD request") for reason in head["evidence"])


def test_classify_without_a_user_agent() -> None:
    answer = classify("--ip", "66.249.84.1")
    assert (answer["machine_class"], answer["human"], answer["asn"]) == ("unknown", False, 15169)


def test_classify_with_geolite2_files_from_the_environment() -> None:
    env = {
        "MAILBEACON_GEOIP_DATABASE": str(DATA / "GeoLite2-Country-Test.mmdb"),
        "MAILBEACON_GEOIP_ASN_DATABASE": str(DATA / "GeoLite2-ASN-Test.mmdb"),
    }
    answer = classify("--user-agent", "Outlook-Android/2.0", "--ip", "81.2.69.142", env=env)
    assert (answer["country"], answer["client"], answer["platform"]) == ("GB", "Outlook", "mobile")
    assert answer["attribution"] == [
        "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
    ]
    google = classify("--user-agent", "Outlook-Android/2.0", "--ip", "1.0.0.1", env=env)
    assert (google["asn"], google["as_org"]) == (15169, "Google Inc.")
