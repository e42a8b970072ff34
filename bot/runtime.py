"""Wiring shared by the server and the CLI: the database and the communes' offices."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from bot.settings import Settings
from handlers.applications import Office
from knowledge.fees import with_fees
from knowledge.loader import KnowledgeBase, load_commune
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade


@asynccontextmanager
async def open_offices(settings: Settings, kb: KnowledgeBase,
                       slugs: Sequence[str] | None = None) -> AsyncIterator[list[Office]]:
    """Migrate the database, then yield the office of each commune in ``slugs`` (default:
    every commune served): the knowledge of ``kb`` (the national fees) with the commune's own
    profile, days and the fees its province and it set (``knowledge.fees``)."""
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessions(engine)
        offices = []
        for slug in slugs or [c.slug for c in settings.communes]:
            profile = kb.commune if slug == kb.commune.slug \
                else load_commune(slug, settings.commune_profiles)
            async with session_scope(sessions) as session:
                commune = await repo.ensure_commune(session, slug=slug, name=profile.name)
            own = with_fees(replace(kb, commune=profile), settings.commune_profiles)
            offices.append(Office(sessions, commune, own,
                                  WorkCalendar.for_commune(slug, settings.commune_profiles)))
        yield offices
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_office(settings: Settings, kb: KnowledgeBase,
                      slug: str | None = None) -> AsyncIterator[Office]:
    """``open_offices`` for one served commune (default: the first)."""
    async with open_offices(settings, kb, [settings.commune(slug).slug]) as (office,):
        yield office


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
