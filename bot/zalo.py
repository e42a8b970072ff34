"""The Zalo Official Account channel: the webhook Zalo posts citizens' messages to, and the
client that sends the Dialogue's replies back through the OA Open API v3.

Buttons are Zalo "query" buttons: a tap comes back as an ordinary text message carrying the
button's payload, so our payloads travel as ``"#" + payload`` and text starting with "#" is
read as a tap. Zalo shows at most 5 buttons under a message; a longer choice list (the 20
civil-status procedures) goes out as several messages of 5 buttons, the later ones headed
"(2/4)", "(3/4)"…: every choice stays one tap away and nothing has to remember a numbering
per citizen.

Beyond the 48-hour / 8-message window of free customer-service ("cs") messages, status
notifications and reminders go as transaction messages where Zalo allows the OA to send them
(``ZALO_TRANSACTION_MESSAGES=1``): the same text in a transaction template. Anything else
beyond the window, or refused, is closed as undeliverable by the outbox.

Access tokens expire (about a day) and the refresh token is single use: both live in the
database (``ChannelToken``), the environment only seeds them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import hmac
import itertools
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from bot import metrics
from bot.outbox import FOLLOWED, Outcome, Sender
from bot.settings import ZaloConfig
from handlers.applications import Office
from handlers.conversation import (
    Button,
    Dialogue,
    IncomingMessage,
    Reply,
    Unavailable,
    split_text,
)
from knowledge.i18n import Text
from storage import conversations as conversations_repo
from storage.db import session_scope

log = logging.getLogger(__name__)

CHANNEL = "zalo"

MAX_BODY = 64 * 1024  # a Zalo event is a few hundred bytes
# Zalo's user ids are digits (19 of them); anything else, or longer, is not from Zalo and
# would not fit where a relayed message's recipient is kept.
USER_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
MAX_TEXT = 2000  # characters per Zalo message
MAX_BUTTONS = 5  # buttons under one message
MAX_TITLE = 100  # characters of a query button's title
PAYLOAD_MARK = "#"
SIGNATURE_HEADER = "X-ZEvent-Signature"
TIMESTAMP_HEADER = "X-ZEvent-Timestamp"  # one implementation signs this instead of the body's
EVENT_MAX_SKEW = dt.timedelta(minutes=5)  # older (or later) signed events are replays
CS_MESSAGES = 8  # free customer-service messages in a row without the citizen writing
CS_WINDOW = dt.timedelta(hours=48)  # free customer-service messages after the citizen's last
TOKEN_ERRORS = frozenset({-216, -124, -201})  # invalid or expired access token
# Zalo's transaction template: a header of ≤ 100 characters, text elements of ≤ 1000, at most
# 4 buttons. It refuses with an error code when the OA may not send them, is out of quota, or
# the citizen has not interacted recently (-213, -230): the message is then undeliverable.
TRANSACTION_HEADER = 100
TRANSACTION_TEXT = 1000
TRANSACTION_BUTTONS = 4
CS, TRANSACTION = "cs", "transaction"  # the OA API's message endpoints
ACCESS, REFRESH = "access_token", "refresh_token"
TIMEOUT = aiohttp.ClientTimeout(total=15)


class Delivery(enum.StrEnum):
    """What became of a reply sent to Zalo."""

    SENT = "sent"
    OUTSIDE_WINDOW = "outside_window"  # the citizen's last message is older than 48 hours
    OVER_QUOTA = "over_quota"  # 8 messages already sent since the citizen last wrote
    REJECTED = "rejected"  # Zalo refused it (or the token cannot be renewed): do not retry
    FAILED = "failed"  # Zalo unreachable or answered garbage: worth retrying later


def _title(button: Button) -> str:
    return button.title if len(button.title) <= MAX_TITLE else button.title[:MAX_TITLE - 1] + "…"


def _buttons(buttons: list[Button]) -> dict[str, Any]:
    return {"type": "template", "payload": {"buttons": [
        {"title": _title(b), "type": "oa.query.hide", "payload": PAYLOAD_MARK + b.payload}
        for b in buttons]}}


def zalo_messages(reply: Reply) -> list[dict[str, Any]]:
    """The ``message`` objects that carry one reply: long text split, 5 buttons a message; an
    image first, as a media template captioned with the text's first part (a media message
    takes no buttons: they follow on a message of their own)."""
    messages: list[dict[str, Any]] = [{"text": part} for part in split_text(reply.text, MAX_TEXT)]
    photo: list[dict[str, Any]] = []
    if reply.image:
        photo = [{"text": messages.pop(0)["text"] if messages else "", "attachment": {
            "type": "template", "payload": {"template_type": "media", "elements": [
                {"media_type": "image", "url": reply.image}]}}}]
    buttons = reply.buttons
    if len(buttons) > MAX_BUTTONS:  # shortcuts give way before a choice list is split
        buttons = [b for b in buttons if not b.spare]
    groups = [buttons[i:i + MAX_BUTTONS] for i in range(0, len(buttons), MAX_BUTTONS)]
    if groups and not messages:
        messages.append({"text": "…"})  # Zalo needs text above buttons
    for number, group in enumerate(groups, start=1):
        if number > 1:
            messages.append({"text": f"({number}/{len(groups)})"})
        messages[-1]["attachment"] = _buttons(group)
    return photo + messages


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def transaction_message(reply: Reply, *, template: str) -> dict[str, Any]:
    """The ``message`` object of a transaction message carrying one reply: its first line as
    the header when it has several (a status notification's "Update on your application:"),
    else a generic header; the rest as text; query buttons as in a consultation message."""
    first, _, rest = reply.text.strip().partition("\n")
    header, text = (first.rstrip(":"), rest.strip()) if rest.strip() else (
        Text()("Notice about your application"), first)
    # A template's text breaks lines with <br>, as Zalo's own examples do.
    parts = split_text(text.replace("\n", "<br>"), TRANSACTION_TEXT)
    buttons = [b for b in reply.buttons if not b.spare][:TRANSACTION_BUTTONS]
    payload: dict[str, Any] = {
        "template_type": template, "language": "VI",
        "elements": [{"type": "header", "content": _clip(header, TRANSACTION_HEADER),
                      "align": "left"},
                     *({"type": "text", "content": part, "align": "left"} for part in parts)]}
    if buttons:
        payload["buttons"] = _buttons(buttons)["payload"]["buttons"]
    return {"attachment": {"type": "template", "payload": payload}}


def _error_code(answer: Mapping[str, Any]) -> int:
    try:
        return int(answer.get("error") or 0)
    except (TypeError, ValueError):
        return -1


def _outcome(delivery: Delivery) -> Outcome:
    return {Delivery.SENT: Outcome.SENT, Delivery.FAILED: Outcome.RETRY}.get(
        delivery, Outcome.UNDELIVERABLE)


class ZaloClient:
    """Sends replies as customer-service messages (status notifications and reminders beyond
    the window as transaction messages), renewing the access token when needed."""

    def __init__(self, config: ZaloConfig, office: Office, *,
                 http: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self.office = office
        self._http = http
        self._own_http = http is None
        self._access: str | None = None  # cached; the database is the shared truth
        self._refreshing = asyncio.Lock()

    async def close(self) -> None:
        """Close the HTTP session this client opened."""
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:  # created lazily: a ClientSession needs the running loop
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def send(self, user_id: str, reply: Reply, *, now: dt.datetime | None = None
                   ) -> Delivery:
        """Deliver one reply, within Zalo's free customer-service quota: 48 hours after the
        citizen's last message, and 8 messages until they write again."""
        now = now or dt.datetime.now(dt.UTC)
        contact = await self._contact(user_id)
        if contact is None or now - contact[0] > CS_WINDOW:
            # Zalo would refuse (or bill) it; ZNS templates are the way beyond the window.
            log.info("Zalo: not sending to %s, last message at %s is outside the 48-hour "
                     "window", user_id, contact and contact[0])
            return Delivery.OUTSIDE_WINDOW
        messages = zalo_messages(reply)
        if contact[1] + len(messages) > CS_MESSAGES:
            log.info("Zalo: not sending to %s, %d messages already sent since their last "
                     "message (Zalo allows %d)", user_id, contact[1], CS_MESSAGES)
            return Delivery.OVER_QUOTA
        delivery, sent = Delivery.SENT, 0
        for message in messages:
            delivery = await self._post(user_id, message)
            if delivery is not Delivery.SENT:
                break  # the rest would arrive out of context
            sent += 1
        if sent:
            async with session_scope(self.office.sessions) as session:
                await conversations_repo.count_sent(session, commune_id=self.office.commune_id,
                                                    channel=CHANNEL, user_id=user_id,
                                                    messages=sent)
        return delivery

    async def notify(self, recipient: str, reply: Reply) -> Outcome:
        """The outbox's sender: RETRY when trying again later may help; UNDELIVERABLE when
        Zalo will not take it (outside the 48-hour window, over the 8 messages, refused): the
        outbox records it. Status notifications and reminders go by ``notify_update``."""
        return _outcome(await self.send(recipient, reply))

    async def send_transaction(self, user_id: str, reply: Reply) -> Delivery:
        """Deliver one reply as a transaction message (not counted in the 8 messages)."""
        message = transaction_message(reply, template=self.config.transaction_template)
        return await self._post(user_id, message, endpoint=TRANSACTION)

    async def notify_update(self, recipient: str, reply: Reply) -> Outcome:
        """The outbox's sender for status notifications and reminders: a customer-service
        message inside the window; beyond it a transaction message if the OA may send them,
        else UNDELIVERABLE (the outbox then offers it on the citizen's other channels)."""
        delivery = await self.send(recipient, reply)
        if delivery in (Delivery.OUTSIDE_WINDOW, Delivery.OVER_QUOTA) \
                and self.config.transaction_messages:
            delivery = await self.send_transaction(recipient, reply)
        return _outcome(delivery)

    def kind_senders(self) -> dict[tuple[str, str], Sender]:
        """The outbox's senders for Zalo's status notifications and reminders."""
        return {(CHANNEL, kind): self.notify_update for kind in sorted(FOLLOWED)}

    async def _contact(self, user_id: str) -> tuple[dt.datetime, int] | None:
        async with self.office.sessions() as session:
            return await conversations_repo.last_contact(
                session, commune_id=self.office.commune_id, channel=CHANNEL, user_id=user_id)

    async def _post(self, user_id: str, message: dict[str, Any], *, endpoint: str = CS
                    ) -> Delivery:
        body = {"recipient": {"user_id": user_id}, "message": message}
        access = await self._access_token()
        answer = await self._call(access, body, endpoint)
        if answer is not None and _error_code(answer) in TOKEN_ERRORS:
            renewed = await self._refresh(access)
            if renewed is None:
                return Delivery.REJECTED
            answer = await self._call(renewed, body, endpoint)
        if answer is None:
            return Delivery.FAILED
        code = _error_code(answer)
        if code != 0:
            log.warning("Zalo refused a %s message to %s: error %s (%s)", endpoint, user_id,
                        code, str(answer.get("message", ""))[:200])
            return Delivery.REJECTED
        metrics.SENT.labels(CHANNEL).inc()
        return Delivery.SENT

    async def _call(self, access: str, body: dict[str, Any], endpoint: str
                    ) -> dict[str, Any] | None:
        """Zalo's answer, or None when it could not be had."""
        url = f"{self.config.api_base_url}/v3.0/oa/message/{endpoint}"
        try:
            async with self._session().post(url, json=body,
                                            headers={"access_token": access}) as response:
                if response.status == 429:
                    metrics.THROTTLED.labels(CHANNEL).inc()
                if response.status != 200:
                    log.warning("Zalo API answered HTTP %s", response.status)
                    return None
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("Zalo API unreachable: %s", type(exc).__name__)
            return None
        return answer if isinstance(answer, dict) else None

    async def refresh_if_expiring(self, *, within: dt.timedelta,
                                  now: dt.datetime | None = None) -> bool | None:
        """Renew the access token if it expires within ``within`` (or its expiry is unknown):
        True when renewed, False when still valid, None when Zalo would not renew it."""
        now = now or dt.datetime.now(dt.UTC)
        async with self.office.sessions() as session:
            stored = await conversations_repo.token(
                session, commune_id=self.office.commune_id, channel=CHANNEL, name=ACCESS)
        if stored is not None and stored.expires_at is not None \
                and stored.expires_at - now > within:
            return False
        self._access = stored.value if stored else self.config.access_token
        return await self._refresh(self._access) is not None

    async def _access_token(self) -> str:
        if self._access is None:
            async with self.office.sessions() as session:
                stored = await conversations_repo.token(
                    session, commune_id=self.office.commune_id, channel=CHANNEL, name=ACCESS)
            self._access = stored.value if stored else self.config.access_token
        return self._access

    async def _refresh(self, failed: str) -> str | None:
        """A new access token in place of ``failed``, or None when Zalo will not give one."""
        async with self._refreshing:
            if self._access is not None and self._access != failed:
                return self._access  # another task of this process renewed it meanwhile
            async with session_scope(self.office.sessions) as session:
                # Other instances wait here: two refreshes would burn the single-use token.
                await conversations_repo.lock_tokens(session, commune_id=self.office.commune_id,
                                                     channel=CHANNEL)
                stored = {name: await conversations_repo.token(
                    session, commune_id=self.office.commune_id, channel=CHANNEL, name=name)
                    for name in (ACCESS, REFRESH)}
                access = stored[ACCESS]
                if access is not None and access.value != failed:
                    self._access = access.value  # another instance renewed it meanwhile
                    return self._access
                refresh = stored[REFRESH]
                # The stored token first; the configured one if it differs, which is how an
                # operator re-seeds the channel after re-authorising the OA.
                candidates = ([refresh.value] if refresh else []) + [self.config.refresh_token]
                for candidate in dict.fromkeys(candidates):
                    renewed = await self._request_tokens(candidate)
                    if renewed is not None:
                        break
                else:
                    log.error("Zalo: the access token cannot be renewed; re-authorise the OA "
                              "and set ZALO_ACCESS_TOKEN and ZALO_REFRESH_TOKEN")
                    return None
                new_access, new_refresh, expires_at = renewed
                # Both in this transaction: losing the new refresh token loses the channel.
                for name, value, expires in ((ACCESS, new_access, expires_at),
                                             (REFRESH, new_refresh, None)):
                    await conversations_repo.save_token(
                        session, commune_id=self.office.commune_id, channel=CHANNEL, name=name,
                        value=value, expires_at=expires)
            self._access = new_access
            log.info("Zalo access token renewed, valid until %s", expires_at)
            return new_access

    async def _request_tokens(self, refresh_token: str
                              ) -> tuple[str, str, dt.datetime | None] | None:
        """(access token, refresh token, expiry) from Zalo's OAuth server, or None."""
        url = f"{self.config.oauth_base_url}/v4/oa/access_token"
        form = {"app_id": self.config.app_id, "refresh_token": refresh_token,
                "grant_type": "refresh_token"}
        try:
            async with self._session().post(
                    url, data=form, headers={"secret_key": self.config.app_secret}) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("Zalo OAuth server unreachable: %s", type(exc).__name__)
            return None
        if not isinstance(answer, dict):
            return None
        access, refresh = answer.get(ACCESS), answer.get(REFRESH)
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            log.warning("Zalo refused to renew the access token: error %s (%s)",
                        answer.get("error"), str(answer.get("error_name", ""))[:200])
            return None
        try:  # Zalo sends the lifetime as a string of seconds
            lifetime = dt.timedelta(seconds=int(str(answer.get("expires_in"))))
            expires_at: dt.datetime | None = dt.datetime.now(dt.UTC) + lifetime
        except ValueError:
            expires_at = None
        return access, refresh, expires_at


def _signed(config: ZaloConfig, raw: bytes, timestamp: str, given: str) -> bool:
    expected = hashlib.sha256(config.app_id.encode() + raw + timestamp.encode()
                              + config.oa_secret_key.encode()).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode(errors="replace"))


