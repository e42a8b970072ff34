"""Telegram channel: python-telegram-bot's client, our own aiohttp webhook.

Updates enter through ``POST /webhook/telegram`` (production, after ``setWebhook``) or long
polling (development); either way PTB's ``Application`` dispatches them to the two handlers
below, which hand the text or the tapped button to the conversation core and send its
replies. The adapter never decides what to answer.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import metrics
from bot.outbox import Outcome, Sender, Throttled
from bot.settings import TelegramConfig
from bot.telegram_request import AiohttpRequest
from handlers import broadcasts
from handlers.conversation import Dialogue, IncomingMessage, Reply, Unavailable, split_text
from handlers.messages import Button, read_relay_tag, relay_tag
from handlers.staff import link_telegram, telegram_staff
from handlers.turn import LOOKUP_CODE, PROCEDURE
from knowledge.i18n import Text
from knowledge.intents import Intent
from knowledge.text import fold
from storage.db import unavailable

log = logging.getLogger(__name__)
DIALOGUE_KEY = "dialogue"
CONFIG_KEY = "config"


SHORT_TITLE = 20  # two buttons this short share a row; longer titles need the width


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard: two short ones to a row, a long one alone."""
    if not reply.buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for b in reply.buttons:
        button = InlineKeyboardButton(b.title[:64], callback_data=b.payload)
        last = rows[-1] if rows else []
        if len(last) == 1 and len(b.title) <= SHORT_TITLE and len(last[0].text) <= SHORT_TITLE:
            last.append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows)


async def deliver(bot: Bot, chat_id: int, reply: Reply) -> Outcome:
    """Send one reply, split at Telegram's length limit (buttons go with the last part), and
    say what became of it: SENT, BLOCKED (the chat blocked the bot), RETRY (a timeout, a 5xx);
    Telegram's flood limit raises ``Throttled`` with the wait it asked for. An image goes
    first, as a photo captioned with the text when it fits a caption, else followed by it."""
    parts = split_text(reply.text, MessageLimit.MAX_TEXT_LENGTH)
    try:
        if reply.image:
            fits = _utf16_length(reply.text) <= MessageLimit.CAPTION_LENGTH
            photo_sent = await _send_photo(bot, chat_id, reply.image, reply.text if fits else "",
                                           keyboard(reply) if fits else None)
            if photo_sent:
                metrics.SENT.labels("telegram").inc()
            if photo_sent and fits:
                return Outcome.SENT
        for i, part in enumerate(parts):
            markup = keyboard(reply) if i == len(parts) - 1 else None
            await bot.send_message(chat_id, part, reply_markup=markup,
                                   disable_web_page_preview=True)
            metrics.SENT.labels("telegram").inc()
    except Forbidden:
        log.info("telegram: chat %s blocked the bot", chat_id)
        return Outcome.BLOCKED
    except RetryAfter as exc:
        metrics.THROTTLED.labels("telegram").inc()
        wait = exc.retry_after
        raise Throttled(wait.total_seconds() if isinstance(wait, dt.timedelta)
                        else float(wait)) from None
    except TelegramError as exc:  # TimedOut, NetworkError, a 5xx
        log.warning("telegram: message to %s not sent (%s)", chat_id, type(exc).__name__)
        return Outcome.RETRY
    return Outcome.SENT


