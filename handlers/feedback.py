"""Citizens' feedback (phản ánh, kiến nghị) and satisfaction ratings, in every channel.

A report: its kind (papers beyond the official list, late, unclear guidance, rude treatment,
other), optionally the receipt code or procedure, then the description; the citizen gets a
tracking number, anyone holding it sees the report's state, and only the account that filed
it sees the description and the answer (which may name them). Staff assign, answer and close
it (CLI, REST API, console); the answer reaches the citizen through the outbox. A rating
(1–5, then an optional comment) is asked once after a returned application (its status
notification asks) and after a hand-over ends; a score of ``ALERT_AT_MOST`` or less alerts
the staff chat.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from functools import cache

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.applications import Office
from handlers.intents.staff import STAFF_TIMEOUT
from handlers.messages import Button, Reply, dump_buttons, relay_recipient, storable
from handlers.status import RATE, RATING_QUESTION, rating_buttons
from handlers.turn import Step, Turn
from knowledge.i18n import N_, Lang, Text, language
from knowledge.intents import INTENTS_FILE, Intent, words
from knowledge.match import CLEAR
from knowledge.workdays import CLOSING, TZ, WorkCalendar
from storage import applications as applications_repo
from storage import feedback as repo
from storage.db import session_scope
from storage.domain import find_receipt_code, normalize_receipt_code
from storage.models import Application, Feedback, Notification, Rating

WORKING_DAYS = 10  # the staff's deadline to answer a report
RATING_WINDOW = dt.timedelta(days=7)  # a rating question may be answered this long
COMMENT_WINDOW = dt.timedelta(minutes=30)  # a comment may follow its score this long
RATING_DELAY = dt.timedelta(minutes=1)  # after staff end a hand-over, before the question
ALERT_AT_MOST = 2  # scores that alert the staff chat
DESCRIPTION_MAX = 4000  # characters kept of a description
KIND = "fb:"  # fb:<kind> — a report's kind tapped; "fb:skip": no receipt code or procedure
SKIP = "fb:skip"
RATE_SKIP = RATE + "skip"  # no comment after the score
FLOW = (Step.FEEDBACK_KIND, Step.FEEDBACK_SUBJECT, Step.FEEDBACK_TEXT)
STAFF_RECIPIENT = "feedback"  # the staff chat's recipient of new reports: no citizen's tag

KIND_LABELS = {
    "extra_papers": N_("Asked for papers beyond the official list"),
    "late": N_("Application late"),
    "unclear": N_("Unclear guidance"),
    "rude": N_("Rude treatment"),
    "other": N_("Something else"),
}
STATUS_LABELS = {
    repo.OPEN: N_("received, waiting for an answer"),
    repo.ASSIGNED: N_("being handled by an officer"),
    repo.ANSWERED: N_("answered by the commune"),
    repo.CLOSED: N_("closed by the commune"),
}
_SKIP_WORDS = {("bo", "qua"), ("khong",), ("khong", "co"), ("ko",), ("k",), ("skip",), ("no",),
               ("none",), ("khong", "nho"), ("bo", "qua", "buoc", "nay")}
_EXPLICIT = re.compile(r"\b(phan anh|kien nghi|khieu nai|gop y|feedback|complain)")
# A score alone ("5", "4 sao", "3/5"), or with a comment after a mark or a score word
# ("2 sao, chờ lâu quá"): "5 ngày nữa có kết quả không" is no score.
_SCORE = re.compile(r"^\s*([1-5])\s*(?:sao|điểm|diem|/\s*5|\*+|⭐+)?\s*[.!]*()\s*$",
                    re.IGNORECASE)
_SCORE_COMMENT = re.compile(r"^\s*([1-5])\s*(?:(?:sao|điểm|diem|/\s*5)\s*[,:;.\-–—]?|"
                            r"[,:;.\-–—])\s*(\S.*)$", re.IGNORECASE | re.DOTALL)


@cache
def kind_words() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(kind, folded space-padded phrases) from ``[feedback_kinds]`` in ``intents.toml``."""
    data = tomllib.loads(INTENTS_FILE.read_text(encoding="utf-8")).get("feedback_kinds", {})
    return tuple((kind, tuple(f" {' '.join(words(p))} " for p in data.get(kind, [])))
                 for kind in ("extra_papers", "late", "rude", "unclear", "other"))


