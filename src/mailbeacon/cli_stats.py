"""`mailbeacon stats`: a message's numbers as a terminal table."""

from __future__ import annotations

from mailbeacon.store.events import HumanAndAll, MessageStats


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _line(label: str, value: HumanAndAll, recipients: int) -> str:
    return (
        f"{label:<12} unique {value.human.unique:>6} ({_pct(value.human.unique, recipients):>6})"
        f"   total {value.human.total:>6}"
        f"   incl. machines: unique {value.all.unique}, total {value.all.total}"
    )


def format_stats(subject: str, stats: MessageStats) -> str:
    n = stats.recipients
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(stats.statuses.items()))
    lines = [
        f"subject:     {subject}",
        f"recipients:  {n} ({statuses})",
        _line("opens", stats.opens, n),
        _line("clicks", stats.clicks, n),
        f"unsubscribes {stats.unsubscribes}",
    ]
    if stats.links:
        lines.append("")
        lines.append(f"{'pos':>3}  {'unique':>6}  {'total':>6}  url")
        for link in stats.links:
            lines.append(
                f"{link.position:>3}  {link.clicks.human.unique:>6}  {link.clicks.human.total:>6}  {link.url}"
            )
    return "\n".join(lines)
