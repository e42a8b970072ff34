"""Storage on SQLite and PostgreSQL: migrations, upsert with history, outbox, statistics."""

import datetime as dt

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import Application, Notification
from tests.samples import T0, record


async def test_upsert_is_idempotent_and_keeps_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        first = await repo.upsert_applications(s, commune_id=commune, records=[record()],
                                               actor="import:a.csv", now=T0)
    assert (first.created, first.updated, first.unchanged) == (1, 0, 0)
    async with session_scope(sessions) as s:
        again = await repo.upsert_applications(s, commune_id=commune, records=[record()],
                                               actor="import:a.csv", now=T0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    done = T0 + dt.timedelta(hours=20)
    async with session_scope(sessions) as s:
        moved = await repo.upsert_applications(
            s, commune_id=commune, actor="import:b.csv", now=done,
            records=[record(status=ApplicationStatus.RETURNED, completed_at=done)])
    assert moved.updated == 1 and [c.status for c in moved.changes] == ["returned"]
    async with sessions() as s:
        app = (await s.exec(select(Application))).one()
        assert app.id is not None
        steps = await repo.history(s, app.id)
    assert [(h.status, h.changed_by) for h in steps] == [
        ("received", "import:a.csv"), ("returned", "import:b.csv")]
    assert steps[-1].changed_at == done
    assert app.completed_at == done and app.received_at.tzinfo is not None


async def test_codes_are_scoped_by_commune(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as s:
        a = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        b = await repo.ensure_commune(s, slug="van-con", name="Xã Vân Côn")
        for commune in (a, b):
            await repo.upsert_applications(s, commune_id=commune, records=[record()],
                                           actor="test", now=T0)
    async with sessions() as s:
        assert len(await repo.existing(s, commune_id=a, codes=[record().receipt_code])) == 1
        assert len((await s.exec(select(Application))).all()) == 2


async def test_outbox_keys_are_idempotent(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        message = Notification(commune_id=commune, channel="telegram", recipient="42",
                               text="Hồ sơ đã có kết quả", idempotency_key="status:1:1")
        await repo.enqueue(s, [message])
    async with session_scope(sessions) as s:
        await repo.enqueue(s, [Notification(commune_id=commune, channel="telegram",
                                            recipient="42", text="again",
                                            idempotency_key="status:1:1")])
    async with sessions() as s:
        rows = (await s.exec(select(Notification))).all()
    assert [(n.text, n.sent_at) for n in rows] == [("Hồ sơ đã có kết quả", None)]


async def test_failed_transaction_leaves_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    try:
        async with session_scope(sessions) as s:
            commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
            await repo.upsert_applications(s, commune_id=commune, records=[record()],
                                           actor="test", now=T0)
            raise RuntimeError("the import failed half way")
    except RuntimeError:
        pass
    async with sessions() as s:
        assert (await s.exec(select(Application))).all() == []