def kind_of(text: str) -> str:
    """The kind of report a message names ("bị đòi thêm giấy tờ": extra_papers), or ""."""
    padded = f" {' '.join(words(text))} "
    return next((kind for kind, phrases in kind_words() if any(p in padded for p in phrases)),
                "")


def deadline(calendar: WorkCalendar, filed_at: dt.datetime, days: int = WORKING_DAYS
             ) -> dt.datetime:
    """The end of the ``days``-th working day after the filing day (local time), in UTC."""
    day = calendar.add_working_days(filed_at.astimezone(TZ).date(), days)
    return dt.datetime.combine(day, CLOSING, TZ).astimezone(dt.UTC)


# --- the conversation -------------------------------------------------------------------


async def respond(turn: Turn) -> list[Reply] | None:
    """Every message that belongs to a report or a rating, or None."""
    state = turn.state
    since = state.with_staff_since
    if since is not None and turn.now - since <= STAFF_TIMEOUT:
        return None  # staff have the conversation
    payload, step = turn.payload, state.step
    if payload.startswith(RATE):
        return await _rate_tapped(turn, payload.removeprefix(RATE))
    if payload == SKIP and step in FLOW:
        return await _ask_text(turn)
    if payload.startswith(KIND) and payload != SKIP:  # a kind, also under an older message
        return await _subject_or_text(turn, payload.removeprefix(KIND))
    if payload == Intent.FEEDBACK:
        return await start(turn)
    if payload == Intent.FEEDBACK_STATUS:
        return await mine(turn)
    if payload:
        await _leave(turn)  # another button: the assistant answers it
        return None
    number = repo.find_tracking_number(turn.text)
    if number is not None:
        await _leave(turn)
        return await show(turn)
    if step in FLOW:
        return await _in_flow(turn)
    if step == Step.RATING_COMMENT:
        return await _comment(turn)
    score = _SCORE.match(turn.text) or _SCORE_COMMENT.match(turn.text)
    if score is not None:
        replies = await _rate_typed(turn, int(score.group(1)), score.group(2).strip())
        if replies is not None:
            return replies
    if Intent.FEEDBACK_STATUS in (turn.intent, *turn.mentioned):
        return await mine(turn)
    if Intent.FEEDBACK in (turn.intent, *turn.mentioned):
        # "hồ sơ 000.00.19.H26-… trễ hẹn rồi sao chưa có kết quả", "hồ sơ của tôi bị trễ hẹn,
        # kiểm tra giúp" are status lookups, unless a report is asked for in so many words.
        if (find_receipt_code(turn.text) or Intent.LOOKUP in turn.mentioned) and not (
                _EXPLICIT.search(" ".join(words(turn.text)))):
            return None
        return await start(turn)
    return None


async def start(turn: Turn) -> list[Reply]:
    """Begin a report, taking its kind and receipt code from the message when it names them."""
    office = turn.services.office
    report = await repo.start_draft(turn.session, commune_id=office.commune_id,
                                    channel=turn.state.channel, recipient=turn.state.user_id,
                                    lang=turn.state.lang, at=turn.now)
    code = "" if turn.payload else find_receipt_code(turn.text) or ""
    if code:
        await _set_receipt_code(turn, report, code)
    kind = "" if turn.payload else kind_of(turn.text)
    if not kind:
        turn.state.step = Step.FEEDBACK_KIND
        t = turn.t
        lines = [t("What would you like to report? Choose, or type its number:")]
        lines += [f"{i}. {t(KIND_LABELS[k])}" for i, k in enumerate(repo.KINDS, 1)]
        return turn.reply("\n".join(lines), "feedback", [
            Button(t(KIND_LABELS[k]), f"{KIND}{k}") for k in repo.KINDS])
    report.kind = kind
    turn.session.add(report)
    return await _ask_text(turn) if code else await _ask_subject(turn)