def _utf16_length(text: str) -> int:
    """A text's length as Telegram counts it (UTF-16 code units: an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


async def _send_photo(bot: Bot, chat_id: int, url: str, caption: str,
                      markup: InlineKeyboardMarkup | None) -> bool:
    """Send an image by its URL; False when Telegram could not fetch or read it, so that the
    text still goes out (a broken image must not hold an announcement back for days)."""
    try:
        await bot.send_photo(chat_id, url, caption=caption or None, reply_markup=markup)
    except BadRequest as exc:
        log.warning("telegram: image for %s not sent (%s); sending the text alone",
                    chat_id, exc.message)
        return False
    return True


async def send_reply(application: Application[Any, Any, Any, Any, Any, Any], chat_id: int,
                     reply: Reply) -> bool:
    """The webhook's sending: True when done with the reply (sent, or the chat blocked the
    bot); False to leave it to the outbox (which tries again later)."""
    try:
        return await deliver(application.bot, chat_id, reply) is not Outcome.RETRY
    except Throttled:
        log.warning("telegram: flood limit reached for %s; the outbox sends it later", chat_id)
        return False


# Set by the webhook around one update: the ids the database could not take just now, so the
# webhook answers 503 and Telegram delivers them again (PTB awaits handlers in the same task).
UNSAVED: ContextVar[list[int] | None] = ContextVar("telegram_unsaved", default=None)


async def _answer(application: Application[Any, Any, Any, Any, Any, Any], update: Update,
                  chat_id: int, message: IncomingMessage) -> None:
    """Hand the message to the core and send its replies in order; a reply that cannot be
    sent now stays in the outbox with the ones after it. If the database is away, nothing
    is answered and the update is marked for redelivery."""
    dialogue: Dialogue = application.bot_data[DIALOGUE_KEY]
    try:
        replies = await dialogue.handle(message)
    except Unavailable:
        metrics.observe_unavailable("telegram")
        unsaved = UNSAVED.get()
        if unsaved is None:  # polling: Telegram will not deliver it again
            log.warning("telegram: database unavailable; update %s dropped", update.update_id)
        else:
            unsaved.append(update.update_id)
        return
    metrics.observe_turn("telegram", replies)
    for i, reply in enumerate(replies):
        if not await send_reply(application, chat_id, reply):
            return
        await dialogue.delivered(message, i)


# Telegram commands (the menu Telegram shows, and "/cmd@botname" in groups) as intents.
COMMANDS = {"start": Intent.MENU, "help": Intent.MENU, "menu": Intent.MENU,
            "thutuc": Intent.FIELDS, "tracuu": Intent.LOOKUP, "theodoi": Intent.FOLLOW,
            "huytheodoi": Intent.UNFOLLOW, "lienhe": Intent.STAFF, "ngonngu": Intent.LANGUAGE}


def procedure_deep_link(code: str) -> str:
    """``/start`` payload that opens a procedure (QR code on the notice board):
    "1.001193" → "p_1_001193"."""
    return "p_" + code.replace(".", "_")


def lookup_deep_link(receipt_code: str) -> str:
    """``/start`` payload that starts a lookup ("000.00.19.H26-…" → "s_000_00_19_H26-…")."""
    return "s_" + receipt_code.replace(".", "_")


def event_id(config: TelegramConfig, update: Update) -> str:
    """The update's id in the deployment: Telegram numbers each bot's updates on their own,
    so the bot's id (the token's first part) goes before it."""
    return f"{config.token.partition(':')[0]}:{update.update_id}"


def command_payload(text: str) -> str | None:
    """The payload of a Telegram command ("/start p_1_001193", "/tracuu@motcua_bot"), or None
    for ordinary text. An unknown command opens the menu."""
    match = re.fullmatch(r"/([A-Za-z0-9_]{1,32})(?:@\w+)?(?:\s+(.*))?", text.strip(), re.S)
    if not match:
        return None
    command, argument = match.group(1).lower(), (match.group(2) or "").strip()
    link = re.fullmatch(r"([ps])_([A-Za-z0-9_\-]{1,62})", argument) if command == "start" \
        else None
    if link:
        value = link.group(2).replace("_", ".")
        return (PROCEDURE if link.group(1) == "p" else LOOKUP_CODE) + value
    return COMMANDS.get(command, Intent.MENU).value


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A citizen typed something (a question, a command, a code); or, in the staff group,
    a staff member replied to a relayed message."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or message.text is None:
        return
    config: TelegramConfig = context.application.bot_data[CONFIG_KEY]
    link = re.fullmatch(r"/lienket(?:@\w+)?\s+(\S{1,32})", message.text.strip())
    if link and update.effective_user:  # a staff member links their Telegram account
        await _staff_command(update, _link(context.application, chat.id, link.group(1),
                                           str(update.effective_user.id)))
        return
    if config.staff_chat_id and str(chat.id) == config.staff_chat_id:
        await _staff_command(update, _in_staff_group(context.application, update))
        return  # the staff group is not a citizen
    payload = command_payload(message.text)
    await _answer(context.application, update, chat.id, IncomingMessage(
        "telegram", str(chat.id), text="" if payload else message.text, payload=payload or "",
        event_id=event_id(config, update)))


async def _in_staff_group(application: Application[Any, Any, Any, Any, Any, Any],
                          update: Update) -> None:
    """A message in the staff group: an announcement, its confirmation typed in reply to the
    preview, or a reply to a relayed citizen's message; anything else is staff chatting."""
    message, chat = update.effective_message, update.effective_chat
    assert message is not None and message.text is not None and chat is not None
    announcement = re.fullmatch(r"/thongbao(?:@\w+)?(?:\s+(.*))?", message.text.strip(), re.S)
    quoted = message.reply_to_message.text if message.reply_to_message else None
    preview = re.match(r"Xem trước thông báo số (\d{1,9})", quoted or "")
    answer = fold(message.text).strip(" .!")
    citizen = read_relay_tag(quoted or "")
    if not (announcement or (preview and answer in ("gui", "huy")) or citizen):
        return
    member = await _group_member(application, update)
    if member is None:
        return
    if announcement:
        await _announce(application, chat.id, announcement.group(1) or "", member)
    elif preview and answer in ("gui", "huy"):  # "gửi" typed in reply to a preview
        await _confirm(application, chat.id, "send" if answer == "gui" else "cancel",
                       int(preview.group(1)))
    elif citizen:
        dialogue: Dialogue = application.bot_data[DIALOGUE_KEY]
        await dialogue.from_staff(channel=citizen[0], user_id=citizen[1], text=message.text,
                                  reply_id=f"{chat.id}:{message.id}", officer=member)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A citizen tapped an inline button."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or chat is None:
        return
    try:
        await query.answer()  # only stops the button's spinner: not worth failing over
    except TelegramError as exc:
        log.info("telegram: callback query not answered (%s)", type(exc).__name__)
    config: TelegramConfig = context.application.bot_data[CONFIG_KEY]
    confirm = re.fullmatch(r"bc:(send|cancel):(\d{1,9})", query.data or "")
    if config.staff_chat_id and str(chat.id) == config.staff_chat_id:
        if confirm:
            await _staff_command(update, _confirm_tapped(context.application, update,
                                                         confirm.group(1), int(confirm.group(2))))
        return  # the staff group is not a citizen
    await _answer(context.application, update, chat.id, IncomingMessage(
        "telegram", str(chat.id), payload=query.data or "", event_id=event_id(config, update)))


