"""Staff broadcasts, whatever the channel they are made from (CLI, REST API, staff chat).

A broadcast is created as a draft with a preview (its text as citizens will read it, and how
many will get it); it goes out only once confirmed (``schedule``): at once, or at its time by
the scheduled-broadcast job. Going out is one outbox row per recipient, written in one
statement; cancelling deletes the rows not yet sent.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.applications import Office
from handlers.messages import Button, dump_buttons, storable
from knowledge.i18n import LANGUAGES, Text
from knowledge.text import fold
from storage import broadcasts as repo
from storage.broadcasts import AUDIENCES, Report
from storage.db import session_scope
from storage.models import Broadcast

MAX_TEXT = 1800  # fits one message on every channel (Zalo's consultation text is 2,000)
MAX_IMAGE_URL = 2048  # an image's address; Telegram and Zalo fetch it themselves
STOP_ANNOUNCEMENTS = "announcements:off"  # the button payload that withdraws consent
START_ANNOUNCEMENTS = "announcements:on"  # the button payload that subscribes
_HAMLET = re.compile(r"\b(thon|xom|ap|khu)\s+([a-z0-9]+(?:\s+\d+)?)")


class BroadcastError(ValueError):
    """A broadcast that cannot be made or changed as asked (the message says why)."""


@dataclass(frozen=True)
class Preview:
    """A broadcast as it will go out: what citizens read and how many will get it."""

    broadcast: Broadcast
    text: str
    recipients: int


def hamlet_of(text: str) -> str:
    """The hamlet named in ``text``, folded ("Thôn Đông 3" → "thon dong 3"), else ""."""
    match = _HAMLET.search(fold(text))
    return f"{match.group(1)} {match.group(2)}" if match else ""


def render(broadcast: Broadcast, lang: str, commune: str) -> tuple[str, str | None]:
    """The text and buttons (JSON) of a broadcast as a citizen reading ``lang`` gets it."""
    t = Text("en" if lang == "en" else "vi")
    lines = [t("Announcement from {commune}:", commune=commune), "", broadcast.text]
    if broadcast.link:
        lines.append(broadcast.link)
    return "\n".join(lines), dump_buttons([Button(t("Stop announcements"), STOP_ANNOUNCEMENTS)])


def _check_image(image: str) -> str:
    """The cleaned image address ("" for none), or ``BroadcastError``: an https:// URL of at
    most 2,048 characters (channels fetch it; a page served over https shows only those)."""
    image = storable(image).strip()
    if image and (len(image) > MAX_IMAGE_URL
                  or not re.fullmatch(r"https://[^\s/?#@]+(?:[/?#]\S*)?", image)):
        raise BroadcastError(f"the image must be an https:// address of at most "
                             f"{MAX_IMAGE_URL} characters")
    return image


def _check(text: str, link: str, audience: str, value: str) -> tuple[str, str, str]:
    """The cleaned text, link and audience value, or ``BroadcastError``."""
    text, link, value = storable(text).strip(), storable(link).strip(), storable(value).strip()
    if not text:
        raise BroadcastError("the announcement has no text")
    if len(text) > MAX_TEXT:
        raise BroadcastError(f"the announcement is longer than {MAX_TEXT} characters")
    if link and (not re.fullmatch(r"https?://\S{1,490}", link)):
        raise BroadcastError("the link must be an http:// or https:// address")
    if audience not in AUDIENCES:
        raise BroadcastError(f"audience must be one of {', '.join(AUDIENCES)}")
    if audience != "all" and not value:
        raise BroadcastError(f"audience {audience} needs a value")
    if audience == "lang" and value not in LANGUAGES:
        raise BroadcastError(f"language must be one of {', '.join(LANGUAGES)}")
    if audience == "hamlet":
        value = hamlet_of(value) or fold(value)
    return text, link, value[:200]


async def create(office: Office, *, text: str, created_by: str, link: str = "",
                 image: str = "", audience: str = "all", value: str = "",
                 now: dt.datetime | None = None) -> Preview:
    """A new draft broadcast and its preview; nothing is sent until it is confirmed."""
    text, link, value = _check(text, link, audience, value)
    image = _check_image(image)
    async with session_scope(office.sessions) as session:
        broadcast = await repo.add(session, Broadcast(
            commune_id=office.commune_id, text=text, link=link, image=image, audience=audience,
            audience_value=value, created_by=created_by[:120],
            created_at=now or dt.datetime.now(dt.UTC)))
        count = await repo.count_audience(session, commune_id=office.commune_id,
                                          kind=audience, value=value)
    return Preview(broadcast, render(broadcast, "vi", office.kb.commune.name)[0], count)


async def preview(office: Office, broadcast_id: int) -> Preview:
    """A broadcast's preview with its audience counted now."""
    async with session_scope(office.sessions) as session:
        broadcast = await _get(session, office, broadcast_id)
        count = broadcast.recipients if broadcast.status == "queued" else \
            await repo.count_audience(session, commune_id=office.commune_id,
                                      kind=broadcast.audience, value=broadcast.audience_value)
    return Preview(broadcast, render(broadcast, "vi", office.kb.commune.name)[0], count)