# Where a body states the time Zalo signed it with; read from the bytes, so that nothing is
# parsed before the signature is known to be Zalo's.
_STATED_TIME = re.compile(rb'"timestamp"\s*:\s*"?([0-9]{1,16})"?')
STATED_TIMES = 4  # times from one body tried against its signature


def _signed_time(config: ZaloConfig, raw: bytes, header: str, given: str) -> str | None:
    """The time ``raw`` was signed with (stated in the body, else in the header), or None
    when the signature is not Zalo's."""
    stated = [m.group(1).decode() for m in itertools.islice(_STATED_TIME.finditer(raw),
                                                             STATED_TIMES)]
    candidates = [*stated, header] if re.fullmatch(r"[0-9]{1,16}", header) else stated
    return next((t for t in dict.fromkeys(candidates) if _signed(config, raw, t, given)), None)


def _event_id(message: Mapping[str, Any], raw: bytes) -> str:
    """Zalo's message id (named ``msg_id`` or ``mid``), else the body's hash."""
    found = message.get("msg_id") or message.get("mid")
    event_id = str(found) if isinstance(found, str | int) and found else ""
    if not event_id or len(event_id) > 128:
        event_id = hashlib.sha256(event_id.encode() if event_id else raw).hexdigest()
    return event_id


def _refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than any Zalo event."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_BODY:  # chunked uploads carry no Content-Length
            return None
    return bytes(body)