async def _group_member(application: Application[Any, Any, Any, Any, Any, Any],
                        update: Update) -> str | None:
    """How the staff group's writer is named as staff; None (and told why, in the group) when
    the commune links staff accounts and this one is not linked or is disabled."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    office = application.bot_data[DIALOGUE_KEY].office
    member = await telegram_staff(office, str(user.id))
    if not member.refused:
        return member.actor
    await send_reply(application, chat.id, Reply(Text("vi")(
        "Only staff whose Telegram account is linked to their console account can do this "
        "here. Sign in to the console, open “My account” and send the bot the code shown "
        "there: /lienket CODE")))
    return None


async def _link(application: Application[Any, Any, Any, Any, Any, Any], chat_id: int,
                code: str, user_id: str) -> None:
    """``/lienket CODE``: link the sender's Telegram account to a console account."""
    office = application.bot_data[DIALOGUE_KEY].office
    name = await link_telegram(office, code=code, user_id=user_id, now=dt.datetime.now(dt.UTC))
    t = Text("vi")
    await send_reply(application, chat_id, Reply(
        t("Linked: this Telegram account now acts for {name} in the staff group.", name=name)
        if name else t("This code is wrong or has expired. Get a new one in the console, "
                       "under “My account”.")))


async def _confirm_tapped(application: Application[Any, Any, Any, Any, Any, Any],
                          update: Update, action: str, number: int) -> None:
    """"Send" or "Cancel" tapped under a preview in the staff group, by staff allowed to."""
    chat = update.effective_chat
    if chat is not None and await _group_member(application, update) is not None:
        await _confirm(application, chat.id, action, number)


