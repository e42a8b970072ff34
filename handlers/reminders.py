"""Reminders and overdue notices for followers, and the staff morning digest.

One scan per tick finds, in one indexed query (``storage.applications
.followed_for_reminders``), every followed application that owes its followers a message:
overdue, documents due on the next working day, a ready result not collected after some
working days, or a ready result's appointment day. Each message carries an idempotency key
naming its application, follower and date, so a scan repeated (another instance, a restart,
the next tick) queues nothing twice; a scan looks back ``CATCH_UP`` so a server stopped for a
few days still sends what it missed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator

from handlers.applications import Office
from knowledge.i18n import Text, language
from knowledge.workdays import TZ, WorkCalendar
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import Notification

UNCOLLECTED_AFTER = 5  # working days a ready result waits before its follower is reminded
CATCH_UP = dt.timedelta(days=7)  # how far back a scan looks for what was missed
DIGEST_HOUR = 7  # local hour from which the staff digest of the day is sent
DIGEST_RECIPIENT = "digest"  # the staff channel's recipient: no citizen's relay tag
CHUNK = 1000  # messages queued per statement (keys checked with IN (...))


def day_window(day: dt.date) -> repo.Window:
    """A local calendar day, [midnight, next midnight)."""
    start = dt.datetime.combine(day, dt.time(), TZ)
    return start, start + dt.timedelta(days=1)


def ready_since(calendar: WorkCalendar, today: dt.date, working_days: int) -> dt.date:
    """The latest day a result made ready has waited ``working_days`` working days by
    ``today`` (working days after it, up to and including today)."""
    day = today - dt.timedelta(days=1)
    while calendar.working_days_between(day, today) < working_days:
        day -= dt.timedelta(days=1)
    return day


def _procedure(app: repo.Followed) -> str:
    return app.procedure_name or app.procedure_code or ""


def _local_date(t: Text, when: dt.datetime) -> str:
    return t.date(when.astimezone(TZ).date())


def overdue_text(app: repo.Followed, t: Text) -> str:
    """The apology a follower receives once the application is past its due date."""
    assert app.due_at is not None
    return t("Application {code} ({procedure}) was due on {date} and is not finished yet. "
             "We apologise for the delay. Please ask the one-stop desk for the new date: the "
             "office must give it to you.", code=app.receipt_code, procedure=_procedure(app),
             date=_local_date(t, app.due_at))


def supplement_text(app: repo.Followed, t: Text) -> str:
    """The reminder the working day before the documents asked for are due."""
    assert app.supplement_due_at is not None
    return t("Reminder: the documents asked for application {code} ({procedure}) are due on "
             "{date}. Please bring them to the one-stop desk by then.", code=app.receipt_code,
             procedure=_procedure(app), date=_local_date(t, app.supplement_due_at))


def uncollected_text(app: repo.Followed, t: Text) -> str:
    """The reminder of a ready result nobody has collected."""
    assert app.completed_at is not None
    return t("Reminder: the result of application {code} ({procedure}) has been ready since "
             "{date}. Bring the receipt slip and your identity card to the one-stop desk to "
             "collect it.", code=app.receipt_code, procedure=_procedure(app),
             date=_local_date(t, app.completed_at))


def appointment_text(app: repo.Followed, t: Text) -> str:
    """The reminder on the appointment day (the due date) of a ready result."""
    return t("Today is the appointment day for application {code} ({procedure}): the result "
             "is ready. Bring the receipt slip and your identity card to the one-stop desk.",
             code=app.receipt_code, procedure=_procedure(app))


Owed = tuple[str, str, Callable[[repo.Followed, Text], str]]  # kind, key, its text


def _owed(app: repo.Followed, *, windows: dict[str, repo.Window]) -> Iterator[Owed]:
    """What one follower is owed now: (kind, idempotency key, how to word it)."""
    status = ApplicationStatus(app.status)
    follower = app.subscription_id

    def within(when: dt.datetime | None, name: str) -> bool:
        start, end = windows[name]
        return when is not None and start <= when < end

    if status in repo.OPEN_STATUSES and within(app.due_at, "overdue") and app.due_at:
        day = app.due_at.astimezone(TZ).date()
        yield "overdue", f"overdue:{app.id}:{day}:{follower}", overdue_text
    if status is ApplicationStatus.SUPPLEMENT_REQUIRED and app.supplement_due_at \
            and within(app.supplement_due_at, "supplement"):
        day = app.supplement_due_at.astimezone(TZ).date()
        yield "supplement", f"reminder:supplement:{app.id}:{day}:{follower}", supplement_text
    if status is ApplicationStatus.RESULT_READY:
        if within(app.completed_at, "uncollected"):
            yield "uncollected", f"reminder:uncollected:{app.id}:{follower}", uncollected_text
        if within(app.due_at, "appointment") and app.due_at:
            day = app.due_at.astimezone(TZ).date()
            yield "appointment", f"reminder:appointment:{app.id}:{day}:{follower}", \
                appointment_text


def scan_windows(calendar: WorkCalendar, now: dt.datetime, *,
                 uncollected_after: int = UNCOLLECTED_AFTER) -> dict[str, repo.Window]:
    """The date ranges a scan at ``now`` looks at, for each kind of message."""
    today = now.astimezone(TZ).date()
    ready_by = ready_since(calendar, today, uncollected_after)
    return {
        "overdue": (now - CATCH_UP, now),
        # Due after today, up to the next working day: today is the working day before.
        "supplement": (day_window(today)[1], day_window(calendar.next_working_day(today))[1]),
        "uncollected": (day_window(ready_by - CATCH_UP)[0], day_window(ready_by)[1]),
        "appointment": day_window(today),
    }


async def scan(office: Office, now: dt.datetime, *,
               uncollected_after: int = UNCOLLECTED_AFTER) -> Counter[str]:
    """Queue the reminders and overdue notices owed at ``now``; how many of each kind were
    owed (already queued ones included: the outbox keeps one per key)."""
    windows = scan_windows(office.calendar, now, uncollected_after=uncollected_after)
    owed: Counter[str] = Counter()
    async with session_scope(office.sessions) as session:
        rows = await repo.followed_for_reminders(session, commune_id=office.commune_id,
                                                 **windows)
        found = [(row, kind, key, word) for row in rows
                 for kind, key, word in _owed(row, windows=windows)]
        owed.update(kind for _, kind, _, _ in found)
        texts = {lang: Text(lang) for lang in ("vi", "en")}
        for start in range(0, len(found), CHUNK):
            chunk = found[start:start + CHUNK]
            # Most of what a tick finds was queued by an earlier one: word only the rest.
            done = await repo.queued_keys(session, [key for _, _, key, _ in chunk])
            await repo.enqueue_rows(session, [
                {"commune_id": office.commune_id, "channel": row.channel,
                 "recipient": row.recipient, "text": word(row, texts[language(row.lang)]),
                 "idempotency_key": key, "kind": "reminder"}
                for row, _, key, word in chunk if key not in done])
    return owed


def digest_text(t: Text, *, today: dt.date, next_day: dt.date,
                fields: dict[str, tuple[int, int, int]]) -> str:
    """The staff morning digest: due today, due the next working day, overdue, per field."""
    def line(today_n: int, next_n: int, late: int) -> str:
        return t("due today {today}, due {next_date} {next}, overdue {late}", today=today_n,
                 next_date=t.date(next_day), next=next_n, late=late)

    totals = tuple(sum(counts[i] for counts in fields.values()) for i in range(3))
    lines = [t("Morning digest, {date}:", date=t.date(today)), line(*totals)]
    lines += [f"• {name or t('(no field)')}: {line(*counts)}"
              for name, counts in sorted(fields.items())]
    return "\n".join(lines)


async def queue_digest(office: Office, now: dt.datetime) -> bool:
    """Queue today's digest to the staff chat once local time reaches ``DIGEST_HOUR``;
    whether it was owed now (a second call the same day queues nothing new)."""
    local = now.astimezone(TZ)
    if local.hour < DIGEST_HOUR:
        return False
    today = local.date()
    next_day = office.calendar.next_working_day(today)
    async with session_scope(office.sessions) as session:
        fields = await repo.due_by_field(
            session, commune_id=office.commune_id, today=day_window(today),
            next_day=(day_window(today)[1], day_window(next_day)[1]))
        text = digest_text(Text(), today=today, next_day=next_day, fields=fields)
        await repo.enqueue(session, [Notification(
            commune_id=office.commune_id, channel="staff", recipient=DIGEST_RECIPIENT,
            text=text, idempotency_key=f"digest:{office.commune_id}:{today}", kind="staff")])
    return True
