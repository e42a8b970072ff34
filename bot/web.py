"""The aiohttp application: each commune's web chat page and its JSON endpoint, REST API and
procedure pages (under ``/c/<slug>/``, the first commune's also at the root paths), the staff
console, and one health check, metrics and static files for all."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import traceback
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from limits import RateLimitItem
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from bot import metrics
from bot.api import OFFICE, Handler, add_routes, api_key
from bot.communes import COMMUNES, Served, communes_page, local_path
from bot.console import add_console_routes
from bot.limits import Limiter, client_address, parse_limit
from bot.observability import add_observability, observed
from bot.procedure_page import add_procedure_routes
from bot.runtime import hash_key
from bot.settings import CommuneSettings, Settings
from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage, Unavailable
from handlers.knowledge import LiveKnowledge, kept_current
from handlers.messages import queued_reply
from knowledge.answer import Assistant
from knowledge.i18n import LANGUAGES
from storage.applications import take_for_recipient
from storage.db import session_scope, unavailable

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
ASSISTANT = web.AppKey("assistant", Assistant)
DIALOGUE = web.AppKey("dialogue", Dialogue)
MAX_BODY = 64 * 1024
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
RETRY_AFTER = "5"  # seconds to wait on 503: a restarting database is usually back by then
SESSION_HEADER = "X-Chat-Session"
# Webhooks are authenticated by their platform's signature and must never be refused for
# volume (the platform would retry, or give up on the bot); Zalo's reads its body itself.
UNLIMITED_PREFIX = "/webhook/"
STREAMED_BODIES = frozenset({"/webhook/zalo", "/console/applications/import"})


def commune_app(request: web.Request) -> web.Application:
    """The application of the commune the request is for (also inside the middlewares,
    which run in the root application)."""
    apps = request.match_info.apps
    return apps[-1] if apps else request.app


@dataclass(frozen=True)
class Budgets:
    """How many requests fit in a window, per kind of client."""

    chat_user: RateLimitItem
    chat_address: RateLimitItem
    api_key: RateLimitItem
    address: RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> Budgets:
        """The limits configured in ``settings``."""
        return cls(parse_limit(settings.limit_chat_user),
                   parse_limit(settings.limit_chat_address),
                   parse_limit(settings.limit_api_key), parse_limit(settings.limit_address))


@dataclass(frozen=True)
class Protection:
    """What the middlewares need: limits, proxies, the session key, embedding sites."""

    settings: Settings
    budgets: Budgets
    limiter: Limiter
    session_key: bytes
    content_security_policy: str
    embedders: tuple[re.Pattern[str], ...]


PROTECTION = web.AppKey("protection", Protection)


async def chat_page(request: web.Request) -> web.FileResponse:
    """The web chat page."""
    return web.FileResponse(STATIC / "chat.html")


def _signature(key: bytes, user: str) -> str:
    digest = hmac.new(key, user.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def new_session(key: bytes) -> tuple[str, str]:
    """A web chat user id chosen here, and the token that proves it: ``id.signature``."""
    user = "web-" + secrets.token_hex(16)
    return user, f"{user}.{_signature(key, user)}"


def session_user(request: web.Request) -> str | None:
    """The web chat user whose token the request carries (``X-Chat-Session``), if genuine and
    opened in this commune's chat."""
    token = request.headers.get(SESSION_HEADER, "")
    user, _, signature = token.rpartition(".")
    key = commune_app(request)[PROTECTION].session_key
    if not user or len(token) > 200 or not hmac.compare_digest(
            signature.encode(), _signature(key, user).encode()):
        return None
    return user


def _same_site(request: web.Request) -> bool:
    """A browser's Origin, when sent, is this site or a site allowed to embed the chat."""
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser, or a same-origin GET: nothing to forge
        return True
    if urlsplit(origin).netloc == request.host:
        return True
    return any(p.fullmatch(origin) for p in request.app[PROTECTION].embedders)


