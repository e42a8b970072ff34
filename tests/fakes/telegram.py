"""A local fake of the Telegram Bot API: the real HTTP protocol, answers as Telegram gives them.

Point python-telegram-bot at it (``TELEGRAM_API_BASE_URL``) and assert on ``calls``. Chats in
``blocked`` answer 403 like a user who blocked the bot; ``flood`` answers 429 with
``retry_after`` that many times before accepting. sendPhoto is answered like sendMessage (a
photo whose URL is in ``bad_photos`` gets Telegram's 400 for an image it cannot fetch). With
``limits`` on, sendMessage is held to
Telegram's limits — ``rate`` messages/s overall (a bucket of one second's worth),
``chat_rate`` per private chat and ``group_rate`` a minute per group (a negative chat id) — and
answered 429 with ``retry_after`` beyond them (``refused`` counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT = {"id": 777000, "is_bot": True, "first_name": "Một cửa Hát Môn", "username": "motcua_bot",
       "can_join_groups": True, "can_read_all_group_messages": False,
       "supports_inline_queries": False}


JITTER = 0.1  # seconds by which two messages to one chat may arrive early

@dataclass
class FakeTelegram:
    """State of the fake server."""

    token: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    flood: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)  # updates for getUpdates
    bad_photos: set[str] = field(default_factory=set)
    limits: bool = False
    rate: float = 30.0
    chat_rate: float = 1.0
    group_rate: float = 20.0  # messages a minute to one group
    refused: int = 0  # 429s answered for going over the limits
    _tokens: float = 0.0
    _filled_at: float = 0.0
    _chat_last: dict[int, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, update: dict[str, Any]) -> None:
        """Queue an update for a bot that polls (``getUpdates``)."""
        self.pending.append(update)
        self._arrived.set()

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """sendMessage calls (to one chat if given), in order."""
        return [p for m, p in self.calls if m == "sendMessage"
                and (chat_id is None or int(p["chat_id"]) == chat_id)]

    def photos(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """sendPhoto calls answered ok (to one chat if given), in order."""
        return [p for m, p in self.calls if m == "sendPhoto:ok"
                and (chat_id is None or int(p["chat_id"]) == chat_id)]

    def delivered(self, chat_id: int) -> list[dict[str, Any]]:
        """sendMessage calls to one chat that were answered ok, in order."""
        return [p for m, p in self.calls if m == "sendMessage:ok" and int(p["chat_id"]) == chat_id]

    def app(self) -> web.Application:
        """The aiohttp application serving ``/bot<token>/<method>``."""
        app = web.Application()
        app.router.add_post(r"/bot{token}/{method}", self._method)
        return app

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append((method, params))
        if method == "getMe":
            return _ok(BOT)
        if method in ("setWebhook", "deleteWebhook", "answerCallbackQuery"):
            return _ok(True)
        if method == "getUpdates":
            return _ok(await self._updates(int(params.get("offset") or 0),
                                           float(params.get("timeout") or 0)))
        if method in ("sendMessage", "sendPhoto"):
            try:
                chat_id = int(params["chat_id"])
            except (KeyError, TypeError, ValueError, OverflowError):  # as Telegram answers
                return _error(400, "Bad Request: chat not found")
            if chat_id in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if self.flood:
                self.flood -= 1
                return web.json_response({"ok": False, "error_code": 429,
                                          "description": "Too Many Requests: retry after 1",
                                          "parameters": {"retry_after": 1}}, status=429)
            if self.limits and (wait := self._over_limits(chat_id)):
                self.refused += 1
                return web.json_response({"ok": False, "error_code": 429,
                                          "description": f"Too Many Requests: retry after {wait}",
                                          "parameters": {"retry_after": wait}}, status=429)
            if method == "sendPhoto" and params.get("photo") in self.bad_photos:
                return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            self.calls.append((f"{method}:ok", params))
            sent = {"text": params.get("text", "")} if method == "sendMessage" else {
                "caption": params.get("caption", ""), "photo": [{
                    "file_id": "AgAD1", "file_unique_id": "AQAD1", "width": 800,
                    "height": 600}]}
            return _ok({"message_id": next(self._ids), "date": 1764300000,
                        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                        "from": BOT, **sent})
        return _error(404, "Not Found: method not found")


    def _over_limits(self, chat_id: int) -> int:
        """0 when a message to ``chat_id`` is within the limits now (and counts it), else the
        seconds to wait, rounded up as Telegram does."""
        now = time.monotonic()
        if not self._filled_at:
            self._tokens, self._filled_at = self.rate, now
        self._tokens = min(self.rate, self._tokens + (now - self._filled_at) * self.rate)
        self._filled_at = now
        last = self._chat_last.get(chat_id)
        interval = 60 / self.group_rate if chat_id < 0 else 1 / self.chat_rate
        # Arrivals, not departures: two requests to one chat paced a second apart may reach
        # the server a little closer on a loaded machine; Telegram tolerates short bursts too.
        if last is not None and now - last < interval - JITTER:
            return max(1, math.ceil(interval - (now - last)))
        if self._tokens < 1:
            return max(1, math.ceil((1 - self._tokens) / self.rate))
        self._tokens -= 1
        self._chat_last[chat_id] = now
        return 0

    async def _updates(self, offset: int, timeout: float) -> list[dict[str, Any]]:
        """Like Telegram: confirm updates below ``offset``, wait up to ``timeout`` for new."""
        self.pending = [u for u in self.pending if u["update_id"] >= offset]
        if not self.pending and timeout:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        return list(self.pending)


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    form = await request.post()
    out: dict[str, Any] = {}
    for key, value in form.items():
        text = str(value)
        try:
            out[key] = json.loads(text) if text[:1] in "[{" else text
        except json.JSONDecodeError:
            out[key] = text
    return out


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description},
                             status=status)


def bot_api(*bots: FakeTelegram) -> web.Application:
    """One Bot API server for several bots, as Telegram is: a request goes to the bot its
    token names."""
    by_token = {bot.token: bot for bot in bots}

    async def method(request: web.Request) -> web.Response:
        bot = by_token.get(request.match_info["token"])
        return await bot._method(request) if bot else _error(401, "Unauthorized")

    app = web.Application()
    app.router.add_post(r"/bot{token}/{method}", method)
    return app


def text_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A private text message as Telegram posts it to a webhook."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Lan", "language_code": "vi"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764300000, "chat": {"id": chat_id, "type": "private",
                                                               "first_name": "Lan"},
        "from": user, "text": text,
        **({"entities": [{"type": "bot_command", "offset": 0,
                          "length": len(text.split()[0])}]} if text.startswith("/") else {})}}


def button_update(update_id: int, chat_id: int, data: str) -> dict[str, Any]:
    """A tap on an inline button as Telegram posts it to a webhook."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Lan"}
    return {"update_id": update_id, "callback_query": {
        "id": f"cb{update_id}", "from": user, "chat_instance": "1", "data": data,
        "message": {"message_id": 1, "date": 1764300000, "chat": {"id": chat_id,
                                                                   "type": "private"},
                    "from": BOT, "text": "…"}}}
