"""Rewriting email bodies for tracking.

A body is scanned once per campaign into a :class:`Template` (literal source text and
slots for tracking URLs); each recipient's copy is then ``template.render(...)``. Every
character outside the rewritten URL values stays exactly as written.
"""

from mailbeacon.rewrite.policy import DEFAULT_EXCLUDED_DOMAINS, TrackingPolicy
from mailbeacon.rewrite.scan import ScanResult, SkippedLink, TrackedLink, scan_html, scan_text
from mailbeacon.rewrite.template import Slot, SlotKind, Template

__all__ = [
    "DEFAULT_EXCLUDED_DOMAINS",
    "ScanResult",
    "SkippedLink",
    "Slot",
    "SlotKind",
    "Template",
    "TrackedLink",
    "TrackingPolicy",
    "scan_html",
    "scan_text",
]
