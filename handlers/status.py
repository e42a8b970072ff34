"""Status lookup by receipt code, and the wording of status messages.

A receipt code alone reveals nothing: the phone number given at submission is the second
factor, compared on its last ``FACTOR_DIGITS`` digits (so "0904…" and "+84 904…" agree). Its
last 4 digits alone are accepted only while small budgets of failures on them last (per code
and per commune): then the whole number is asked for, so a guesser gains little and an owner
is never locked out.
An unknown code and a wrong number get the same answer after the same work. Each client
address and each channel account may fail ``DAILY_FAILURES`` times a day on a code (only
they are turned away); a code that fails ``CODE_FAILURES`` times in ``WINDOW`` from anyone is
locked for at most that window, except for an account that already proved it owns the code.
Refused attempts are audited but never extend a lock. Only the procedure, status, due date and
what to do next are ever shown: no name, no phone. The threat model is in the README.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.messages import Button
from knowledge.i18n import N_, Lang, Text
from knowledge.workdays import TZ
from storage import applications as repo
from storage.domain import ApplicationStatus, normalize_receipt_code
from storage.models import Application

FACTOR_DIGITS = 9  # a Vietnamese number without its leading 0 or +84
SHORT_DIGITS = 4  # the last digits a citizen may give instead, while WEAK_FAILURES lasts
WEAK_FAILURES = 3  # per code and MONTH, from anyone
COMMUNE_WEAK_FAILURES = 10  # per commune and DAY: bounds guessing across many codes
MONTH = dt.timedelta(days=30)
DAILY_FAILURES = 5  # per code, per client address and per channel account
DAY = dt.timedelta(days=1)
CODE_FAILURES = 20  # per code from anyone, in WINDOW
WINDOW = dt.timedelta(minutes=15)
_DUMMY_PHONE = "0000000000"

STATUS_LABELS = {
    ApplicationStatus.RECEIVED: N_("received"),
    ApplicationStatus.PROCESSING: N_("being processed"),
    ApplicationStatus.SUPPLEMENT_REQUIRED: N_("more documents needed"),
    ApplicationStatus.RESULT_READY: N_("result ready for collection"),
    ApplicationStatus.RETURNED: N_("result handed over"),
    ApplicationStatus.REJECTED: N_("refused"),
    ApplicationStatus.WITHDRAWN: N_("withdrawn"),
}
NEXT_STEPS = {
    ApplicationStatus.RECEIVED: N_("Nothing to do for now: the commune is handling it."),
    ApplicationStatus.PROCESSING: N_("Nothing to do for now: the commune is handling it."),
    ApplicationStatus.SUPPLEMENT_REQUIRED: N_(
        "Please contact the one-stop desk to learn which documents to add."),
    ApplicationStatus.RESULT_READY: N_(
        "Bring the receipt slip and your identity card to the one-stop desk to collect it."),
    ApplicationStatus.RETURNED: N_("Nothing more to do."),
    ApplicationStatus.REJECTED: N_("Please contact the one-stop desk to learn why."),
    ApplicationStatus.WITHDRAWN: N_("Nothing more to do."),
}


@dataclass(frozen=True)
class StatusAnswer:
    """The reply to a lookup; ``application_id`` only when the second factor matched."""

    text: str
    application_id: int | None = None
    refused: bool = False  # too many failures: not even checked
    detail: str = ""  # "overdue", "supplement", "ready", "processing", "closed"
    procedure: str = ""  # the application's procedure code, once the second factor matched


def overdue(app: Application, now: dt.datetime) -> bool:
    """Still open after its due date."""
    status = ApplicationStatus(app.status)
    return not status.closed and not status.settled and app.due_at is not None \
        and app.due_at < now


def status_detail(app: Application, now: dt.datetime) -> str:
    """The kind of situation a citizen is in, for reports and evaluation."""
    status = ApplicationStatus(app.status)
    if status is ApplicationStatus.SUPPLEMENT_REQUIRED:
        return "supplement"
    if overdue(app, now):
        return "overdue"
    if status is ApplicationStatus.RESULT_READY:
        return "ready"
    return "closed" if status.closed or status.settled else "processing"


def status_text(app: Application, t: Text, *, now: dt.datetime | None = None,
                request: str = "") -> str:
    """Procedure, status, due date and next step of an application (no personal data).

    ``request`` is what staff wrote when asking for more documents (what, and by when).
    """
    status = ApplicationStatus(app.status)
    lines = [
        t("Application {code}: {procedure}", code=app.receipt_code,
          procedure=app.procedure_name or app.procedure_code or ""),
        t("Status: {status}", status=t(STATUS_LABELS[status])),
    ]
    if status.settled and app.completed_at:
        lines.append(t("Result produced on {date}.", date=t.date(app.completed_at.astimezone(TZ))))
    elif app.due_at and not status.closed:
        due = t.date(app.due_at.astimezone(TZ))
        if now is not None and overdue(app, now):
            lines.append(t("It was due on {date} and is now overdue. Ask the one-stop desk why "
                           "and for the new date; the office must tell you both.", date=due))
        else:
            lines.append(t("Due on {date} (estimate: please confirm with the one-stop desk).",
                           date=due) if app.due_estimated else t("Due on {date}.", date=due))
    if status is ApplicationStatus.SUPPLEMENT_REQUIRED and request:
        lines.append(t("The office asks for: {request}", request=request))
        lines.append(t("Bring or send it to the one-stop desk; ask there if anything is "
                       "unclear."))
    elif not (now is not None and overdue(app, now)):
        lines.append(t(NEXT_STEPS[status]))
    return "\n".join(lines)


def phone_factor(text: str) -> str:
    """What a citizen typed as the second factor: the last ``FACTOR_DIGITS`` digits of a whole
    phone number, the last 4 digits ("4 số cuối 5678"), or "" when it is neither."""
    groups = re.findall(r"\d+", text)
    whole = "".join(groups)
    if len(whole) >= FACTOR_DIGITS:
        return whole[-FACTOR_DIGITS:]
    last = groups[-1] if len(groups) > 1 else whole
    return last if len(last) == SHORT_DIGITS else ""


async def lookup_status(session: AsyncSession, *, commune_id: int, receipt_code: str,
                        phone: str, user_key: str, client_key: str = "", lang: Lang,
                        now: dt.datetime, names: Mapping[str, str] | None = None
                        ) -> StatusAnswer:
    """Look an application up by receipt code and the phone number given at submission
    (or its last 4 digits); ``client_key`` is the web client's address; ``names`` gives
    procedure names in the reply's language by code."""
    t = Text(lang)
    code = normalize_receipt_code(receipt_code) or re.sub(r"\s+", "", receipt_code)[:64].upper()
    given = phone_factor(phone)
    weak = len(given) == SHORT_DIGITS
    counts, app = await repo.lookup_snapshot(
        session, commune_id=commune_id, user_key=user_key, client_key=client_key,
        receipt_code=code, since=now - MONTH, day_since=now - DAY, window_since=now - WINDOW)
    refusal = None
    if counts.by_user >= DAILY_FAILURES or counts.by_client >= DAILY_FAILURES:
        refusal = t("Too many unsuccessful attempts on this code today. Please try again "
                    "tomorrow, or ask at the one-stop desk.")
    elif counts.on_code >= CODE_FAILURES and not counts.proven:
        minutes = int(WINDOW.total_seconds() // 60)
        refusal = t("Too many unsuccessful attempts. Please try again in {minutes} minutes, "
                    "or ask at the one-stop desk.", minutes=minutes)
    elif weak and (counts.weak >= WEAK_FAILURES
                   or counts.weak_in_commune >= COMMUNE_WEAK_FAILURES):
        refusal = t("For this application, please type the whole phone number you gave when "
                    "applying (the last digits alone are no longer accepted).")
    if refusal is not None:
        await repo.record_lookup(session, commune_id=commune_id, user_key=user_key,
                                 client_key=client_key, receipt_code=code, success=False,
                                 refused=True, weak=weak, at=now)
        return StatusAnswer(refusal, refused=True)
    # The comparison runs whether or not the code exists, so both failures cost the same.
    stored = phone_factor(app.phone or "") if app and app.phone else phone_factor(_DUMMY_PHONE)
    expected = stored[-SHORT_DIGITS:] if weak else stored
    matched = hmac.compare_digest(expected.encode(), given.encode()) and bool(given) \
        and app is not None and bool(app.phone)
    await repo.record_lookup(session, commune_id=commune_id, user_key=user_key,
                             client_key=client_key, receipt_code=code, success=matched,
                             weak=weak, at=now)
    if not matched or app is None:
        return StatusAnswer(t("No application matches code {code} and this phone number. "
                              "Check the code on your receipt slip and the phone number you "
                              "gave when applying.", code=code))
    request = ""
    if app.status == ApplicationStatus.SUPPLEMENT_REQUIRED and app.id is not None:
        # What staff asked for; a correction's note explains the correction, not the request.
        notes = [c.note for c in await repo.history(session, app.id)
                 if not c.note.startswith(repo.CORRECTION)]
        request = notes[-1] if notes else ""
    name = (names or {}).get(app.procedure_code or "")
    if name:
        app = app.model_copy(update={"procedure_name": name})
    return StatusAnswer(status_text(app, t, now=now, request=request), application_id=app.id,
                        detail=status_detail(app, now), procedure=app.procedure_code or "")


# Asked once the result is handed over (and after a hand-over to staff ends); the answer, typed
# or tapped (``RATE`` + score), is read by handlers.feedback.
RATING_QUESTION = N_("How satisfied are you with the service? Reply with a number from 1 (very "
                     "unhappy) to 5 (very satisfied).")
RATE = "rate:"


def rating_buttons() -> list[Button]:
    """The scores 1 to 5, as buttons under the rating question."""
    return [Button(str(n), f"{RATE}{n}") for n in range(1, 6)]


CHANGE_HEADLINES = {
    ApplicationStatus.RECEIVED: N_("Your application has been received."),
    ApplicationStatus.PROCESSING: N_("Your application is being processed."),
    ApplicationStatus.SUPPLEMENT_REQUIRED: N_("The office needs more documents for your "
                                              "application."),
    ApplicationStatus.RESULT_READY: N_("The result of your application is ready."),
    ApplicationStatus.RETURNED: N_("The result of your application has been handed over. "
                                   "Thank you."),
    ApplicationStatus.REJECTED: N_("Your application has been refused."),
    ApplicationStatus.WITHDRAWN: N_("Your application has been withdrawn."),
}


def change_message(app: Application, status: ApplicationStatus, lang: Lang, *,
                   request: str = "") -> str:
    """The notification a follower receives when the application's status changes;
    ``request`` is what staff asked for with a supplement (its deadline is the
    application's ``supplement_due_at``)."""
    t = Text(lang)
    lines = [t("Update on your application:"), t(CHANGE_HEADLINES[status]),
             status_text(app.model_copy(update={"status": status}), t, request=request)]
    if status is ApplicationStatus.SUPPLEMENT_REQUIRED and app.supplement_due_at is not None:
        lines.append(t("Please bring them by {date}.",
                       date=t.date(app.supplement_due_at.astimezone(TZ))))
    if status is ApplicationStatus.RETURNED:  # the answer is read by handlers.feedback
        lines.append(t(RATING_QUESTION))
    return "\n".join(lines)
