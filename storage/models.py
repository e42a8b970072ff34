"""Database tables. Every row belongs to a commune, so one deployment can serve a province.

Datetimes are timezone-aware UTC in the database (SQLModel stores them as such in SQLite and
PostgreSQL); conversion to Asia/Ho_Chi_Minh happens at the edges.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.domain import ApplicationStatus, SubmissionChannel


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def _commune_fk() -> Any:
    return Field(sa_column=Column(Integer, ForeignKey("commune.id"), nullable=False, index=True))


class Commune(SQLModel, table=True):
    """A commune (xã/phường) served by this deployment."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)


class Application(SQLModel, table=True):
    """An application (hồ sơ) as the one-stop system registered it."""

    __table_args__ = (
        UniqueConstraint("commune_id", "receipt_code"),
        # A period's applications, and the overview's figures read from the index alone (0011).
        Index("ix_application_overview", "commune_id", "received_at", "channel", "status",
              "due_at", "completed_at", "updated_at"),
        # The reminder scan and the staff digest: one range per status (0008).
        Index("ix_application_status_due", "commune_id", "status", "due_at"),
        Index("ix_application_status_completed", "commune_id", "status", "completed_at"),
        Index("ix_application_supplement_due", "commune_id", "supplement_due_at",
              postgresql_where=text("supplement_due_at IS NOT NULL"),
              sqlite_where=text("supplement_due_at IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    receipt_code: str = Field(max_length=64)  # normalized: no spaces, upper case
    procedure_code: str | None = Field(default=None, max_length=16)
    procedure_name: str = Field(default="", sa_type=Text)
    field: str = Field(default="", max_length=200)  # lĩnh vực, for statistics
    applicant_name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=16)
    channel: SubmissionChannel = Field(sa_type=String(16))
    received_at: dt.datetime
    due_at: dt.datetime | None = None
    due_estimated: bool = False  # computed from a processing time the portal gives unconfirmed
    status: ApplicationStatus = Field(sa_type=String(24))
    completed_at: dt.datetime | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)
    supplement_due_at: dt.datetime | None = None  # documents asked for are due by then


class StatusChange(SQLModel, table=True):
    """One step in an application's history, with who made it and when."""

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(
        sa_column=Column(Integer, ForeignKey("application.id", ondelete="CASCADE"),
                         nullable=False, index=True))
    status: ApplicationStatus = Field(sa_type=String(24))
    changed_at: dt.datetime
    changed_by: str = Field(max_length=120)  # "import:<file>", "api:<integration>", "staff:<user>"
    note: str = Field(default="", sa_type=Text)


class Subscription(SQLModel, table=True):
    """A citizen following an application on one channel."""

    __table_args__ = (
        UniqueConstraint("application_id", "channel", "recipient"),
        # Covering on PostgreSQL (0011): the reminder scan joins a few thousand applications
        # to their followers by index-only lookups instead of reading the whole table.
        Index("ix_subscription_application_id", "application_id",
              postgresql_include=["id", "commune_id", "channel", "recipient", "lang",
                                  "created_at"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    application_id: int = Field(
        sa_column=Column(Integer, ForeignKey("application.id", ondelete="CASCADE"),
                         nullable=False))
    channel: str = Field(max_length=16)  # "telegram", "zalo", "web"
    recipient: str = Field(max_length=128)  # the channel's user id
    lang: str = Field(default="vi", max_length=8)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """Outbox: a message to deliver, written in the same transaction as its cause."""

    __table_args__ = (
        Index("ix_notification_pending", "created_at", postgresql_where=text("sent_at IS NULL"),
              sqlite_where=text("sent_at IS NULL")),
        Index("ix_notification_due", "next_attempt_at", postgresql_where=text("sent_at IS NULL"),
              sqlite_where=text("sent_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=128)
    text: str = Field(sa_type=Text)
    buttons: str | None = Field(default=None, sa_type=Text)  # JSON [[title, payload], …]
    idempotency_key: str = Field(max_length=160, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    sent_at: dt.datetime | None = None  # sent, or closed with an ``outcome``
    attempts: int = 0
    # "reply", "relay", "staff" (to a citizen), "status", "reminder", "broadcast": the last
    # three are proactive and held during quiet hours.
    kind: str = Field(default="reply", max_length=16)
    next_attempt_at: dt.datetime = Field(default_factory=utcnow)  # not claimed before
    expires_at: dt.datetime | None = None  # None: created_at + the outbox's expiry
    # Why a closed message was not sent: "expired", "unreachable", "undeliverable"; None if sent.
    outcome: str | None = Field(default=None, max_length=16)
    # The broadcast this message belongs to (its report and cancel read this, indexed).
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    image: str | None = Field(default=None, max_length=2048)  # an https:// image URL to show


class Unreachable(SQLModel, table=True):
    """A recipient who blocked a commune's bot (its channel): not messaged by it until they
    write to it again."""

    commune_id: int = Field(sa_column=Column(Integer, ForeignKey("commune.id"),
                                             primary_key=True))
    channel: str = Field(max_length=16, primary_key=True)
    recipient: str = Field(max_length=128, primary_key=True)
    since: dt.datetime = Field(default_factory=utcnow)


class LookupAttempt(SQLModel, table=True):
    """Audit of every status lookup; failures also drive the slow-down."""

    __table_args__ = (
        Index("ix_lookup_user", "commune_id", "user_key", "at"),
        Index("ix_lookup_code", "commune_id", "receipt_code", "at"),
        Index("ix_lookup_weak_failure", "commune_id", "at",
              postgresql_where=text("weak AND NOT success AND NOT refused"),
              sqlite_where=text("weak AND NOT success AND NOT refused")),
    )

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    user_key: str = Field(max_length=160)  # "<channel>:<user id>"
    client_key: str = Field(default="", max_length=64)  # the web client's address, else ""
    receipt_code: str = Field(max_length=64)
    success: bool
    refused: bool = False  # refused unchecked (too many failures): does not extend a lock
    weak: bool = False  # checked on the phone's last 4 digits only
    at: dt.datetime = Field(default_factory=utcnow)


class IntegrationKey(SQLModel, table=True):
    """An API key of one integration (the one-stop system); only its hash is stored."""

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    name: str = Field(max_length=120)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    revoked_at: dt.datetime | None = None


class Conversation(SQLModel, table=True):
    """Where a citizen's conversation on one channel stands, so any instance can answer."""

    __table_args__ = (UniqueConstraint("commune_id", "channel", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)
    user_id: str = Field(max_length=128)
    lang: str = Field(default="vi", max_length=8)
    step: str = Field(default="", max_length=16)  # handlers.intents.Step
    pending_code: str = Field(default="", max_length=64)  # receipt code awaiting phone digits
    application_id: int | None = None  # last application looked up successfully
    last_procedure: str = Field(default="", max_length=16)  # the procedure under discussion
    options: str = Field(default="", max_length=200)  # codes last offered, comma-separated
    topic_at: dt.datetime | None = None  # when last_procedure/options were set (they expire)
    staff_notice_at: dt.datetime | None = None  # last "passed to staff" notice to the citizen
    misses: int = 0  # questions in a row the assistant could not answer
    with_staff_since: dt.datetime | None = None  # handed over to staff
    relayed: int = 0  # messages relayed to staff since relay_window_at
    relay_window_at: dt.datetime | None = None
    last_seen_at: dt.datetime = Field(default_factory=utcnow)
    sent_since_seen: int = 0  # messages sent since the citizen last wrote (Zalo allows 8)


class Unanswered(SQLModel, table=True):
    """A question the assistant could not answer, kept for staff to review."""

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)
    user_id: str = Field(max_length=128)
    text: str = Field(sa_type=Text)
    at: dt.datetime = Field(default_factory=utcnow)
    # "declined", or "unsure": answered (``answered``: the procedure, "" for a choice offered)
    # with a match too weak to be sure of (``score``), for staff to confirm or correct.
    kind: str = Field(default="declined", max_length=8,
                      sa_column_kwargs={"server_default": "declined"})
    answered: str | None = Field(default=None, max_length=16)
    score: float | None = None


class SeenEvent(SQLModel, table=True):
    """A channel event (Telegram update, Zalo message) already handled: handled once only."""

    __table_args__ = (UniqueConstraint("channel", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    event_id: str = Field(max_length=128)
    at: dt.datetime = Field(default_factory=utcnow)


class ChannelToken(SQLModel, table=True):
    """A channel credential that rotates (Zalo's access and refresh tokens)."""

    __table_args__ = (UniqueConstraint("commune_id", "channel", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)
    name: str = Field(max_length=32)  # "access_token", "refresh_token"
    value: str = Field(sa_type=Text)
    expires_at: dt.datetime | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)


class JobRun(SQLModel, table=True):
    """One run of a periodic job for one slot (its hour, its day): claimed by the instance
    that inserts it, so a job runs once per slot however many instances are up."""

    __table_args__ = (UniqueConstraint("name", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    slot: str = Field(max_length=32)  # the slot's start, local time, ISO 8601
    started_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    outcome: str = Field(default="", max_length=200)  # "ok", counts, or the error's kind


class AnnouncementSubscriber(SQLModel, table=True):
    """A citizen's consent to the commune's announcements on one channel: when, where, in
    which language (and hamlet); kept with ``withdrawn_at`` when they stop, as the record."""

    __table_args__ = (UniqueConstraint("commune_id", "channel", "recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=128)
    lang: str = Field(default="vi", max_length=8)
    hamlet: str = Field(default="", max_length=64)  # folded ("thon 3"), "" when not named
    consented_at: dt.datetime = Field(default_factory=utcnow)
    withdrawn_at: dt.datetime | None = None


class Broadcast(SQLModel, table=True):
    """A staff announcement: its text, audience and when it goes out."""

    __table_args__ = (Index("ix_broadcast_due", "status", "send_at"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    text: str = Field(sa_type=Text)
    link: str = Field(default="", max_length=500)
    image: str = Field(default="", max_length=2048)  # an https:// image URL, sent as a photo
    audience: str = Field(default="all", max_length=16)  # all, field, procedure, hamlet, lang
    audience_value: str = Field(default="", max_length=200)
    created_by: str = Field(max_length=120)  # "cli", "api:<integration>", "telegram:<user id>"
    created_at: dt.datetime = Field(default_factory=utcnow)
    status: str = Field(default="draft", max_length=16)  # draft, scheduled, queued, cancelled
    send_at: dt.datetime | None = None
    queued_at: dt.datetime | None = None
    recipients: int = 0  # outbox rows written when it was queued


class StaffAccount(SQLModel, table=True):
    """A commune staff member who signs in to the console: an admin or an officer."""

    __table_args__ = (UniqueConstraint("telegram_id"), UniqueConstraint("zalo_id"))

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    login: str = Field(max_length=64, unique=True)  # folded to lower case
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # "admin", "officer", "province" (storage.staff.ROLES)
    password_hash: str = Field(max_length=200)  # argon2id, with its parameters and salt
    disabled: bool = False
    # The staff member's own chat identities, linked later so chat commands share the roles.
    telegram_id: str | None = Field(default=None, max_length=64)
    zalo_id: str | None = Field(default=None, max_length=64)
    # The SHA-256 of a one-time code the console shows, sent to the bot to link a chat identity.
    link_code_hash: str | None = Field(default=None, max_length=64)
    link_code_expires_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console browser; only the SHA-256 of its cookie token is stored."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(
        sa_column=Column(Integer, ForeignKey("staffaccount.id", ondelete="CASCADE"),
                         nullable=False, index=True))
    token_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime


class AuditEntry(SQLModel, table=True):
    """Who did what to what in a commune (staff console and staff CLI)."""

    __table_args__ = (Index("ix_auditentry_commune_at", "commune_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = Field(sa_column=Column(Integer, ForeignKey("commune.id"), nullable=False))
    actor: str = Field(max_length=120)  # "staff:<login>", "cli:<os user>"
    action: str = Field(max_length=64)  # "staff.create", "console.login", …
    target: str = Field(default="", max_length=200)
    detail: str = Field(default="", sa_type=Text)
    at: dt.datetime = Field(default_factory=utcnow)


class Feedback(SQLModel, table=True):
    """A citizen's report about the service (phản ánh, kiến nghị): its kind, what it is about,
    and the staff's handling; ``status`` "draft" while the citizen is still writing it."""

    __table_args__ = (
        Index("ix_feedback_commune_status_due", "commune_id", "status", "due_at"),
        Index("ix_feedback_author", "commune_id", "channel", "recipient", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)  # where it was filed; the answer goes back there
    recipient: str = Field(max_length=128)  # the channel's user id: only they see the text
    lang: str = Field(default="vi", max_length=8)
    kind: str = Field(default="", max_length=16)  # storage.feedback.KINDS
    receipt_code: str = Field(default="", max_length=64)
    procedure_code: str = Field(default="", max_length=16)
    description: str = Field(default="", sa_type=Text)
    status: str = Field(default="draft", max_length=16)  # draft, open, assigned, answered, closed
    assignee: str = Field(default="", max_length=64)  # a staff login
    answer: str = Field(default="", sa_type=Text)
    answered_by: str = Field(default="", max_length=120)
    created_at: dt.datetime = Field(default_factory=utcnow)
    filed_at: dt.datetime | None = None
    due_at: dt.datetime | None = None  # the staff's deadline to answer
    answered_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None


class Rating(SQLModel, table=True):
    """A citizen's satisfaction (1–5) with a returned application or a hand-over; asked once
    per subject and account; ``score`` None while the question is open."""

    __table_args__ = (
        UniqueConstraint("commune_id", "channel", "recipient", "subject"),
        Index("ix_rating_commune_rated", "commune_id", "rated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=128)
    subject: str = Field(max_length=64)  # "application:<id>", "handover:<start, epoch s>"
    application_id: int | None = None
    procedure_code: str = Field(default="", max_length=16)
    officer: str = Field(default="", max_length=120)  # StatusChange.changed_by, or the staff
    score: int | None = None
    comment: str = Field(default="", sa_type=Text)
    asked_at: dt.datetime | None = None  # None: a hand-over still going on
    rated_at: dt.datetime | None = None


class KnowledgeChange(SQLModel, table=True):
    """A change staff made to the commune's knowledge in the console (task CK): an alias (a
    phrasing that means a procedure or a FAQ entry) or a new FAQ entry. Undoing one sets
    ``undone_at``; rows are never deleted, so the list is the history of the knowledge."""

    __table_args__ = (Index("ix_knowledgechange_commune_version", "commune_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    commune_id: int = _commune_fk()
    version: int  # the commune's knowledge version this change made (KnowledgeVersion)
    kind: str = Field(max_length=8)  # "alias", "faq"
    phrasing: str = Field(sa_type=Text)  # the citizens' wording (a FAQ: its first question)
    target: str = Field(max_length=80)  # alias: a procedure code or "faq:<id>"; faq: its id
    entry: str = Field(default="", sa_type=Text)  # faq: the entry (knowledge.schema.Faq) as JSON
    unanswered_id: int | None = None  # the missed question (Unanswered) it answers, if any
    created_by: str = Field(max_length=120)  # "staff:<login>"
    created_at: dt.datetime = Field(default_factory=utcnow)
    undone_at: dt.datetime | None = None
    undone_by: str = Field(default="", max_length=120)


class KnowledgeVersion(SQLModel, table=True):
    """A commune's knowledge version, raised by every change and undo: a running assistant
    compares it with the one it was built from (one primary-key lookup) to know when to
    rebuild."""

    commune_id: int = Field(sa_column=Column(Integer, ForeignKey("commune.id"),
                                             primary_key=True))
    version: int = 0