async def _in_flow(turn: Turn) -> list[Reply] | None:
    """A message while a report is being written: its next part, or leaving it."""
    t, step = turn.t, turn.state.step
    if turn.intent in (Intent.END, Intent.MENU, Intent.STAFF, Intent.LOOKUP):
        await _leave(turn)
        if turn.intent is Intent.END:
            return turn.reply(t("All right, the report was not sent."), "feedback",
                              turn.menu_buttons())
        return None  # the assistant answers it
    if step == Step.FEEDBACK_KIND:
        typed = re.fullmatch(r"\D{0,8}([1-5])\W*", turn.text)
        kind = repo.KINDS[int(typed.group(1)) - 1] if typed else kind_of(turn.text)
        if not kind:
            return turn.reply(t("Please choose one of the kinds above (a number from 1 to 5)."),
                              "feedback", [Button(t(KIND_LABELS[k]), f"{KIND}{k}")
                                           for k in repo.KINDS])
        return await _subject_or_text(turn, kind)
    report = await _draft(turn)
    if report is None:  # gone (another device finished it)
        turn.state.step = Step.IDLE
        return await start(turn)
    if step == Step.FEEDBACK_SUBJECT:
        return await _subject(turn, report)
    if not turn.text or turn.intent is not None:  # a sticker, a photo, "ok"
        return turn.reply(t("Please describe what happened in a message."), "feedback")
    return await _file(turn, report, turn.text)


async def _subject_or_text(turn: Turn, kind: str) -> list[Reply]:
    """The kind chosen: ask for the application or procedure (unless already given)."""
    if kind not in repo.KINDS:
        return turn.reply(turn.t("Sorry, that choice is no longer available."), "menu",
                          turn.menu_buttons())
    report = await _draft(turn)
    if report is None:
        report = await repo.start_draft(
            turn.session, commune_id=turn.services.office.commune_id,
            channel=turn.state.channel, recipient=turn.state.user_id, lang=turn.state.lang,
            at=turn.now)
    report.kind = kind
    turn.session.add(report)
    return await _ask_text(turn) if report.receipt_code else await _ask_subject(turn)


async def _ask_subject(turn: Turn) -> list[Reply]:
    t = turn.t
    turn.state.step = Step.FEEDBACK_SUBJECT
    return turn.reply(t("Which application or procedure is it about? Type the receipt code or "
                        "the procedure's name, or tap \"Skip this step\"."), "feedback",
                      [Button(t("Skip this step"), SKIP)])


async def _ask_text(turn: Turn) -> list[Reply]:
    turn.state.step = Step.FEEDBACK_TEXT
    return turn.reply(turn.t("Please describe what happened (when, where, who; what you were "
                             "asked for). Your report goes to the commune's leaders."),
                      "feedback")


async def _subject(turn: Turn, report: Feedback) -> list[Reply]:
    """A receipt code, a procedure, "bỏ qua"; or, when it is none of them, the description."""
    folded = tuple(words(turn.text))
    if folded in _SKIP_WORDS:
        return await _ask_text(turn)
    code = find_receipt_code(turn.text) or (
        normalize_receipt_code(turn.text) if len(folded) <= 2 and re.search(r"\d", turn.text)
        else None)
    if code:
        await _set_receipt_code(turn, report, code)
        return await _ask_text(turn)
    answer = turn.ask(context=False)
    named = answer.kind == "procedure" and answer.matches[0].score >= CLEAR
    if named:
        report.procedure_code = answer.code
        turn.session.add(report)
    if len(folded) <= 8:
        if named:
            return await _ask_text(turn)
        t = turn.t
        return turn.reply(t("I could not find that procedure. Type the receipt code, or tap "
                            "\"Skip this step\"."), "feedback", [Button(t("Skip this step"), SKIP)])
    return await _file(turn, report, turn.text)  # a story: the description itself


async def _set_receipt_code(turn: Turn, report: Feedback, code: str) -> None:
    """Keep the receipt code, and the procedure of the commune's application with it (the
    citizen is told nothing about the application)."""
    report.receipt_code = code
    found = (await applications_repo.existing(
        turn.session, commune_id=turn.services.office.commune_id, codes=[code])).get(code)
    if found is not None and found.procedure_code:
        report.procedure_code = found.procedure_code[:16]
    turn.session.add(report)


