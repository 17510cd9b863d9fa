"""The rewriter against real HTML emails and their expected-links manifest."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import escape
from typing import Any, Final
from urllib.parse import urlsplit

import pytest

from mailbeacon.rewrite import DEFAULT_EXCLUDED_DOMAINS, SlotKind, scan_html
from tests.rewrite.rewrite_support import (
    DATA_DIR,
    OPEN_URL,
    POLICY,
    UNSUBSCRIBE_URL,
    click_markers,
    pixel,
    read_source,
    reference_links,
    restore,
    with_pixel_before_last_body_end,
)

MANIFEST: Final[dict[str, Any]] = json.loads(
    (DATA_DIR / "expected" / "expected-links-manifest.json").read_text(encoding="utf-8")
)
TEMPLATES: Final = sorted(MANIFEST)
NO_SCAM_CHECK: Final = replace(POLICY, scam_prevention=False)
URL_LIKE_TEXT: Final = re.compile(r"(?:https?://)?(?:[\w-]+\.)+[a-z]{2,}(?:[/?#]\S*)?", re.I)


def _expected_tracked(link: dict[str, Any]) -> bool:
    if link["kind"] != "http":
        return False
    host = (urlsplit(link["href"].strip()).hostname or "").rstrip(".")
    return not any(host == d or host.endswith("." + d) for d in DEFAULT_EXCLUDED_DOMAINS)


def test_manifest_covers_every_copied_template() -> None:
    copied = {
        path.relative_to(DATA_DIR).as_posix()
        for path in DATA_DIR.glob("*/*.html")
        if path.parent.name != "mailbeacon-vml"
    }
    assert copied == set(MANIFEST)
    assert len(MANIFEST) == 24


@pytest.mark.parametrize("name", TEMPLATES)
def test_reference_parser_agrees_with_manifest(name: str) -> None:
    source = read_source(DATA_DIR / name)
    links = MANIFEST[name]["links"]
    assert [(r.tag, r.href, r.tag_line) for r in reference_links(source)] == [
        (link["tag"], link["href"], link["line"]) for link in links
    ]


@pytest.mark.parametrize("name", TEMPLATES)
def test_tracks_exactly_the_http_links(name: str) -> None:
    source = read_source(DATA_DIR / name)
    references = reference_links(source)
    links = MANIFEST[name]["links"]
    result = scan_html(source, NO_SCAM_CHECK)

    tracked = [(r, link) for r, link in zip(references, links, strict=True) if _expected_tracked(link)]
    assert [(t.url, t.line, t.tag, t.in_conditional_comment) for t in result.tracked] == [
        (r.href.strip(), r.href_line, r.tag, link["in_mso_conditional"]) for r, link in tracked
    ]
    others = [r for r, link in zip(references, links, strict=True) if not _expected_tracked(link)]
    assert [(s.url, s.line, s.tag) for s in result.skipped] == [
        (r.href.strip(), r.href_line, r.tag) for r in others
    ]
    kinds = {"template_placeholder": {"placeholder"}, "mailto": {"mailto"}, "fragment": {"anchor"}}
    for skipped, link in zip(result.skipped, (k for k in links if not _expected_tracked(k)), strict=True):
        assert skipped.reason in kinds[link["kind"]]


@pytest.mark.parametrize("name", TEMPLATES)
def test_scam_prevention_skips_links_showing_an_address(name: str) -> None:
    source = read_source(DATA_DIR / name)
    result = scan_html(source, POLICY)
    showing_address = [
        (r.href.strip(), r.href_line)
        for r, link in zip(reference_links(source), MANIFEST[name]["links"], strict=True)
        if _expected_tracked(link) and URL_LIKE_TEXT.fullmatch(r.text)
    ]
    assert [(s.url, s.line) for s in result.skipped if s.reason == "scam_prevention"] == (showing_address)
    assert len(result.tracked) + len(showing_address) == len(scan_html(source, NO_SCAM_CHECK).tracked)


def test_scam_prevention_fires_somewhere_in_the_corpus() -> None:
    skipped = [
        s
        for name in TEMPLATES
        for s in scan_html(read_source(DATA_DIR / name), POLICY).skipped
        if s.reason == "scam_prevention"
    ]
    assert {s.url for s in skipped} == {"http://htmlemail.io"}


@pytest.mark.parametrize("name", TEMPLATES)
def test_render_without_click_urls_reproduces_the_file(name: str) -> None:
    path = DATA_DIR / name
    source = read_source(path)
    assert source.lower().count("</body") == 1
    result = scan_html(source, POLICY)
    assert result.has_pixel

    rendered = result.template.render({}, OPEN_URL, UNSUBSCRIBE_URL).encode("utf-8")

    body_end = len(source[: source.lower().rindex("</body")].encode("utf-8"))
    original = path.read_bytes()
    assert rendered == original[:body_end] + pixel().encode("utf-8") + original[body_end:]


@pytest.mark.parametrize("name", TEMPLATES)
def test_render_with_tracked_urls_changes_only_href_values(name: str) -> None:
    source = read_source(DATA_DIR / name)
    result = scan_html(source, POLICY)
    markers = click_markers(list(dict.fromkeys(t.url for t in result.tracked)))

    rendered = result.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)

    # An independent parser sees the markers exactly where the tracked hrefs were.
    expected_hrefs: list[str] = []
    pending = list(result.tracked)
    for reference in reference_links(source):
        if pending and (pending[0].url, pending[0].line) == (reference.href.strip(), reference.href_line):
            expected_hrefs.append(markers[pending.pop(0).url])
        else:
            expected_hrefs.append(reference.href)
    assert not pending
    after = reference_links(rendered)
    assert [r.href for r in after] == expected_hrefs
    assert [(r.tag, r.tag_line, r.href_line) for r in after] == [
        (r.tag, r.tag_line, r.href_line) for r in reference_links(source)
    ]

    # Putting the original source text back where the markers are recovers the file.
    clicks = [slot for slot in result.template.slots() if slot.kind is SlotKind.CLICK]
    assert restore(rendered, [(escape(markers[s.url]), s.raw) for s in clicks]) == (
        with_pixel_before_last_body_end(source)
    )


@pytest.mark.parametrize("name", TEMPLATES)
def test_rescanning_the_rendered_output_changes_nothing(name: str) -> None:
    source = read_source(DATA_DIR / name)
    first = scan_html(source, POLICY)
    markers = click_markers(list(dict.fromkeys(t.url for t in first.tracked)))
    rendered = first.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL)

    second = scan_html(rendered, POLICY)

    assert second.tracked == ()
    assert not second.has_pixel
    assert second.template.render(markers, OPEN_URL, UNSUBSCRIBE_URL) == rendered
