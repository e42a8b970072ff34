"""The assistant of one commune kept up to date with the knowledge changes its staff make.

The assistant is built from the bundled knowledge base plus the commune's changes in force
(``storage.knowledge_changes``). Whenever the commune's knowledge version differs from the one
it was built from, a new assistant is built in a thread and swapped in whole: a question is
answered by the old one or the new one, never by half of each. The version is read after every
change made in this process (``refresh``) and every few seconds (``watching``), so other
instances pick changes up too, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

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

    async def watch(self) -> None:
        """Refresh every ``every`` seconds until cancelled; a failed look is tried again."""
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.refresh()
            except Exception as exc:  # the database away for a moment: the next look retries
                log.warning("knowledge: could not read the version (%s)", type(exc).__name__)

    async def watching(self, _: object) -> AsyncIterator[None]:
        """For the server's start and end: the changes in force at start, then ``watch``."""
        try:
            await self.refresh()
        except Exception as exc:
            log.warning("knowledge: changes not applied at start (%s)", type(exc).__name__)
        task = asyncio.create_task(self.watch())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