async def schedule(office: Office, broadcast_id: int, *, at: dt.datetime | None = None,
                   now: dt.datetime | None = None) -> Broadcast:
    """Confirm a draft: send it at ``at`` (by the job), or now when ``at`` is None or past."""
    now = now or dt.datetime.now(dt.UTC)
    if at is not None and at.tzinfo is None:
        raise BroadcastError("the time must have a time zone")
    async with session_scope(office.sessions) as session:
        broadcast = await _get(session, office, broadcast_id)
        if broadcast.status not in repo.OPEN:
            raise BroadcastError(f"broadcast {broadcast_id} is {broadcast.status}")
        broadcast.status, broadcast.send_at = "scheduled", max(at or now, now)
        session.add(broadcast)
    if broadcast.send_at is not None and broadcast.send_at <= now:
        await send(office, broadcast_id, now=now)
    return await _fresh(office, broadcast_id)


async def send(office: Office, broadcast_id: int, *, now: dt.datetime | None = None
               ) -> int | None:
    """Queue a scheduled broadcast for its audience now: how many messages, None if it was
    not scheduled (already queued by another instance, or cancelled)."""
    now = now or dt.datetime.now(dt.UTC)
    async with session_scope(office.sessions) as session:
        broadcast = await _get(session, office, broadcast_id)
        texts: dict[str, tuple[str, str | None]] = {
            lang: render(broadcast, lang, office.kb.commune.name) for lang in LANGUAGES}
        return await repo.queue(session, broadcast_id=broadcast_id, now=now, texts=texts)


async def send_due(office: Office, *, now: dt.datetime) -> list[tuple[int, int]]:
    """Queue every scheduled broadcast of the commune whose time has come: (id, messages)."""
    async with session_scope(office.sessions) as session:
        ids = await repo.due(session, commune_id=office.commune_id, now=now)
    out = []
    for broadcast_id in ids:
        queued = await send(office, broadcast_id, now=now)
        if queued is not None:
            out.append((broadcast_id, queued))
    return out


async def cancel(office: Office, broadcast_id: int, *, now: dt.datetime | None = None) -> int:
    """Cancel a broadcast: what is not yet sent is not sent; how many messages were stopped."""
    async with session_scope(office.sessions) as session:
        broadcast = await _get(session, office, broadcast_id)
        if broadcast.status == "cancelled":
            return 0
        return await repo.cancel(session, broadcast=broadcast,
                                 at=now or dt.datetime.now(dt.UTC))


async def status(office: Office, broadcast_id: int) -> tuple[Broadcast, Report]:
    """A broadcast and its report per channel."""
    async with session_scope(office.sessions) as session:
        broadcast = await _get(session, office, broadcast_id)
        return broadcast, await repo.report(session, broadcast_id=broadcast_id)


async def _fresh(office: Office, broadcast_id: int) -> Broadcast:
    async with session_scope(office.sessions) as session:
        return await _get(session, office, broadcast_id)


async def _get(session: AsyncSession, office: Office, broadcast_id: int) -> Broadcast:
    broadcast = await repo.get(session, commune_id=office.commune_id, broadcast_id=broadcast_id)
    if broadcast is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    return broadcast