async def _file(turn: Turn, report: Feedback, description: str) -> list[Reply]:
    """File the report: its tracking number and deadline to the citizen, a notice to staff."""
    office, t = turn.services.office, turn.t
    report.kind = report.kind or "other"
    await repo.file(turn.session, report, description=storable(description)[:DESCRIPTION_MAX],
                    at=turn.now, due_at=deadline(office.calendar, turn.now))
    turn.state.step = Step.IDLE
    number = repo.tracking_number(report)
    assert report.due_at is not None
    await applications_repo.enqueue(turn.session, [Notification(
        commune_id=office.commune_id, channel="staff", recipient=STAFF_RECIPIENT,
        text=staff_notice(report), idempotency_key=f"feedback:{report.id}", kind="relay",
        created_at=turn.now)])
    due = t.date(report.due_at.astimezone(TZ))
    return turn.reply(t("Your report has been recorded as number {number}. The commune will "
                        "answer by {date}; the answer will come here. To follow it, type "
                        "\"tra cứu phản ánh {number}\".", number=number, date=due),
                      "feedback_filed", [Button(t("Menu"), Intent.MENU)], detail=number)


def staff_notice(report: Feedback) -> str:
    """The message the staff chat receives about a new report (in Vietnamese)."""
    t = Text("vi")
    assert report.due_at is not None
    about = ", ".join(x for x in (report.receipt_code, report.procedure_code) if x)
    return t("New report {number} ({kind}{about}), to answer by {date}:\n{description}",
             number=repo.tracking_number(report), kind=t(KIND_LABELS[report.kind]),
             about=f"; {about}" if about else "",
             date=t.date(report.due_at.astimezone(TZ)), description=report.description)


async def show(turn: Turn) -> list[Reply]:
    """A report looked up by its number: its state; the rest for its author alone."""
    t = turn.t
    report = await repo.get(turn.session, commune_id=turn.services.office.commune_id,
                            reference=turn.text)
    if report is None:
        return turn.reply(t("No report has this number. Check the number you were given "
                            "(e.g. PA-2026-000123)."), "feedback_status")
    mine = (report.channel, report.recipient) == (turn.state.channel, turn.state.user_id)
    return turn.reply(report_text(report, t, full=mine), "feedback_status",
                      detail="author" if mine else "")


def report_text(report: Feedback, t: Text, *, full: bool) -> str:
    """A report as a citizen sees it: number and state; with ``full`` (its author) also its
    kind, what it is about, the description, the deadline and the answer."""
    lines = [t("Report {number}: {status}.", number=repo.tracking_number(report),
               status=t(STATUS_LABELS[report.status]))]
    if full:
        lines.append(t("Kind: {kind}", kind=t(KIND_LABELS[report.kind])))
        if report.receipt_code:
            lines.append(t("Application: {code}", code=report.receipt_code))
        lines.append(t("Your report: {text}", text=report.description))
        if report.due_at is not None and report.status in repo.PENDING:
            lines.append(t("To be answered by {date}.",
                           date=t.date(report.due_at.astimezone(TZ))))
    if full and report.answer:  # it may name the citizen: for their account only
        lines.append(t("Answer from the commune: {answer}", answer=report.answer))
    return "\n".join(lines)


async def mine(turn: Turn) -> list[Reply]:
    """The reports this account filed, or how to follow one by number."""
    t = turn.t
    reports = await repo.by_author(turn.session, commune_id=turn.services.office.commune_id,
                                   channel=turn.state.channel, recipient=turn.state.user_id)
    if not reports:
        return turn.reply(t("Type the number of the report, e.g. \"tra cứu phản ánh "
                            "PA-2026-000123\". To send a report, type \"phản ánh\"."),
                          "feedback_status", [Button(t("Send a report"), Intent.FEEDBACK)])
    return turn.reply("\n\n".join(report_text(r, t, full=True) for r in reports),
                      "feedback_status")


async def _draft(turn: Turn) -> Feedback | None:
    return await repo.draft(turn.session, commune_id=turn.services.office.commune_id,
                            channel=turn.state.channel, recipient=turn.state.user_id)


async def _leave(turn: Turn) -> None:
    """Leave a report being written (or a comment awaited), forgetting the draft."""
    if turn.state.step in FLOW:
        await repo.discard_draft(turn.session, commune_id=turn.services.office.commune_id,
                                 channel=turn.state.channel, recipient=turn.state.user_id)
    if turn.state.step in (*FLOW, Step.RATING_COMMENT):
        turn.state.step = Step.IDLE


