"""Template rendering."""

from __future__ import annotations

import pickle

from mailbeacon.rewrite import Slot, SlotKind, Template

CLICK = Slot(SlotKind.CLICK, "https://x.com/?a=1&b=2", escape_html=True, raw="https://x.com/?a=1&amp;b=2")
TEXT_CLICK = Slot(SlotKind.CLICK, "https://x.com/", escape_html=False, raw="https://x.com/")
PIXEL = Slot(SlotKind.OPEN_PIXEL, "", escape_html=True)
UNSUBSCRIBE = Slot(SlotKind.UNSUBSCRIBE, "", escape_html=True, raw="{{mb_unsubscribe}}")
TEMPLATE = Template(('<a href="', CLICK, '">', UNSUBSCRIBE, '<img src="', PIXEL, '">', TEXT_CLICK))


def test_render_fills_every_slot() -> None:
    rendered = TEMPLATE.render(
        {"https://x.com/?a=1&b=2": "https://t/c?1&2", "https://x.com/": "https://t/c?3&4"},
        "https://t/o?5&6",
        "https://t/u?7&8",
    )
    assert rendered == (
        '<a href="https://t/c?1&amp;2">https://t/u?7&amp;8<img src="https://t/o?5&amp;6">https://t/c?3&4'
    )


def test_missing_click_urls_render_the_source_text() -> None:
    rendered = TEMPLATE.render({}, "O", "U")
    assert rendered == '<a href="https://x.com/?a=1&amp;b=2">U<img src="O">https://x.com/'


def test_rendering_twice_gives_independent_results() -> None:
    first = TEMPLATE.render({"https://x.com/": "A"}, "O", "U")
    second = TEMPLATE.render({"https://x.com/": "B"}, "O", "U")
    assert first.endswith("A")
    assert second.endswith("B")


def test_slots_in_order() -> None:
    assert TEMPLATE.slots() == (CLICK, UNSUBSCRIBE, PIXEL, TEXT_CLICK)


def test_templates_compare_by_parts() -> None:
    assert Template(("a", CLICK)) == Template(("a", CLICK))
    assert hash(Template(("a", CLICK))) == hash(Template(("a", CLICK)))


def test_templates_survive_pickling_after_rendering() -> None:
    TEMPLATE.render({}, "O", "U")
    copy = pickle.loads(pickle.dumps(TEMPLATE))  # noqa: S301 (our own data)
    assert copy == TEMPLATE
    assert copy.render({"https://x.com/": "A"}, "O", "U") == TEMPLATE.render(
        {"https://x.com/": "A"}, "O", "U"
    )
