"""The assistant of one commune kept up to date with the knowledge changes its staff make.

The assistant is built from the bundled knowledge base plus the commune's changes in force
(``storage.knowledge_changes``). Whenever the commune's knowledge version differs from the one
it was built from, a new assistant is built in a thread and swapped in whole: a question is
answered by the old one or the new one, never by half of each. The version is read after every
change made in this process (``refresh``) and every few seconds (``kept_current``: one read
for every commune of the server), so other instances pick changes up too, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.turn import Services
from knowledge.answer import Assistant
from knowledge.changes import apply_changes
from storage import knowledge_changes as changes
from storage.db import session_scope

log = logging.getLogger(__name__)
CHECK_EVERY = 5.0  # seconds between two looks at the version by ``watching``


class LiveKnowledge:
    """One commune's current assistant, also put in the ``services`` its conversation
    answers with (when given)."""

    def __init__(self, bundled: Assistant, sessions: async_sessionmaker[AsyncSession],
                 commune_id: int, *, services: Services | None = None,
                 every: float = CHECK_EVERY) -> None:
        self.bundled = bundled  # built from the bundled knowledge base only
        self.assistant = bundled
        self.version = 0  # the version ``assistant`` was built from
        self.sessions, self.commune_id = sessions, commune_id
        self.every = every
        self._services = services
        self._building = asyncio.Lock()

    async def refresh(self) -> Assistant:
        """The assistant for the commune's current version, rebuilt when it changed."""
        async with session_scope(self.sessions) as session:
            current = await changes.version(session, commune_id=self.commune_id)
        if current == self.version:
            return self.assistant
        async with self._building:  # two callers seeing a new version build it once
            async with session_scope(self.sessions) as session:
                found = await changes.active(session, commune_id=self.commune_id)
            if found.version == self.version:
                return self.assistant
            started = time.monotonic()
            kb = apply_changes(self.bundled.kb, aliases=found.aliases, faqs=found.faqs)
            assistant = self.bundled if kb is self.bundled.kb else await asyncio.to_thread(
                Assistant, kb, direct=self.bundled.direct, floor=self.bundled.floor,
                ratio=self.bundled.ratio)
            self.assistant, self.version = assistant, found.version
            if self._services is not None:
                self._services.assistant = assistant  # one assignment: the swap is atomic
            log.info("knowledge: version %d in force (%d aliases, %d FAQ entries added) "
                     "after %.1f s", found.version, len(found.aliases), len(found.faqs),
                     time.monotonic() - started)
        return self.assistant

    async def watching(self, _: object) -> AsyncIterator[None]:
        """For a server of this commune alone: ``kept_current``."""
        async with kept_current([self]):
            yield


async def _watch(lives: Sequence[LiveKnowledge]) -> None:
    """Every few seconds (the shortest ``every``), the versions of all these communes in one
    read, and the assistants whose version moved rebuilt; until cancelled. A failed look is
    tried again."""
    every = min(live.every for live in lives)
    while True:
        await asyncio.sleep(every)
        try:
            async with session_scope(lives[0].sessions) as session:
                current = await changes.versions(session,
                                                 commune_ids=[live.commune_id for live in lives])
            for live in lives:
                if current.get(live.commune_id, 0) != live.version:
                    await live.refresh()
        except Exception as exc:  # the database away for a moment: the next look retries
            log.warning("knowledge: could not read the versions (%s)", type(exc).__name__)


@contextlib.asynccontextmanager
async def kept_current(lives: Sequence[LiveKnowledge]) -> AsyncIterator[None]:
    """For the server's start and end: each commune's changes in force at start, then looked
    for every few seconds (``_watch``)."""
    for live in lives:
        try:
            await live.refresh()
        except Exception as exc:
            log.warning("knowledge: changes not applied at start (%s)", type(exc).__name__)
    task = asyncio.create_task(_watch(lives))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
