"""The composition root: the server assembled from one ``Settings``.

The web application (web chat, REST API), each commune's configured channels (their routes
and outbox senders) and jobs, the outbox dispatcher and the scheduler are built here and
nowhere else; adding a channel or a job touches this module (and ``bot.jobs`` for a job).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from aiohttp import web

from bot import jobs
from bot.limits import SharedSlots
from bot.outbox import Channels, Dispatcher, Outcome, Pace, QuietHours, Sender
from bot.runtime import open_offices
from bot.settings import CommuneSettings, Settings, TelegramConfig, env_suffix
from bot.telegram import add_telegram_routes, build_application
from bot.telegram import senders as telegram_senders
from bot.web import DIALOGUE, add_commune, create_app, make_runner
from bot.workers import until_orphaned
from bot.zalo import ZaloClient, add_zalo_routes
from handlers.applications import Office
from handlers.messages import Reply
from knowledge.answer import Assistant
from knowledge.loader import KnowledgeBase
from storage import staff
from storage.db import session_scope

log = logging.getLogger(__name__)


def paces(settings: Settings, shared: SharedSlots | None = None,
          telegram: TelegramConfig | None = None) -> dict[str, Pace]:
    """The outbox's limits per channel of one commune. Its bot (``telegram``) sends to the
    citizens' chats and to the staff group; every "staff" row goes to that one group, so
    they are paced as one chat. The processes sending for the bot share its limits in
    ``shared`` (Redis), keyed by the bot's id, or each keeps to its share of them."""
    bot = telegram.token.partition(":")[0] if telegram else ""
    pace = Pace(settings.telegram_rate, settings.telegram_chat_rate, name=f"telegram:{bot}",
                shared=shared, processes=settings.workers)
    return {"telegram": pace, "staff": Pace(per_recipient=settings.staff_chat_rate / 60,
                                            one_chat=True, within=pace,
                                            name=f"telegram-staff:{bot}", shared=shared,
                                            processes=settings.workers)}


async def _console_staffed(office: Office) -> bool:
    """Whether the commune has a console account able to take hand-overs."""
    async with session_scope(office.sessions) as session:
        accounts = await staff.list_accounts(session, commune_id=office.commune_id)
    return any(not account.disabled and account.role != "province" for account in accounts)


async def _to_console(recipient: str, reply: Reply) -> Outcome:
    """The "staff" sender without a Telegram staff group: the console's inbox reads the rows."""
    return Outcome.SENT


