"""A local fake of Zalo's OA Open API and OAuth server: the real HTTP protocol and answers.

Serves ``POST /v3.0/oa/message/cs`` (customer-service messages),
``POST /v3.0/oa/message/transaction`` (transaction messages: a ``transaction_*`` template with
a header, text elements and at most 4 buttons; refused when ``transactions_allowed`` is off)
and ``POST /v4/oa/access_token`` (token refresh). Every request is kept in ``requests``.
``expire()`` makes the current access token invalid (Zalo answers -216 until a refresh);
each refresh issues ``at-<n>``/``rt-<n>`` and burns the refresh token it was given, as Zalo's
single-use refresh tokens do. ``failing_users`` answers a Zalo error for those recipients;
``down`` answers HTTP 502 like an unreachable gateway.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

NOT_INTERACTED = (-230, "User has not interacted with the OA in the past 7 days")
NOT_PERMITTED = (-202, "Permission denied")  # e.g. the OA may not send transaction messages
CS, TRANSACTION = "/v3.0/oa/message/cs", "/v3.0/oa/message/transaction"


@dataclass
class ZaloRequest:
    """One request as the fake received it (JSON body, or form fields for OAuth)."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]
    accepted: bool = False  # Zalo answered error 0


@dataclass
class FakeZalo:
    """State of the fake server."""

    app_id: str
    app_secret: str
    access_token: str
    refresh_token: str
    expires_in: int = 90000
    failing_users: dict[str, tuple[int, str]] = field(default_factory=dict)
    down: bool = False
    transactions_allowed: bool = True
    requests: list[ZaloRequest] = field(default_factory=list)
    _valid_access: str | None = None
    _generation: itertools.count[int] = field(default_factory=lambda: itertools.count(2))

    def __post_init__(self) -> None:
        self._valid_access = self.access_token

    def expire(self) -> None:
        """The current access token expires (answers -216 until the next refresh)."""
        self._valid_access = None

    def sent(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """``message`` objects Zalo accepted (for one user if given), in order."""
        return self._accepted(CS, user_id)

    def transactions(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Transaction ``message`` objects Zalo accepted (for one user if given), in order."""
        return self._accepted(TRANSACTION, user_id)

    def _accepted(self, path: str, user_id: str | None) -> list[dict[str, Any]]:
        return [r.body["message"] for r in self.requests
                if r.path == path and r.accepted
                and (user_id is None or r.body["recipient"]["user_id"] == user_id)]

    def refreshes(self) -> list[ZaloRequest]:
        """Token refresh requests, in order."""
        return [r for r in self.requests if r.path == "/v4/oa/access_token"]

    def app(self) -> web.Application:
        """The aiohttp application serving both endpoints."""
        app = web.Application()
        app.router.add_post(CS, self._message)
        app.router.add_post(TRANSACTION, self._message)
        app.router.add_post("/v4/oa/access_token", self._access_token)
        return app

    async def _message(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text="Bad Gateway")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = ZaloRequest(request.path, headers, body if isinstance(body, dict) else {})
        self.requests.append(record)
        if not headers.get("access_token") or headers["access_token"] != self._valid_access:
            return _error(-216, "Access token is invalid")
        transaction = request.path == TRANSACTION
        if not (_valid_transaction(body) if transaction else _valid_message(body)):
            return _error(-201, "Parameters are invalid")
        if transaction and not self.transactions_allowed:
            return _error(*NOT_PERMITTED)
        user_id = body["recipient"]["user_id"]
        if user_id in self.failing_users:
            return _error(*self.failing_users[user_id])
        record.accepted = True
        message_id = hashlib.md5(f"{len(self.requests)}".encode()).hexdigest()
        return web.json_response({"data": {"message_id": message_id, "user_id": user_id},
                                  "error": 0, "message": "Success"})

    async def _access_token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(ZaloRequest(request.path, headers, form))
        if headers.get("secret_key") != self.app_secret or form.get("app_id") != self.app_id:
            return _oauth_error(-14002, "Invalid app", "App id or secret key is invalid")
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(-14001, "Invalid parameter", "grant_type is invalid")
        if form.get("refresh_token") != self.refresh_token:
            return _oauth_error(-14014, "Invalid refresh token", "Refresh token is invalid")
        n = next(self._generation)
        self.access_token, self.refresh_token = f"at-{n}", f"rt-{n}"
        self._valid_access = self.access_token
        # Zalo sends the lifetime as a string.
        return web.json_response({"access_token": self.access_token,
                                  "refresh_token": self.refresh_token,
                                  "expires_in": str(self.expires_in)})


def _valid_message(body: Any) -> bool:
    """Zalo's limits: text of 1–2000 characters, at most 5 query buttons of ≤100 characters;
    a media template: one https image, its caption optional."""
    try:
        text = body["message"].get("text", "")
        attachment = body["message"].get("attachment")
        media = attachment is not None and attachment["payload"].get("template_type") == "media"
        ok = isinstance(body["recipient"]["user_id"], str) and (
            media or len(text) > 0) and len(text) <= 2000
        if media:
            [element] = attachment["payload"]["elements"]
            ok = ok and attachment["type"] == "template" and element["media_type"] == "image" \
                and str(element["url"]).startswith("https://")
        elif attachment is not None:
            ok = ok and attachment["type"] == "template" \
                and _valid_buttons(attachment["payload"]["buttons"], 5)
        return bool(ok)
    except (KeyError, TypeError, AttributeError, ValueError):
        return False


def _valid_buttons(buttons: Any, limit: int) -> bool:
    return isinstance(buttons, list) and 0 < len(buttons) <= limit and all(
        b["type"] in ("oa.query.hide", "oa.query.show") and 0 < len(b["title"]) <= 100
        and 0 < len(b["payload"]) <= 1000 for b in buttons)


def _valid_transaction(body: Any) -> bool:
    """A transaction template: ``transaction_*``, language VI or EN, a header of ≤ 100
    characters first, text elements of ≤ 1000, at most 4 buttons."""
    try:
        ok = isinstance(body["recipient"]["user_id"], str)
        attachment = body["message"]["attachment"]
        payload = attachment["payload"]
        elements = payload["elements"]
        ok = ok and attachment["type"] == "template" \
            and str(payload["template_type"]).startswith("transaction_") \
            and payload.get("language", "VI") in ("VI", "EN") and 0 < len(elements) <= 10 \
            and elements[0]["type"] == "header" \
            and 0 < len(elements[0]["content"]) <= 100 and all(
                e["type"] == "text" and 0 < len(e["content"]) <= 1000 for e in elements[1:])
        if "buttons" in payload:
            ok = ok and _valid_buttons(payload["buttons"], 4)
        return bool(ok)
    except (KeyError, TypeError, AttributeError):
        return False


def _error(code: int, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message})  # Zalo answers errors with 200


def _oauth_error(code: int, name: str, description: str) -> web.Response:
    return web.json_response({
        "error_name": name, "error_reason": description,
        "ref_doc": "https://developers.zalo.me/docs/api/official-account-api/phu-luc/ma-loi-301",
        "error_description": description, "error": code})


def sign(raw: bytes, *, app_id: str, oa_secret_key: str, timestamp: str) -> str:
    """The ``X-ZEvent-Signature`` header Zalo puts on a webhook event."""
    digest = hashlib.sha256(app_id.encode() + raw + timestamp.encode() + oa_secret_key.encode())
    return f"mac={digest.hexdigest()}"


def now_ms(offset_seconds: float = 0) -> str:
    """A Zalo event timestamp (milliseconds, as a string)."""
    return str(int((time.time() + offset_seconds) * 1000))