async def _staff_command(update: Update, work: Awaitable[None]) -> None:
    """Run a staff command; with the database away, have Telegram deliver it again."""
    try:
        await work
    except Exception as exc:
        if not unavailable(exc):
            raise
        unsaved = UNSAVED.get()
        if unsaved is not None:
            unsaved.append(update.update_id)


async def _announce(application: Application[Any, Any, Any, Any, Any, Any], chat_id: int,
                    text: str, staff: str) -> None:
    """``/thongbao <text>`` in the staff group: a draft to everyone subscribed, previewed
    there with its recipient count and the buttons that send or cancel it."""
    dialogue: Dialogue = application.bot_data[DIALOGUE_KEY]
    t = Text("vi")
    try:
        made = await broadcasts.create(dialogue.office, text=text, created_by=staff)
    except broadcasts.BroadcastError:
        await send_reply(application, chat_id, Reply(t(
            "Write the announcement after the command, at most {limit} characters: "
            "/thongbao <text>", limit=broadcasts.MAX_TEXT)))
        return
    number = made.broadcast.id
    await send_reply(application, chat_id, Reply(
        t("Preview of announcement {id}; it will reach {count} subscribers:", id=number,
          count=made.recipients) + "\n\n" + made.text,
        [Button(t("Send"), f"bc:send:{number}"), Button(t("Cancel"), f"bc:cancel:{number}")]))


async def _confirm(application: Application[Any, Any, Any, Any, Any, Any], chat_id: int,
                   action: str, number: int) -> None:
    """The staff group's "Send" or "Cancel" under a preview."""
    office = application.bot_data[DIALOGUE_KEY].office
    t = Text("vi")
    try:
        if action == "send":
            done = await broadcasts.schedule(office, number)
            text = t("Announcement {id} is being sent to {count} recipients.", id=number,
                     count=done.recipients)
        else:
            await broadcasts.cancel(office, number)
            text = t("Announcement {id} is cancelled.", id=number)
    except broadcasts.BroadcastError:
        text = t("Announcement {id} can no longer be sent or cancelled.", id=number)
    await send_reply(application, chat_id, Reply(text))


class Forgetful(Application[Any, Any, Any, Any, Any, Any]):
    """PTB's application without a memory of every chat: PTB 22 adds the chat and user id of
    each update to two sets that only a persistence empties, and we keep conversations in our
    database, not in a PTB persistence (a bot serving a province would grow by every chat it
    ever saw)."""

    def _mark_for_persistence_update(self, *, update: object | None = None,
                                     job: Any = None) -> None:
        if self.persistence is not None:
            super()._mark_for_persistence_update(update=update, job=job)


def build_application(config: TelegramConfig, dialogue: Dialogue, *, polling: bool = False
                      ) -> Application[Any, Any, Any, Any, Any, Any]:
    """PTB's application pointed at ``config.api_base_url``, with our two handlers."""
    builder = (ApplicationBuilder().application_class(Forgetful).token(config.token)
               .base_url(f"{config.api_base_url}/bot")
               .base_file_url(f"{config.api_base_url}/file/bot")
               .request(AiohttpRequest()).get_updates_request(AiohttpRequest(pool_size=1)))
    if not polling:
        builder = builder.updater(None)  # updates come from our webhook
    application = builder.build()
    application.bot_data[DIALOGUE_KEY] = dialogue
    application.bot_data[CONFIG_KEY] = config
    application.add_handler(MessageHandler(filters.TEXT, on_text))
    application.add_handler(CallbackQueryHandler(on_button))
    return application


def chat_sender(bot: Bot) -> Sender:
    """The outbox's sender to citizens' chats: the recipient is the chat id."""
    async def send(recipient: str, reply: Reply) -> Outcome:
        return await deliver(bot, int(recipient), reply)
    return send


def senders(application: Application[Any, Any, Any, Any, Any, Any], config: TelegramConfig
            ) -> dict[str, Sender]:
    """Outbox senders: "telegram" to citizens' chats, "staff" to the staff group (if set)."""
    async def staff(recipient: str, reply: Reply) -> Outcome:
        # A citizen's message carries a tag so that a staff member's reply finds its way
        # back; what is for staff alone (the morning digest) does not.
        text = f"{relay_tag(recipient)} {reply.text}" if ":" in recipient else reply.text
        return await deliver(application.bot, int(config.staff_chat_id), Reply(text))

    found = {"telegram": chat_sender(application.bot)}
    return {**found, "staff": staff} if config.staff_chat_id else found


