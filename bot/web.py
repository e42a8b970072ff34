"""The aiohttp application: the web chat page and its JSON endpoint, and a health check."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from pathlib import Path

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from bot.api import OFFICE, add_routes
from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage, Unavailable
from knowledge.answer import Assistant
from knowledge.i18n import LANGUAGES
from storage.applications import take_for_recipient
from storage.db import session_scope

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
ASSISTANT = web.AppKey("assistant", Assistant)
DIALOGUE = web.AppKey("dialogue", Dialogue)
MAX_BODY = 64 * 1024


async def chat_page(request: web.Request) -> web.FileResponse:
    """The web chat page."""
    return web.FileResponse(STATIC / "chat.html")


async def chat_api(request: web.Request) -> web.Response:
    """``POST /api/chat`` ``{"text", "payload"?, "lang"?, "user"?}`` → ``{"replies": [...]}``."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested 1,000 deep
        return web.json_response({"error": "body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    text, payload, lang = body.get("text", ""), body.get("payload", ""), body.get("lang")
    user = body.get("user", "")
    if not all(isinstance(v, str) for v in (text, payload, user)) or not user:
        return web.json_response({"error": "user, text and payload must be strings"},
                                 status=400)
    message = IncomingMessage(channel="web", user_id=user[:128], text=text[:4000],
                              payload=payload[:200], lang=lang if lang in LANGUAGES else None)
    try:
        replies = await request.app[DIALOGUE].handle(message)
    except Unavailable:  # nothing was saved; the page keeps the text to send again
        return web.json_response({"error": "database unavailable, try again"}, status=503)
    return web.json_response({"replies": [asdict(r) for r in replies]})


async def chat_inbox(request: web.Request) -> web.Response:
    """``GET /api/chat/inbox?user=…``: messages waiting for a web chat user (status changes of
    followed applications, staff replies); the page polls it."""
    user = request.query.get("user", "")
    if not user or len(user) > 128:
        return web.json_response({"error": "user is required"}, status=400)
    office = request.app[OFFICE]
    async with session_scope(office.sessions) as session:
        texts = await take_for_recipient(session, channel="web", recipient=user,
                                         now=dt.datetime.now(dt.UTC))
    return web.json_response({"replies": [{"text": t, "buttons": []} for t in texts]})


async def healthz(request: web.Request) -> web.Response:
    """200 when the knowledge base is loaded and the database answers, else 503."""
    body: dict[str, object] = {"procedures": len(request.app[ASSISTANT].kb.procedures)}
    try:
        async with request.app[OFFICE].sessions() as session:
            await session.exec(select(1))
    except (OSError, SQLAlchemyError) as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return web.json_response({**body, "status": "database unreachable"}, status=503)
    return web.json_response({**body, "status": "ok"})


def create_app(assistant: Assistant, office: Office, *, staff_channel: bool = False
               ) -> web.Application:
    """Build the application around a loaded assistant and a commune's office;
    ``staff_channel`` says whether hand-overs reach staff (the Telegram staff group)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[ASSISTANT] = assistant
    app[OFFICE] = office
    app[DIALOGUE] = Dialogue(assistant, office, staff_channel=staff_channel)
    add_routes(app)
    app.router.add_get("/", chat_page)
    app.router.add_post("/api/chat", chat_api)
    app.router.add_get("/api/chat/inbox", chat_inbox)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC)
    return app