# --- ratings ----------------------------------------------------------------------------


def rating_question(t: Text) -> str:
    return t(RATING_QUESTION)


def handover_subject(since: dt.datetime) -> str:
    return f"handover:{int(since.timestamp())}"


async def after_hand_over(turn: Turn, since: dt.datetime | None) -> list[Reply]:
    """The rating question when the citizen has just ended ("kết thúc") a hand-over in which
    staff replied (one nobody answered has no one to rate)."""
    state, commune_id = turn.state, turn.services.office.commune_id
    if since is None or state.with_staff_since is not None or turn.intent is not Intent.END:
        return []
    subject = handover_subject(since)
    if not await repo.staff_replied(turn.session, commune_id=commune_id, channel=state.channel,
                                    recipient=state.user_id, subject=subject):
        return []
    asked = await repo.ask_rating(turn.session, commune_id=commune_id, channel=state.channel,
                                  recipient=state.user_id, subject=subject, at=turn.now)
    return [Reply(rating_question(turn.t), rating_buttons(), "rating")] if asked else []


async def staff_replied(session: AsyncSession, *, commune_id: int, channel: str,
                        recipient: str, lang: Lang, since: dt.datetime, officer: str,
                        ended: bool, now: dt.datetime) -> None:
    """Staff replied in the hand-over that began at ``since``: remember who (the rating is
    theirs); when they ended it, the rating question follows their last message (once,
    ``RATING_DELAY`` later, so that it comes after it)."""
    subject = handover_subject(since)
    await repo.note_officer(session, commune_id=commune_id, channel=channel,
                            recipient=recipient, subject=subject, officer=officer)
    if ended and await repo.ask_rating(session, commune_id=commune_id, channel=channel,
                                       recipient=recipient, subject=subject, at=now):
        await applications_repo.enqueue(session, [Notification(
            commune_id=commune_id, channel=channel, recipient=recipient,
            text=rating_question(Text(lang)), buttons=dump_buttons(rating_buttons()),
            idempotency_key=f"rating:{channel}:{recipient}:{subject}"[:160], kind="staff",
            created_at=now, next_attempt_at=now + RATING_DELAY)])


async def _rate_tapped(turn: Turn, value: str) -> list[Reply]:
    if value == "skip":
        await _leave(turn)
        return turn.reply(turn.t("Thank you for your rating."), "rating")
    if value not in ("1", "2", "3", "4", "5"):
        return turn.reply(turn.t("Sorry, that choice is no longer available."), "menu",
                          turn.menu_buttons())
    replies = await _rate_typed(turn, int(value), "")
    return replies or turn.reply(turn.t("Thank you! This rating was already recorded."),
                                 "rating")


async def _rate_typed(turn: Turn, score: int, comment: str) -> list[Reply] | None:
    """A score for the latest open rating question (None when there is none, or a numbered
    list offered later is what the number picks from)."""
    state, office, t = turn.state, turn.services.office, turn.t
    pending = await repo.pending_rating(turn.session, commune_id=office.commune_id,
                                        channel=state.channel, recipient=state.user_id,
                                        since=turn.now - RATING_WINDOW)
    if pending is None:
        return None
    if not turn.payload and turn.options and state.topic_at is not None \
            and state.topic_at > pending.asked_at:
        return None  # "2" picks from the list offered after the question
    rating = await repo.rate(turn.session, commune_id=office.commune_id, channel=state.channel,
                             recipient=state.user_id, pending=pending, score=score,
                             comment=storable(comment)[:DESCRIPTION_MAX], at=turn.now)
    await _alert(turn, rating)
    if comment:
        state.step = Step.IDLE
        return turn.reply(t("Thank you for your rating."), "rating", detail=str(score))
    state.step = Step.RATING_COMMENT
    return turn.reply(t("Thank you! Would you like to add a comment? Type it, or tap "
                        "\"Skip this step\"."), "rating", [Button(t("Skip this step"), RATE_SKIP)],
                      detail=str(score))