class ZaloWebhook:
    """``POST /webhook/zalo``: verifies an event, hands a text to the Dialogue, sends replies."""

    def __init__(self, *, dialogue: Dialogue, config: ZaloConfig, client: ZaloClient) -> None:
        self.dialogue = dialogue
        self.config = config
        self.client = client

    async def handle(self, request: web.Request) -> web.Response:
        """Answer 200 to every genuine event (Zalo only wants to know it arrived), 503 when
        the database could not take it."""
        raw = await _read_body(request)
        if raw is None:
            return _refuse(413, "body too large")
        given = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not given.startswith("mac="):
            return _refuse(401, "signature missing")
        # Signature and age first: a stranger's body is never parsed.
        header_time = request.headers.get(TIMESTAMP_HEADER, "").strip()
        timestamp = _signed_time(self.config, raw, header_time, given.removeprefix("mac="))
        if timestamp is None:
            return _refuse(401, "bad signature")
        if abs(time.time() - int(timestamp) / 1000) > EVENT_MAX_SKEW.total_seconds():
            return _refuse(401, "stale event")
        try:  # ValueError covers bad UTF-8 and numbers longer than Python reads
            event = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested 1,000 deep
            return _refuse(400, "body must be JSON")
        if not isinstance(event, dict):
            return _refuse(400, "body must be a JSON object")
        if str(event.get("timestamp") or header_time) != timestamp:
            return _refuse(401, "bad signature")  # signed with a time the event does not state
        if event.get("event_name") == "user_send_text":
            try:
                await self._on_text(event, raw)
            except Unavailable:  # nothing was saved: ask Zalo to deliver the event again
                metrics.observe_unavailable(CHANNEL)
                return _refuse(503, "database unavailable, send again")
            except Exception:  # Zalo only needs to know the event arrived; the failure is ours
                log.exception("Zalo: handling an event failed")
        return web.json_response({"ok": True})

    async def _on_text(self, event: Mapping[str, Any], raw: bytes) -> None:
        sender, message = event.get("sender"), event.get("message")
        user_id = sender.get("id") if isinstance(sender, dict) else None
        text = message.get("text") if isinstance(message, dict) else None
        if not (isinstance(user_id, str) and USER_ID.fullmatch(user_id)
                and isinstance(text, str) and isinstance(message, dict)):
            log.info("Zalo: ignoring a text event without sender or text")
            return
        payload = text.removeprefix(PAYLOAD_MARK).strip() if text.startswith(PAYLOAD_MARK) else ""
        # With the event id the Dialogue answers a redelivered event with nothing.
        event_id = _event_id(message, raw)
        incoming = (IncomingMessage(CHANNEL, user_id, payload=payload[:200], event_id=event_id)
                    if payload else
                    IncomingMessage(CHANNEL, user_id, text=text[:MAX_TEXT], event_id=event_id))
        replies = await self.dialogue.handle(incoming)
        metrics.observe_turn(CHANNEL, replies)
        for i, reply in enumerate(replies):
            delivery = await self.client.send(user_id, reply)
            if delivery is Delivery.FAILED:
                break  # left in the outbox, with the replies after it, to be sent in order
            if delivery is not Delivery.SENT:  # refused for good: the rest make no sense alone
                await self.dialogue.delivered(incoming, *range(i, len(replies)))
                break
            await self.dialogue.delivered(incoming, i)


def add_zalo_routes(app: web.Application, *, dialogue: Dialogue, config: ZaloConfig,
                    client: ZaloClient) -> ZaloWebhook:
    """Register ``POST /webhook/zalo`` on ``app``."""
    webhook = ZaloWebhook(dialogue=dialogue, config=config, client=client)
    app.router.add_post("/webhook/zalo", webhook.handle)
    return webhook
