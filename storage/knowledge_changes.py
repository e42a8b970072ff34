"""The knowledge changes staff make in the console, per commune and versioned.

Every change and every undo raises the commune's version (``KnowledgeVersion``) in the same
transaction, so a running assistant learns with one primary-key lookup whether it must be
rebuilt. An undo only marks the change undone: the list stays the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.changes import Alias, faq_id
from knowledge.schema import Faq
from storage.db import upsert
from storage.models import KnowledgeChange, KnowledgeVersion, Unanswered

KINDS = ("alias", "faq")


@dataclass(frozen=True)
class Active:
    """A commune's changes in force, at a version."""

    version: int
    aliases: list[Alias]
    faqs: list[Faq]


@dataclass(frozen=True)
class Missed:
    """A question the assistant declined or answered unsure of, as often as it was asked
    (not fixed since)."""

    id: int  # the latest time it was asked
    text: str
    times: int
    last_at: dt.datetime
    answered: str | None = None  # unsure: the procedure answered the latest time ("": a choice)
    score: float | None = None  # … and how well it matched


async def version(session: AsyncSession, *, commune_id: int) -> int:
    """The commune's knowledge version (0 before its first change)."""
    found = await session.get(KnowledgeVersion, commune_id)
    return found.version if found is not None else 0


async def versions(session: AsyncSession, *, commune_ids: Collection[int]) -> dict[int, int]:
    """The knowledge version of each of these communes that has made a change."""
    found = await session.exec(select(KnowledgeVersion).where(
        col(KnowledgeVersion.commune_id).in_(list(commune_ids))))
    return {row.commune_id: row.version for row in found}


async def _raise_version(session: AsyncSession, commune_id: int) -> int:
    """Raise the commune's version by one (two writers queue on the row); the new version."""
    insert = upsert(session, KnowledgeVersion)
    statement = insert.values(commune_id=commune_id, version=1).on_conflict_do_update(
        index_elements=[KnowledgeVersion.__table__.c.commune_id],  # type: ignore[attr-defined]
        set_={"version": KnowledgeVersion.__table__.c.version + 1},  # type: ignore[attr-defined]
    ).returning(col(KnowledgeVersion.version))
    return int((await (await session.connection()).execute(statement)).scalar_one())


async def add_alias(session: AsyncSession, *, commune_id: int, phrasing: str, target: str,
                    actor: str, now: dt.datetime, unanswered_id: int | None = None
                    ) -> KnowledgeChange:
    """Make ``phrasing`` mean ``target`` (a procedure code or "faq:<id>")."""
    change = KnowledgeChange(commune_id=commune_id,
                             version=await _raise_version(session, commune_id), kind="alias",
                             phrasing=phrasing, target=target, unanswered_id=unanswered_id,
                             created_by=actor, created_at=now)
    session.add(change)
    await session.flush()
    return change


async def add_faq(session: AsyncSession, *, commune_id: int, entry: Faq, actor: str,
                  now: dt.datetime, unanswered_id: int | None = None) -> KnowledgeChange:
    """Add a FAQ entry; its id is made from its first question and the new version."""
    number = await _raise_version(session, commune_id)
    entry = entry.model_copy(update={"id": faq_id(entry.questions[0], number)})
    change = KnowledgeChange(commune_id=commune_id, version=number, kind="faq",
                             phrasing=entry.questions[0], target=entry.id,
                             entry=entry.model_dump_json(), unanswered_id=unanswered_id,
                             created_by=actor, created_at=now)
    session.add(change)
    await session.flush()
    return change


async def undo(session: AsyncSession, *, commune_id: int, change_id: int, actor: str,
               now: dt.datetime) -> KnowledgeChange | None:
    """Undo one of the commune's changes; None when it has none by that id or it is undone."""
    change = await session.get(KnowledgeChange, change_id)
    if change is None or change.commune_id != commune_id or change.undone_at is not None:
        return None
    await _raise_version(session, commune_id)
    change.undone_at, change.undone_by = now, actor
    session.add(change)
    await session.flush()
    return change


async def history(session: AsyncSession, *, commune_id: int, limit: int = 200
                  ) -> Sequence[KnowledgeChange]:
    """The commune's changes, newest first (undone ones too)."""
    return (await session.exec(
        select(KnowledgeChange).where(col(KnowledgeChange.commune_id) == commune_id)
        .order_by(col(KnowledgeChange.version).desc()).limit(limit))).all()


def entry_of(change: KnowledgeChange) -> Faq:
    """The FAQ entry a "faq" change added."""
    return Faq.model_validate_json(change.entry)


async def active(session: AsyncSession, *, commune_id: int) -> Active:
    """The commune's changes in force and the version they make."""
    number = await version(session, commune_id=commune_id)
    changes = (await session.exec(
        select(KnowledgeChange).where(col(KnowledgeChange.commune_id) == commune_id,
                                      col(KnowledgeChange.undone_at).is_(None))
        .order_by(col(KnowledgeChange.version)))).all()
    return Active(number,
                  [Alias(c.phrasing, c.target) for c in changes if c.kind == "alias"],
                  [entry_of(c) for c in changes if c.kind == "faq"])


async def missed(session: AsyncSession, *, commune_id: int, since: dt.datetime,
                 kind: str = "declined", limit: int = 50) -> list[Missed]:
    """The questions declined (``kind`` "unsure": answered unsure of) since ``since`` that no
    change in force answers, the most asked first, then the newest; the same wording (case
    aside) counts once."""
    wording = func.lower(col(Unanswered.text))
    handled = select(KnowledgeChange.unanswered_id).where(
        col(KnowledgeChange.commune_id) == commune_id,
        col(KnowledgeChange.undone_at).is_(None),
        col(KnowledgeChange.unanswered_id).is_not(None))
    fixed = select(func.lower(col(Unanswered.text))).where(
        col(Unanswered.id).in_(handled))  # the same wording asked again is fixed too
    rows = (await session.exec(
        select(func.max(col(Unanswered.id)), func.count(), func.max(col(Unanswered.at)))
        .where(col(Unanswered.commune_id) == commune_id, col(Unanswered.at) >= since,
               col(Unanswered.kind) == kind, wording.not_in(fixed))
        .group_by(wording)
        .order_by(func.count().desc(), func.max(col(Unanswered.at)).desc())
        .limit(limit))).all()
    latest = {u.id: u for u in (await session.exec(
        select(Unanswered).where(col(Unanswered.id).in_([r[0] for r in rows])))).all()}
    return [Missed(number, latest[number].text, times, at, latest[number].answered,
                   latest[number].score)
            for number, times, at in rows if number is not None and number in latest]


async def unanswered(session: AsyncSession, *, commune_id: int, unanswered_id: int
                     ) -> Unanswered | None:
    """One of the commune's missed questions."""
    found = await session.get(Unanswered, unanswered_id)
    return found if found is not None and found.commune_id == commune_id else None
