"""The REST API (FastAPI): messages, stats, events and account settings."""
