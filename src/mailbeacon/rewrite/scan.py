"""Scanning email bodies into templates: one entry point per body type."""

from mailbeacon.rewrite.html_scan import scan_html
from mailbeacon.rewrite.results import ScanResult, SkippedLink, TrackedLink
from mailbeacon.rewrite.text_scan import scan_text

__all__ = ["ScanResult", "SkippedLink", "TrackedLink", "scan_html", "scan_text"]
