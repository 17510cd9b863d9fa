"""mailbeacon: self-hosted email tracking."""

__version__ = "0.1.0"