TELEGRAM = web.AppKey("telegram", Application)
TELEGRAM_CONFIG = web.AppKey("telegram_config", TelegramConfig)


def _int64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63


def _text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _readable(update: Update) -> bool:
    """Whether the fields PTB and our handlers read have Telegram's types (PTB does not check
    them: an id that is a list fails deep inside it)."""
    user, chat = update.effective_user, update.effective_chat
    if not (_int64(update.update_id) and (user is None or _int64(user.id))
            and (chat is None or _int64(chat.id))):
        return False
    message, query = update.message, update.callback_query
    if message is not None:
        quoted = message.reply_to_message
        return (_int64(message.message_id) and _text(message.text)
                and (quoted is None or _text(quoted.text)))
    return query is None or _text(query.data)


async def webhook(request: web.Request) -> web.Response:
    """``POST /webhook/telegram``: secret first (403), then JSON (400); handled updates once;
    503 while the database is away, so that Telegram delivers the update again."""
    config = request.app[TELEGRAM_CONFIG]
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not config.webhook_secret or not hmac.compare_digest(given.encode(),
                                                            config.webhook_secret.encode()):
        return web.Response(status=403)
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested 1,000 deep; huge ints
        return web.Response(status=400, text="body must be JSON")
    application = request.app[TELEGRAM]
    try:
        update = Update.de_json(data, application.bot) if isinstance(data, dict) else None
        readable = update is not None and _readable(update)
    except Exception as exc:  # PTB trusts Telegram's shapes: odd ones raise anything
        update, readable = None, False
        log.warning("telegram: an update could not be read (%s)", type(exc).__name__)
    if update is None or not readable:
        # Acknowledged: refused, Telegram would deliver it again for a day.
        log.warning("telegram: update %s ignored: not in Telegram's shape",
                    update.update_id if update else "?")
        return web.Response(status=200, text="not a Telegram update: ignored")
    if update.message is None and update.callback_query is None:
        return web.Response(status=200)  # an update type we do not handle
    unsaved: list[int] = []
    token = UNSAVED.set(unsaved)
    try:
        await application.process_update(update)  # the core ignores a redelivered update
    except TelegramError as exc:
        log.warning("telegram: could not answer update %s: %s", update.update_id,
                    type(exc).__name__)
    finally:
        UNSAVED.reset(token)
    if unsaved:  # nothing was saved: Telegram sends the update again later
        return web.Response(status=503, text="database unavailable, send again")
    return web.Response(status=200)


def add_telegram_routes(app: web.Application, application: Application[Any, Any, Any, Any,
                                                                      Any, Any],
                        config: TelegramConfig, *, prefix: str = "") -> None:
    """Mount the webhook and start/stop PTB's application with the web server.

    With ``PUBLIC_BASE_URL`` the webhook is registered with Telegram, at ``prefix`` (where
    ``app`` is served: ``/c/<slug>`` for a commune's own bot); without it the bot polls
    (development), which needs an application built with ``polling=True``.
    """
    app[TELEGRAM] = application
    app[TELEGRAM_CONFIG] = config
    app.router.add_post("/webhook/telegram", webhook)

    async def lifecycle(app: web.Application) -> Any:
        await application.initialize()
        await application.start()
        if config.public_base_url:
            url = f"{config.public_base_url}{prefix}/webhook/telegram"
            await application.bot.set_webhook(
                url, secret_token=config.webhook_secret or None,
                allowed_updates=["message", "callback_query"])
            log.info("telegram: webhook set to %s", url)
        elif application.updater is not None:
            await application.updater.start_polling(allowed_updates=["message",
                                                                     "callback_query"])
            log.info("telegram: polling (set PUBLIC_BASE_URL to use the webhook)")
        yield
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await application.stop()
        await application.shutdown()

    app.cleanup_ctx.append(lifecycle)
