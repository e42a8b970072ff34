"""The composition root: the server assembled from one ``Settings``.

The web application (web chat, REST API), each configured channel (its routes and its
outbox sender), the outbox dispatcher and the periodic jobs are built here and nowhere else;
adding a channel or a job touches this module (and ``bot.jobs`` for a job).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import jobs
from bot.limits import SharedSlots
from bot.outbox import Dispatcher, Outcome, Pace, QuietHours, Sender
from bot.runtime import open_office
from bot.settings import Settings
from bot.telegram import add_telegram_routes, build_application
from bot.telegram import senders as telegram_senders
from bot.web import DIALOGUE, create_app, make_runner
from bot.workers import until_orphaned
from bot.zalo import ZaloClient, add_zalo_routes
from handlers.applications import Office
from handlers.messages import Reply
from knowledge.answer import Assistant
from knowledge.loader import KnowledgeBase
from storage import staff
from storage.db import session_scope

log = logging.getLogger(__name__)


def paces(settings: Settings, shared: SharedSlots | None = None) -> dict[str, Pace]:
    """The outbox's limits per channel. One bot sends to the citizens' chats and to the staff
    group; every "staff" row goes to that one group, so they are paced as one chat. The
    processes sending for the bot share its limits in ``shared`` (Redis), keyed by the bot's
    id, or each keeps to its share of them."""
    bot = settings.telegram.token.partition(":")[0] if settings.telegram else ""
    telegram = Pace(settings.telegram_rate, settings.telegram_chat_rate, name=f"telegram:{bot}",
                    shared=shared, processes=settings.workers)
    return {"telegram": telegram, "staff": Pace(per_recipient=settings.staff_chat_rate / 60,
                                                one_chat=True, within=telegram,
                                                name=f"telegram-staff:{bot}", shared=shared,
                                                processes=settings.workers)}


async def _console_staffed(office: Office) -> bool:
    """Whether the commune has a console account able to take hand-overs."""
    async with session_scope(office.sessions) as session:
        accounts = await staff.list_accounts(session, commune_id=office.commune_id)
    return any(not account.disabled for account in accounts)


async def _to_console(recipient: str, reply: Reply) -> Outcome:
    """The "staff" sender without a Telegram staff group: the console's inbox reads the rows."""
    return Outcome.SENT


def _cancelling(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return cancel


async def serve(settings: Settings, kb: KnowledgeBase, *,
                listener: socket.socket | None = None) -> None:
    """Run the server until cancelled; refuse to start on a dangerous
    configuration. ``listener``: a listening socket to serve on (one of ``serve --workers``)
    in place of ``settings.host`` and ``settings.port``."""
    if settings.problems:
        raise SystemExit("refusing to start:\n  " + "\n  ".join(settings.problems))
    stop = asyncio.Event()  # set when a worker's supervisor is gone; else cancelled (SIGTERM)
    log.info("knowledge base: %d procedures, %d FAQ entries", len(kb.procedures), len(kb.faqs))
    async with open_office(settings, kb) as office:
        telegram, zalo = settings.telegram, settings.zalo
        group = bool(telegram and telegram.staff_chat_id)
        console = await _console_staffed(office)
        # Hand-overs reach staff in the Telegram group, in the console, or both.
        app = create_app(Assistant(kb), office, settings=settings,
                         staff_channel=group or console)
        senders: dict[str, Sender] = {} if group or not console else {"staff": _to_console}
        kind_senders: dict[tuple[str, str], Sender] = {}
        periodic = [jobs.retention_job(office, settings.retention), jobs.reminders_job(office)]
        periodic.append(jobs.broadcasts_job(office))
        closing: list[Callable[[], Awaitable[None]]] = []
        if telegram is None:
            log.info("telegram: off (set TELEGRAM_BOT_TOKEN to turn it on)")
        else:
            application = build_application(telegram, app[DIALOGUE],
                                            polling=not telegram.public_base_url)
            add_telegram_routes(app, application, telegram)
            senders.update(telegram_senders(application, telegram))
            if telegram.staff_chat_id:  # the digest's only destination so far
                periodic.append(jobs.staff_digest_job(office))
        if zalo is None:
            log.info("zalo: off (set ZALO_APP_ID, ZALO_APP_SECRET, ZALO_OA_SECRET_KEY, "
                     "ZALO_ACCESS_TOKEN and ZALO_REFRESH_TOKEN to turn it on)")
        else:
            client = ZaloClient(zalo, office)
            add_zalo_routes(app, dialogue=app[DIALOGUE], config=zalo, client=client)
            senders["zalo"] = client.notify
            kind_senders.update(client.kind_senders())
            periodic.append(jobs.zalo_token_job(client))
            closing.append(client.close)
        runner = make_runner(app, settings)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port) if listener is None \
            else web.SockSite(runner, listener)
        await site.start()
        log.info("web chat on http://%s:%d/", settings.host, settings.port)
        shared = SharedSlots(settings.redis_url) if settings.redis_url else None
        if shared is not None:
            closing.append(shared.close)
        outbox = asyncio.create_task(Dispatcher(
            office, senders, kind_senders=kind_senders,
            retry_after=dt.timedelta(seconds=settings.outbox_retry),
            paces=paces(settings, shared),
            expiry=dt.timedelta(days=settings.outbox_expiry_days),
            quiet=QuietHours.parse(settings.quiet_hours)).run_forever())
        scheduler = jobs.Scheduler(office, periodic)
        scheduler.start()
        if listener is not None:  # one of serve --workers: not without its supervisor
            closing.append(_cancelling(asyncio.create_task(until_orphaned(stop))))
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await scheduler.stop()
            outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbox
            await runner.cleanup()
            for close in closing:
                await close()
