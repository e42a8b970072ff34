"""The operator's side of the web application: ``GET /metrics`` (Prometheus, protected),
``GET /readyz`` (database reachable and migrated to head), and the middleware that gives every
request an id (``X-Request-Id``, in its log records too) and times it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from bot import metrics
from bot.api import OFFICE, Handler
from bot.communes import COMMUNE_PATH
from bot.limits import Network, client_address
from bot.logs import REQUEST_ID, request_id
from bot.settings import Settings
from storage.applications import outbox_depth
from storage.db import head_revisions, schema_revisions

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-Id"
SETTINGS = web.AppKey("observability_settings", Settings)
RID = web.RequestKey("request_id", str)
# Headers a proxy adds: a request carrying one came through a proxy, and its peer address
# (the proxy's, often loopback) says nothing about where it came from.
_FORWARDING = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@web.middleware
async def observed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id (the caller's ``X-Request-Id`` when sane, else a new one) for
    every log record written while it is handled and for the response's header; time it
    per route pattern (never per path: paths hold receipt codes)."""
    rid = request_id(request.headers.get(REQUEST_ID_HEADER))
    request[RID] = rid
    REQUEST_ID.set(rid)  # each request runs in a task of its own: no reset needed
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        # One series per route whatever the commune: /c/{commune}/api/chat.
        route = COMMUNE_PATH.sub("/c/{commune}", resource.canonical, count=1) \
            if resource is not None else "unmatched"
        metrics.LATENCY.labels(route, request.method if request.method in _METHODS else "other",
                               f"{status // 100}xx").observe(time.perf_counter() - started)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """The request's id goes back in ``X-Request-Id`` (to quote when reporting a problem)."""
    rid = request.get(RID)
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid


def metrics_allowed(request: web.Request, settings: Settings) -> bool:
    """The bearer token, or a client in the metrics networks. A request that came through a
    proxy counts as from the client the trusted proxies name, and as from nowhere when the
    proxy is not trusted (its loopback address must not open the metrics to everyone)."""
    token = settings.metrics_token
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    peer = request.remote or ""
    proxied = any(header in request.headers for header in _FORWARDING)
    if proxied and (not any(_within(peer, proxy) for proxy in settings.trusted_proxies)
                    or "X-Forwarded-For" not in request.headers):
        return False  # through a proxy we cannot see through (only X-Forwarded-For is read)
    address = client_address(peer, request.headers.get("X-Forwarded-For"),
                             settings.trusted_proxies)
    return any(_within(address, network) for network in settings.metrics_networks)


def _within(address: str, network: Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:  # "unknown": no peer address
        return False


async def metrics_page(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus' text format; 403 unless ``metrics_allowed``."""
    if not metrics_allowed(request, request.app[SETTINGS]):
        return web.Response(status=403, text="metrics: not from this address without the token")
    now = dt.datetime.now(dt.UTC)
    try:
        async with request.app[OFFICE].sessions() as session:
            depth = await outbox_depth(session, now=now)
    except (OSError, SQLAlchemyError) as exc:
        log.warning("metrics: outbox depth not read: %s", type(exc).__name__)
        depth = None
    body = metrics.render(depth, now=now)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 when the database answers and is migrated to the newest
    revision, else 503 with the reason (a load balancer sends this instance nothing then)."""
    head = head_revisions()
    try:
        async with request.app[OFFICE].sessions() as session:
            await session.exec(select(1))
    except (OSError, SQLAlchemyError) as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return web.json_response({"status": "database unreachable"}, status=503)
    try:
        async with request.app[OFFICE].sessions() as session:
            current = await schema_revisions(session)
    except (OSError, SQLAlchemyError) as exc:
        log.warning("readiness: migrations not readable: %s", type(exc).__name__)
        return web.json_response({"status": "database not migrated"}, status=503)
    if current != head:
        return web.json_response({"status": "migrations not at head",
                                  "current": sorted(current), "head": sorted(head)}, status=503)
    return web.json_response({"status": "ok", "revision": ",".join(sorted(head))})


def add_observability(app: web.Application, settings: Settings) -> None:
    """The routes and the response header (the middleware ``observed`` is put first in the
    application's list by ``bot.web.create_app``)."""
    app[SETTINGS] = settings
    app.on_response_prepare.append(request_id_header)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/readyz", readyz)
