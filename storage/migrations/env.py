"""Alembic environment: runs migrations on the configured async engine."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import MIGRATION_LOCK, make_engine

target_metadata = SQLModel.metadata


def run(connection: Connection) -> None:
    """Run the migrations inside one transaction. On PostgreSQL, processes starting at once
    take turns (a transaction-level advisory lock): the first migrates, the others then find
    the schema current."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)  # SQLite ALTERs need batch mode
    with context.begin_transaction():
        context.run_migrations()


async def main() -> None:
    """Connect and migrate."""
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()
    await engine.dispose()


asyncio.run(main())