def _cancelling(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return cancel


def _channels(settings: Settings, commune: CommuneSettings, office: Office,
              app: web.Application, *, prefix: str, shared: SharedSlots | None,
              console: bool, closing: list[Callable[[], Awaitable[None]]]
              ) -> tuple[Channels, list[jobs.Job]]:
    """One commune's channels (their webhooks in ``app``, under ``prefix``) and jobs."""
    telegram, zalo, suffix = commune.telegram, commune.zalo, env_suffix(commune.slug)
    senders: dict[str, Sender] = {} if (telegram and telegram.staff_chat_id) or not console \
        else {"staff": _to_console}
    kind_senders: dict[tuple[str, str], Sender] = {}
    periodic = [jobs.retention_job(office, settings.retention), jobs.reminders_job(office),
                jobs.broadcasts_job(office)]
    if telegram is None:
        log.info("telegram: off for %s (set TELEGRAM_BOT_TOKEN%s to turn it on)",
                 commune.slug, suffix if prefix else "")
    else:
        application = build_application(telegram, app[DIALOGUE],
                                        polling=not telegram.public_base_url)
        add_telegram_routes(app, application, telegram, prefix=prefix)
        senders.update(telegram_senders(application, telegram))
        if telegram.staff_chat_id:  # the digest's only destination so far
            periodic.append(jobs.staff_digest_job(office))
    if zalo is None:
        log.info("zalo: off for %s (set ZALO_APP_ID, ZALO_APP_SECRET, ZALO_OA_SECRET_KEY, "
                 "ZALO_ACCESS_TOKEN and ZALO_REFRESH_TOKEN%s to turn it on)", commune.slug,
                 f", each ending {suffix}," if prefix else "")
    else:
        client = ZaloClient(zalo, office)
        add_zalo_routes(app, dialogue=app[DIALOGUE], config=zalo, client=client)
        senders["zalo"] = client.notify
        kind_senders.update(client.kind_senders())
        periodic.append(jobs.zalo_token_job(client))
        closing.append(client.close)
    if prefix:  # the first commune's jobs keep their names; every job runs once per commune
        periodic = [replace(job, name=f"{job.name}:{commune.slug}") for job in periodic]
    return Channels(senders, kind_senders, paces(settings, shared, telegram)), periodic


@dataclass
class Server:
    """Every commune's server, built and not yet running: the web application, the outbox
    dispatcher (each commune's messages through its own channels), the periodic jobs of
    every commune, and what to close at the end."""

    app: web.Application
    outbox: Dispatcher
    jobs: list[jobs.Job]
    closing: list[Callable[[], Awaitable[None]]]


async def build(settings: Settings, kb: KnowledgeBase, offices: list[Office]) -> Server:
    """The server of ``offices`` (one per commune of ``settings``, the first at the root
    paths). ``kb`` is loaded once and shared: each commune answers from it with its profile."""
    closing: list[Callable[[], Awaitable[None]]] = []
    shared = SharedSlots(settings.redis_url) if settings.redis_url else None
    if shared is not None:
        closing.append(shared.close)
    bundled, app = Assistant(kb), None
    channels: dict[int, Channels] = {}
    periodic: list[jobs.Job] = []
    for commune, office in zip(settings.communes, offices, strict=True):
        assistant = bundled.for_commune(office.kb.commune, office.kb.procedures)
        console = await _console_staffed(office)
        # Hand-overs reach staff in the Telegram group, in the console, or both.
        staffed = bool(commune.telegram and commune.telegram.staff_chat_id) or console
        if app is None:
            app = here = create_app(assistant, office, settings=settings, staff_channel=staffed)
        else:
            here = add_commune(app, assistant, office, commune, staff_channel=staffed)
        channels[office.commune_id], more = _channels(
            settings, commune, office, here, prefix="" if here is app else commune.path,
            shared=shared, console=console, closing=closing)
        periodic += more
        if here is not app:
            app.add_subapp(commune.path, here)  # its routes are complete: mounting freezes them
    assert app is not None, "Settings serve one commune at least"
    first = channels.pop(offices[0].commune_id)
    outbox = Dispatcher(
        offices[0], first.senders, kind_senders=first.kind_senders, paces=first.paces,
        others=channels, retry_after=dt.timedelta(seconds=settings.outbox_retry),
        expiry=dt.timedelta(days=settings.outbox_expiry_days),
        quiet=QuietHours.parse(settings.quiet_hours))
    return Server(app, outbox, periodic, closing)


async def serve(settings: Settings, kb: KnowledgeBase, *,
                listener: socket.socket | None = None) -> None:
    """Run the server of every commune of ``settings`` until cancelled; refuse to start on a
    dangerous configuration. ``listener``: a listening socket to serve on (one of ``serve
    --workers``) in place of ``settings.host`` and ``settings.port``."""
    if settings.problems:
        raise SystemExit("refusing to start:\n  " + "\n  ".join(settings.problems))
    stop = asyncio.Event()  # set when a worker's supervisor is gone; else cancelled (SIGTERM)
    log.info("knowledge base: %d procedures, %d FAQ entries", len(kb.procedures), len(kb.faqs))
    async with open_offices(settings, kb) as offices:
        server = await build(settings, kb, offices)
        runner = make_runner(server.app, settings)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port) if listener is None \
            else web.SockSite(runner, listener)
        await site.start()
        log.info("web chat on http://%s:%d/ for %s", settings.host, settings.port,
                 ", ".join(office.kb.commune.name for office in offices))
        outbox = asyncio.create_task(server.outbox.run_forever())
        scheduler = jobs.Scheduler(offices[0], server.jobs)
        scheduler.start()
        closing = server.closing
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