async def _comment(turn: Turn) -> list[Reply] | None:
    """The optional comment after a score; an everyday intent instead leaves it."""
    state, office = turn.state, turn.services.office
    state.step = Step.IDLE
    folded = tuple(words(turn.text))
    if turn.intent in (Intent.ACK, Intent.THANKS, Intent.GOODBYE) or folded in _SKIP_WORDS:
        return turn.reply(turn.t("Thank you for your rating."), "rating")
    if turn.intent is not None or not turn.text:
        return None
    rating = await repo.last_rated(turn.session, commune_id=office.commune_id,
                                   channel=state.channel, recipient=state.user_id)
    if rating is None or rating.rated_at is None or turn.now - rating.rated_at > COMMENT_WINDOW \
            or turn.names_procedure():
        return None  # a question, not a comment
    rating.comment = storable(turn.text)[:DESCRIPTION_MAX]
    turn.session.add(rating)
    await _alert(turn, rating)
    return turn.reply(turn.t("Thank you, your comment has been passed on."), "rating")


async def _alert(turn: Turn, rating: Rating) -> None:
    """A low score (and its comment) goes to the staff chat, tagged so staff can reply."""
    assert rating.score is not None
    if rating.score > ALERT_AT_MOST:
        return
    t = Text("vi")
    app = await turn.session.get(Application, rating.application_id) \
        if rating.application_id is not None else None
    text = t("Low rating {score}/5 ({subject}; procedure {procedure}; officer {officer})",
             score=rating.score, procedure=rating.procedure_code or "-",
             subject=t("application {code}", code=app.receipt_code) if app else t("hand-over"),
             officer=rating.officer or "-")
    if rating.comment:
        text += "\n" + t("Comment: {comment}", comment=rating.comment)
    await applications_repo.enqueue(turn.session, [Notification(
        commune_id=turn.services.office.commune_id, channel="staff",
        recipient=relay_recipient(rating.channel, rating.recipient), text=text,
        idempotency_key=f"rating-alert:{rating.id}:{int(bool(rating.comment))}", kind="relay",
        created_at=turn.now)])


# --- staff: CLI and REST API ------------------------------------------------------------


class FeedbackError(Exception):
    """A staff action on a report that cannot be done (unknown report, empty answer…)."""


async def answer(office: Office, reference: str, text: str, *, by: str, now: dt.datetime
                 ) -> Feedback:
    """Answer a report: the answer is kept and queued for the citizen who filed it."""
    text = storable(text).strip()
    if not text:
        raise FeedbackError("the answer is empty")
    async with session_scope(office.sessions) as session:
        report = await _get(session, office, reference)
        report.answer, report.answered_by, report.answered_at = text, by[:120], now
        report.status = repo.ANSWERED
        session.add(report)
        t = Text(language(report.lang))
        await applications_repo.enqueue(session, [Notification(
            commune_id=office.commune_id, channel=report.channel, recipient=report.recipient,
            text=t("Answer to your report {number}:\n{answer}",
                   number=repo.tracking_number(report), answer=text),
            idempotency_key=f"feedback-answer:{report.id}:{now.timestamp():.6f}",
            kind="staff", created_at=now)])
    return report


async def assign(office: Office, reference: str, login: str) -> Feedback:
    """Give a report to an officer (by login) to handle."""
    login = login.strip().lower()
    if not login or len(login) > 64:
        raise FeedbackError("a login is 1 to 64 characters")
    async with session_scope(office.sessions) as session:
        report = await _get(session, office, reference)
        report.assignee = login
        if report.status == repo.OPEN:
            report.status = repo.ASSIGNED
        session.add(report)
    return report


async def close(office: Office, reference: str, *, now: dt.datetime) -> Feedback:
    """Close a report (answered or not): nothing more will be done."""
    async with session_scope(office.sessions) as session:
        report = await _get(session, office, reference)
        report.status, report.closed_at = repo.CLOSED, now
        session.add(report)
    return report


async def find(office: Office, reference: str) -> Feedback:
    """A report by tracking number or id."""
    async with office.sessions() as session:
        return await _get(session, office, reference)


async def _get(session: AsyncSession, office: Office, reference: str
               ) -> Feedback:
    report = await repo.get(session, commune_id=office.commune_id, reference=reference)
    if report is None:
        raise FeedbackError(f"no report {reference[:40]}")
    return report
