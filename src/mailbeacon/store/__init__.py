"""Persistence: engine, schema, migrations and the named queries of each entity."""

from mailbeacon.store.database import Store

__all__ = ["Store"]
