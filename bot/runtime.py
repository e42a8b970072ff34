"""Wiring shared by the server and the CLI: the database and the commune's office."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.settings import Settings
from handlers.applications import Office
from knowledge.loader import KnowledgeBase
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade


@asynccontextmanager
async def open_office(settings: Settings, kb: KnowledgeBase) -> AsyncIterator[Office]:
    """Migrate the database, then yield the configured commune's office."""
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessions(engine)
        async with session_scope(sessions) as session:
            commune = await repo.ensure_commune(session, slug=settings.commune,
                                                name=kb.commune.name)
        yield Office(sessions, commune, kb, WorkCalendar.for_commune(settings.commune))
    finally:
        await engine.dispose()


def hash_key(key: str) -> str:
    """How an API key is stored and looked up: its SHA-256 (keys are long random strings)."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(office: Office, name: str) -> str:
    """A new API key for an integration; only its hash is kept, so show it once."""
    key = secrets.token_urlsafe(32)
    async with session_scope(office.sessions) as session:
        await repo.add_integration_key(session, commune_id=office.commune_id, name=name,
                                       key_hash=hash_key(key))
    return key
