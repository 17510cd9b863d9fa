"""Alembic environment: the engine comes from mailbeacon.store.migrate, never from a config file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from mailbeacon.store.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through mailbeacon.store.migrate (mailbeacon migrate)")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