async def chat_api(request: web.Request) -> web.Response:
    """``POST /api/chat`` ``{"text", "payload"?, "lang"?, "id"?}`` → ``{"replies": [...],
    "session"?}``: the first message without a genuine ``X-Chat-Session`` opens a session,
    whose token comes back under ``session`` for the page to send with every request."""
    if not _same_site(request):
        return web.json_response({"error": "origin not allowed"}, status=403)
    if request.content_type != "application/json":  # forms and text/plain skip CORS checks
        return web.json_response({"error": "Content-Type must be application/json"},
                                 status=415)
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested 1,000 deep; huge ints
        return web.json_response({"error": "body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    text, payload, lang = body.get("text", ""), body.get("payload", ""), body.get("lang")
    message_id = body.get("id", "")
    if not all(isinstance(v, str) for v in (text, payload, message_id)):
        return web.json_response({"error": "text, payload and id must be strings"}, status=400)
    if message_id and not MESSAGE_ID.fullmatch(message_id):
        return web.json_response({"error": "id must be 1-64 letters, digits, - or _"},
                                 status=400)
    user, token = session_user(request), None
    if user is None:  # a body's "user" is the client's choice, so it is never trusted
        user, token = new_session(request.app[PROTECTION].session_key)
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                             request.app[PROTECTION].settings.trusted_proxies)
    # The page's id for the message: sent again after a lost answer, it gets the same replies.
    message = IncomingMessage(channel="web", user_id=user, text=text[:4000],
                              payload=payload[:200], lang=lang if lang in LANGUAGES else None,
                              client=address,
                              event_id=f"{user}:{message_id}" if message_id else "")
    try:
        replies = await request.app[DIALOGUE].handle(message)
    except Unavailable:  # nothing was saved; the page keeps the text to send again
        metrics.observe_unavailable("web")
        return web.json_response({"error": "database unavailable, try again"}, status=503)
    metrics.observe_turn("web", replies)
    answer: dict[str, object] = {"replies": [asdict(r) for r in replies]}
    if token is not None:
        answer["session"] = token
    return web.json_response(answer)


async def chat_inbox(request: web.Request) -> web.Response:
    """``GET /api/chat/inbox`` with ``X-Chat-Session``: messages waiting for this web chat
    user (status changes of followed applications, staff replies); the page polls it."""
    user = session_user(request)
    if user is None:
        return web.json_response({"error": "session required"}, status=403)
    office = request.app[OFFICE]
    async with session_scope(office.sessions) as session:
        waiting = await take_for_recipient(session, channel="web", recipient=user,
                                           now=dt.datetime.now(dt.UTC))
    return web.json_response({"replies": [asdict(queued_reply(m.text, m.buttons, m.image))
                                          for m in waiting]})


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


async def _too_many(request: web.Request, wait: int) -> web.Response:
    # Answering a refusal at once lets a flooder send the next request at once, and the
    # refusals alone then take the server's CPU; held for a moment, each of its connections
    # costs next to nothing while the citizens are served.
    await asyncio.sleep(min(wait, request.app[PROTECTION].settings.refusal_delay))
    headers = {"Retry-After": str(wait)}
    if local_path(request).startswith("/api/"):
        return web.json_response({"error": "too many requests", "retry_after": wait},
                                 status=429, headers=headers)
    return web.Response(status=429, text="too many requests", headers=headers)


@web.middleware
async def server_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A database away for a moment is a 503 with ``Retry-After`` on every route (the page,
    the platforms and the one-stop system send again); anything else unexpected is logged by
    its kind and place, never the data, and answered 500."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route else request.path}"
        if unavailable(exc):
            log.warning("%s: database unavailable (%s)", name, type(exc).__name__)
            return web.json_response({"error": "database unavailable, try again"},
                                     status=503, headers={"Retry-After": RETRY_AFTER})
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        log.error("%s failed: %s at %s:%s", name, type(exc).__name__,
                  where.filename if where else "?", where.lineno if where else "?")
        return web.json_response({"error": "internal error"}, status=500)


@web.middleware
async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse with 429 and ``Retry-After`` what goes over its budget: chat messages per
    address and per session, the REST API per key (failed keys per address), anything else
    per address."""
    path = local_path(request)
    if path.startswith(UNLIMITED_PREFIX):
        return await handler(request)
    guard = request.app[PROTECTION]
    budgets, limiter = guard.budgets, guard.limiter
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                             guard.settings.trusted_proxies)
    key = api_key(request) if path.startswith("/api/v1/") else ""
    checks: list[tuple[RateLimitItem, tuple[str, ...]]]
    if path == "/api/chat" and request.method == "POST":
        user = session_user(request)
        checks = [(budgets.chat_address, ("chat-address", address))]
        checks += [(budgets.chat_user, ("chat-user", user))] if user else []
    elif key:
        # A key that fails counts against its address below; one that is blocked there
        # gets no more tries, whatever key it sends next.
        if wait := await limiter.waiting(budgets.address, "address", address):
            metrics.REFUSED.labels("address").inc()
            return await _too_many(request, wait)
        checks = [(budgets.api_key, ("api-key", hash_key(key)))]
    else:
        checks = [(budgets.address, ("address", address))]
    for budget, who in checks:
        if wait := await limiter.hit(budget, *who):
            log.info("rate limit: %s refused for %d s", who[0], wait)  # ids only, never who
            metrics.REFUSED.labels(who[0]).inc()
            return await _too_many(request, wait)
    response = await handler(request)
    if key and response.status == 401:
        await limiter.hit(budgets.address, "address", address)
    return response


@web.middleware
async def bounded_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read a request's body within ``body_timeout`` (a body sent a byte at a time would
    hold a connection and its handler for as long as the sender likes)."""
    if request.body_exists and local_path(request) not in STREAMED_BODIES:
        try:
            async with asyncio.timeout(request.app[PROTECTION].settings.body_timeout):
                await request.read()  # kept by aiohttp for the handler's json()
        except TimeoutError:
            return web.json_response({"error": "request body too slow"}, status=408,
                                     headers={"Connection": "close"})
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers that stop the pages being framed by strangers, sniffed, or leaking where the
    citizen came from; chat answers are never cached (they can be personal)."""
    response.headers["Content-Security-Policy"] = request.app[PROTECTION].content_security_policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if local_path(request).startswith("/api/chat"):
        response.headers["Cache-Control"] = "no-store"


def _embedder(source: str) -> re.Pattern[str]:
    """An origin pattern as CSP writes it (``https://*.example.vn``, ``http://host:*``)."""
    return re.compile(re.escape(source.rstrip("/")).replace(r"\*", "[^/]*"))


def _protection(settings: Settings) -> Protection:
    secret = settings.secret_key
    if not secret:
        log.warning("MOTCUA_SECRET_KEY is not set: web chat sessions are signed with a key "
                    "made at start, so they end at a restart and other instances refuse them")
        secret = secrets.token_urlsafe(32)
    sources = [s for s in settings.embed_origins if s != "'self'"]
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
           "connect-src 'self'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors " + " ".join(["'self'", *sources]))
    return Protection(settings, Budgets.from_settings(settings), Limiter(settings.redis_url),
                      hashlib.sha256(secret.encode()).digest(), csp,
                      tuple(_embedder(s) for s in sources))


async def _close_limiter(app: web.Application) -> None:
    await app[PROTECTION].limiter.close()


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The runner ``serve`` uses: idle connections, and requests whose headers take too
    long, are closed after ``keepalive_timeout`` (aiohttp's default is an hour)."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=settings.keepalive_timeout)


async def _knowledge_kept_current(app: web.Application) -> AsyncIterator[None]:
    """Every commune's knowledge changes applied without a restart (one read for all)."""
    async with kept_current([served.knowledge for served in app[COMMUNES].values()]):
        yield


async def home(request: web.Request) -> web.StreamResponse:
    """``GET /``: the first commune's web chat, or the list of the communes when several are
    served."""
    if len(request.app[COMMUNES]) > 1:
        return communes_page(request)
    return await chat_page(request)


async def to_chat_page(request: web.Request) -> web.StreamResponse:
    """``GET /c/<slug>``: the commune's chat is at ``/c/<slug>/`` (its page's links are
    relative to it)."""
    raise web.HTTPMovedPermanently(request.path + "/")


def _commune_routes(app: web.Application, served: Served, assistant: Assistant) -> None:
    """A commune's own routes in ``app``: its chat, REST API and procedure pages."""
    app[ASSISTANT], app[OFFICE], app[DIALOGUE] = assistant, served.office, served.dialogue
    add_routes(app)
    app.router.add_post("/api/chat", chat_api)
    app.router.add_get("/api/chat/inbox", chat_inbox)
    add_procedure_routes(app, assistant)  # the pages the posters' QR codes open


def _commune_app(served: Served, assistant: Assistant, protection: Protection
                 ) -> web.Application:
    """A commune's own routes as an application to serve under ``/c/<slug>/``."""
    app = web.Application()
    app[PROTECTION] = protection
    _commune_routes(app, served, assistant)
    app.router.add_get("/", chat_page)
    app.router.add_get("", to_chat_page)
    return app


def _served(assistant: Assistant, office: Office, commune: CommuneSettings,
            staff_channel: bool) -> Served:
    dialogue = Dialogue(assistant, office, staff_channel=staff_channel)
    # The commune's knowledge changes (console), applied without a restart.
    return Served(commune, office, dialogue, LiveKnowledge(
        assistant, office.sessions, office.commune_id, services=dialogue.services))


def create_app(assistant: Assistant, office: Office, *, staff_channel: bool = False,
               settings: Settings | None = None) -> web.Application:
    """Build the application around a loaded assistant and the first commune's office
    (``add_commune`` adds the others); ``staff_channel`` says whether hand-overs reach staff
    (the Telegram staff group); ``settings`` (default: from the environment) gives limits,
    proxies and embedding sites."""
    app = web.Application(client_max_size=MAX_BODY,
                          middlewares=[observed, server_errors, rate_limits, bounded_body])
    app[PROTECTION] = _protection(settings or Settings.from_env())
    settings = app[PROTECTION].settings
    app.on_response_prepare.append(security_headers)
    app.on_cleanup.append(_close_limiter)
    slug = office.kb.commune.slug
    first = _served(assistant, office, next((c for c in settings.communes if c.slug == slug),
                                            CommuneSettings(slug)), staff_channel)
    app[COMMUNES] = {office.commune_id: first}
    app.cleanup_ctx.append(_knowledge_kept_current)
    _commune_routes(app, first, assistant)
    app.router.add_get("/", home)
    # Also under /c/<slug>/, as every other commune, with the same conversation and sessions.
    app.add_subapp(first.settings.path, _commune_app(first, assistant, app[PROTECTION]))
    add_console_routes(app, settings, app[PROTECTION].limiter)
    app.router.add_get("/healthz", healthz)
    add_observability(app, settings)  # /metrics, /readyz, X-Request-Id
    app.router.add_static("/static/", STATIC)
    return app


def add_commune(app: web.Application, assistant: Assistant, office: Office,
                commune: CommuneSettings, *, staff_channel: bool = False) -> web.Application:
    """Another commune's application, to be served under ``/c/<slug>/`` (``assistant``
    answers with its profile): add its channels' webhooks, then mount it with
    ``app.add_subapp(commune.path, …)`` (mounting freezes its routes). Its web chat sessions
    are its own: a session opened in another commune's chat is refused there."""
    served = _served(assistant, office, commune, staff_channel)
    key = hmac.new(app[PROTECTION].session_key, commune.slug.encode(), hashlib.sha256).digest()
    app[COMMUNES][office.commune_id] = served
    return _commune_app(served, assistant, replace(app[PROTECTION], session_key=key))
