"""Builds bench/data/newsletter-60k.html: a ~60 KB newsletter made of real template content.

The skeleton, stories and footer are Konstantin Savchenko's responsive email templates (MIT, copied
unchanged into tests/data/html-templates/konsav/ from the shared corpus): `general.html` gives the
head, header, the story block (hero image, paragraph, button, list) and the footer with social icons;
`explorational.html` gives the two-column "floaters" rows. The story block is repeated with a
distinct article URL per story (with `&amp;` in the query, as mailers write them), its list titles
become links, and each story's button gets an Outlook `<!--[if mso]><v:roundrect href=...>` twin,
as bulletproof-button generators write them. The footer gets social, preference, app-store, mailto
and unsubscribe links. Line endings are CRLF, as in a message on the wire. The result is one
valid-looking email: one `<html>`, one `<head>`, one `<body>`.

    .venv/bin/python bench/newsletter_corpus.py   # rewrites bench/data/newsletter-60k.html
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUTPUT = BENCH_DIR / "data" / "newsletter-60k.html"
TEMPLATE_DIRS = (
    BENCH_DIR.parent / "tests" / "data" / "html-templates",
    Path("/work/shared/corpora/html-templates"),
)
TARGET_BYTES = 60 * 1024
SITE = "https://news.example.com"
UTM = "utm_source=weekly&amp;utm_medium=email&amp;utm_campaign=digest-21"
_KONSAV_LINK = re.compile(r"https://github\.com/konsav/email-templates/?")
_SOCIAL_LINK = "https://raw.githubusercontent.com/konsav/email-templates/"
_LIST_TITLE = re.compile(r'<b style="color: #333333;">([^<]*)</b>')
SOCIAL = (
    "https://www.facebook.com/examplenews",
    "https://twitter.com/examplenews",
    "https://www.instagram.com/examplenews/",
    "https://www.youtube.com/@examplenews",
)
STORIES = (
    "why-mobile-first-email-still-matters",
    "the-state-of-email-clients-2024",
    "designing-buttons-that-outlook-renders",
    "dark-mode-without-surprises",
    "accessible-newsletters-a-checklist",
    "measuring-what-readers-actually-read",
)


def find_templates() -> Path:
    for directory in TEMPLATE_DIRS:
        if (directory / "konsav" / "general.html").is_file():
            return directory
    raise FileNotFoundError(f"no konsav templates in {', '.join(map(str, TEMPLATE_DIRS))}")


def _line_start(text: str, marker: str, occurrence: int = 0) -> int:
    at = -1
    for _ in range(occurrence + 1):
        at = text.index(marker, at + 1)
    return text.rfind("\n", 0, at) + 1


def _vml_button(url: str, label: str) -> str:
    return (
        "<!--[if mso]>\n"
        '\t\t\t<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml"'
        ' xmlns:w="urn:schemas-microsoft-com:office:word"\n'
        f'\t\t\t\thref="{url}"\n'
        '\t\t\t\tstyle="height:44px;v-text-anchor:middle;width:240px;"'
        ' arcsize="10%" stroke="f" fillcolor="#E9703E">\n'
        "\t\t\t\t<w:anchorlock/>\n"
        '\t\t\t\t<center style="color:#FFFFFF;font-family:sans-serif;font-size:17px;font-weight:400;">'
        f"{label}</center>\n"
        "\t\t\t</v:roundrect>\n"
        "\t\t\t<![endif]-->"
    )


def _story(block: str, number: int, slug: str) -> str:
    url = f"{SITE}/2024/05/{slug}?{UTM}&amp;utm_content=story-{number}"
    text = _KONSAV_LINK.sub(url, block)
    text = text.replace('class="button"><a', f'class="button">{_vml_button(url, "Read the story")}<a', 1)
    related = iter(range(1, 100))

    def link_title(found: re.Match[str]) -> str:
        target = f"{SITE}/2024/05/{slug}/related-{next(related)}?{UTM}"
        return f'<a href="{target}" target="_blank" style="color: #333333;">{found.group(0)}</a>'

    text = _LIST_TITLE.sub(link_title, text)
    return text.replace('title="Hero Image"', f'title="Story {number}"')


def _floaters(block: str, numbers: Iterator[int]) -> str:
    return _KONSAV_LINK.sub(lambda _: f"{SITE}/picks/{next(numbers)}?{UTM}", block)


def build(templates: Path, stories: int) -> str:
    general = (templates / "konsav" / "general.html").read_text(encoding="utf-8")
    explorational = (templates / "konsav" / "explorational.html").read_text(encoding="utf-8")
    story_start = _line_start(general, "<!-- HERO IMAGE -->")
    story_end = _line_start(general, "<!-- PARAGRAPH -->", occurrence=1)
    head = general[:story_start]
    story = general[story_start:story_end]
    tail = general[story_end:]
    floaters_start = _line_start(explorational, "<!-- FLOATERS -->")
    floaters_end = explorational.rfind("\n", 0, explorational.index("<!-- BUTTON -->", floaters_start)) + 1
    floaters = explorational[floaters_start:floaters_end]

    head = head.replace(
        'href="https://github.com/konsav/email-templates/"', f'href="{SITE}/?{UTM}&amp;utm_content=logo"', 1
    )
    head = head.replace("Get this responsive email template\n", "The Weekly Digest, issue 21\n", 1).replace(
        "Available on&nbsp;GitHub and&nbsp;CodePen\n",
        f'Six stories this week &middot; <a href="{SITE}/digest/21?{UTM}&amp;utm_content=web"'
        ' target="_blank" style="color: #127DB3;">read it in your browser</a>\n',
        1,
    )
    parts = [head]
    picks = iter(range(1, 100))
    for number in range(1, stories + 1):
        parts.append(_story(story, number, STORIES[(number - 1) % len(STORIES)]))
        if number == 3:  # the editor's picks, once
            parts.append(_floaters(floaters, picks))

    social = iter(SOCIAL)
    while f'href="{_SOCIAL_LINK}"' in tail:
        tail = tail.replace(f'href="{_SOCIAL_LINK}"', f'href="{next(social)}"', 1)
    tail = tail.replace(
        'href="https://github.com/konsav/email-templates/"',
        f'href="{SITE}/preferences?list=weekly&amp;{UTM}"',
        1,
    )
    tail = tail.replace(
        "anytime.\n",
        "anytime, or "
        '<a href="{{ mb_unsubscribe }}" target="_blank" style="text-decoration: underline; color: #999999;">'
        "unsubscribe</a>. Read us on the go with "
        '<a href="https://apps.apple.com/app/id1234567890" target="_blank" style="color: #999999;">'
        "our app</a>.\n",
        1,
    )
    parts.append(tail)
    return "".join(parts).replace("\r\n", "\n").replace("\n", "\r\n")


def build_newsletter(target_bytes: int = TARGET_BYTES) -> str:
    """The newsletter with the number of stories that brings it closest to target_bytes."""
    templates = find_templates()
    candidates = [build(templates, n) for n in range(1, 13)]
    return min(candidates, key=lambda html: abs(len(html.encode()) - target_bytes))


def load_newsletter(path: Path = OUTPUT) -> str:
    """The committed file, built first if it is missing. Read without newline translation (CRLF stays)."""
    if not path.exists():
        write_newsletter(path)
    return path.read_bytes().decode("utf-8")


def write_newsletter(path: Path = OUTPUT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_newsletter().encode("utf-8"))
    return path


if __name__ == "__main__":
    written = write_newsletter()
    html = written.read_bytes().decode("utf-8")
    hrefs = re.findall(r'href="([^"]*)"', html)
    print(
        f"{written}: {len(html.encode()):,} bytes, {html.count(chr(10)):,} CRLF lines, "
        f"{len(hrefs)} hrefs, {len(set(hrefs))} distinct, {html.count('<v:roundrect')} VML buttons"
    )
    sys.exit(0)
