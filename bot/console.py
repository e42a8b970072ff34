"""The staff console under ``/console``: signing in and out, and the pages staff work in.

Pages are rendered on the server (Jinja2, ``bot/templates/console``), in Vietnamese or English.
A page handler is wrapped by ``staff_required``, which gives it the signed-in ``Staff``:
without a session the browser is sent to the sign-in page, an officer opening an admin page
is refused (403), and every POST must carry the session's CSRF token (403 otherwise). Pages
show only the data of ``Staff.commune_id``: one console serves every commune of the deployment,
each account working in its own. A province account (role ``province``) opens only the
province's statistics (``bot.console_province``), never a commune's pages.

The session cookie holds a random token (only its hash is stored), is HttpOnly and
SameSite=Strict, limited to ``/console``, and Secure over HTTPS. Failed sign-ins are counted
per login name and per client address (``bot.limits``); past the limit they get 429.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from limits import RateLimitItem

from bot.api import OFFICE, Handler
from bot.communes import COMMUNES, Served
from bot.limits import Limiter, client_address, parse_limit
from bot.settings import Settings
from knowledge.i18n import DEFAULT_LANG, N_, Lang, Text
from knowledge.workdays import TZ
from storage import staff
from storage.db import session_scope
from storage.domain import within_bounds
from storage.models import StaffAccount
from storage.staff import Role

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates" / "console"
PREFIX = "/console"
SESSION_COOKIE = "motcua_console"
LOGIN_COOKIE = "motcua_console_login"  # the sign-in form's CSRF token (no session yet)
LANG_COOKIE = "motcua_console_lang"
FAILURES_PER_LOGIN = "5 per 15 minutes"
FAILURES_PER_ADDRESS = "20 per 15 minutes"
FORGED = N_("This form has expired or did not come from this console. Reload the page and "
            "try again.")


@dataclass(frozen=True)
class Console:
    """What the console's handlers share."""

    settings: Settings
    limiter: Limiter
    templates: Environment
    per_login: RateLimitItem
    per_address: RateLimitItem


CONSOLE = web.AppKey("console", Console)


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member a page works for."""

    account: StaffAccount
    token: str  # the session cookie's value
    csrf: str  # the token every form of this session carries
    served: Served  # the account's commune (the province officer's: where it was created)

    @property
    def commune_id(self) -> int:
        """The commune whose data this staff member may see."""
        return self.account.commune_id

    @property
    def account_id(self) -> int:
        """The signed-in account's id."""
        assert self.account.id is not None, "a signed-in account is saved"
        return self.account.id

    @property
    def actor(self) -> str:
        """How the audit log names this staff member."""
        return f"staff:{self.account.login}"


Page = Callable[[web.Request, Staff], Awaitable[web.StreamResponse]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def page_language(request: web.Request) -> Lang:
    """``?lang=``, else the language chosen before (cookie), else the browser's
    ``Accept-Language`` (English only when preferred over Vietnamese)."""
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in ("vi", "en"):
        return "en" if chosen == "en" else "vi"
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in ("vi", "en"):
            return "en" if tag == "en" else "vi"
    return DEFAULT_LANG


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[CONSOLE].settings.public_base_url.startswith(
        "https://")


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str,
                value: str) -> None:
    response.set_cookie(name, value, path=PREFIX, httponly=True, samesite="Strict",
                        secure=_secure(request))


def render(request: web.Request, template: str, *, status: int = 200,
           staff_member: Staff | None = None, **context: Any) -> web.Response:
    """A console page in the request's language (never cached: it can hold personal data)."""
    lang = page_language(request)
    html = request.app[CONSOLE].templates.get_template(template).render(
        t=Text(lang), lang=lang, staff=staff_member, **context)
    response = web.Response(text=html, status=status, content_type="text/html",
                            headers={"Cache-Control": "no-store"})
    if request.query.get("lang") in ("vi", "en"):
        _set_cookie(request, response, LANG_COOKIE, request.query["lang"])
    return response


def refuse(request: web.Request, status: int, message: str, *,
           staff_member: Staff | None = None, **values: object) -> web.Response:
    """The page explaining a refusal; ``message`` is a catalog id."""
    text = Text(page_language(request))(message, **values)
    return render(request, "refused.html", status=status, staff_member=staff_member,
                  message=text)


def redirect(location: str) -> web.Response:
    """See other page (after a POST, the browser GETs ``location``)."""
    return web.Response(status=303, headers={"Location": location})


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def _field(request: web.Request, name: str) -> str:
    value = (await request.post()).get(name, "")
    return value if isinstance(value, str) else ""


def staff_required(role: Role | None = None, *, province: bool = False
                   ) -> Callable[[Page], Handler]:
    """Wrap a page so it runs only for a signed-in staff member of a commune this server
    serves (of ``role``, when given; else a commune's admin or officer, and a province
    account too when ``province``), and only with the session's CSRF token on a POST."""
    def wrap(page: Page) -> Handler:
        @functools.wraps(page)
        async def handler(request: web.Request) -> web.StreamResponse:
            token = request.cookies.get(SESSION_COOKIE, "")
            async with session_scope(request.app[OFFICE].sessions) as session:
                found = await staff.signed_in(session, token, now=_now())
            if found is None:
                return redirect(f"{PREFIX}/login")
            home = request.app[COMMUNES].get(found.account.commune_id)
            if home is None:  # the commune is no longer in MOTCUA_COMMUNES
                return refuse(request, 403, N_("Your commune is not served here."))
            who = Staff(found.account, token, staff.csrf_token(token), home)
            if request.method == "POST" and not _same(await _field(request, "csrf"), who.csrf):
                return refuse(request, 403, FORGED, staff_member=who)
            officer = who.account.role == "province"
            if officer and role is None and not province and request.method == "GET":
                return redirect(f"{PREFIX}/province")  # the only page of theirs
            allowed = who.account.role == role if role is not None else province or not officer
            if not allowed:
                return refuse(request, 403, N_("You are not allowed to open this page."),
                              staff_member=who)
            return await page(request, who)
        return handler
    return wrap


async def login_page(request: web.Request) -> web.StreamResponse:
    """``GET /console/login``: the sign-in form (or the overview when signed in already)."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        if await staff.signed_in(session, request.cookies.get(SESSION_COOKIE, ""), now=_now()):
            return redirect(f"{PREFIX}/")
    return _login_form(request, status=200, error="")


def _login_form(request: web.Request, *, status: int, error: str,
                login: str = "") -> web.Response:
    csrf = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, csrf=csrf, error=error,
                      login=login)
    _set_cookie(request, response, LOGIN_COOKIE, csrf)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /console/login``: check the password, open a session, go to the overview."""
    console = request.app[CONSOLE]
    if not _same(await _field(request, "csrf"), request.cookies.get(LOGIN_COOKIE, "")):
        return refuse(request, 403, FORGED)
    name = staff.normalize_login(await _field(request, "login"))[:64]
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                             console.settings.trusted_proxies)
    counters = [(console.per_login, ("console-login", name)),
                (console.per_address, ("console-address", address))]
    for budget, key in counters:
        if wait := await console.limiter.waiting(budget, *key):
            response = refuse(request, 429, N_("Too many failed sign-ins. Try again in "
                                               "{minutes} minutes."), minutes=-(-wait // 60))
            response.headers["Retry-After"] = str(wait)
            return response
    now = _now()
    async with session_scope(request.app[OFFICE].sessions) as session:
        account, right = await staff.authenticate(session, login=name,
                                                  password=await _field(request, "password"))
        if account is not None:
            await staff.audit(session, commune_id=account.commune_id,
                              actor=f"staff:{account.login}",
                              action="console.login" if right else "console.login_refused",
                              detail="" if right else f"from {address}", at=now)
        token = await staff.open_session(session, account, now=now) \
            if account is not None and right else ""
    if not token:
        for budget, key in counters:
            await console.limiter.hit(budget, *key)
        log.info("console: a sign-in was refused")  # never the name: it may be a password
        return _login_form(request, status=401, login=name,
                           error=Text(page_language(request))(
                               "The login name or password is wrong."))
    response = redirect(f"{PREFIX}/")
    _set_cookie(request, response, SESSION_COOKIE, token)
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


def _signed_out(request: web.Request) -> web.Response:
    response = redirect(f"{PREFIX}/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@staff_required(province=True)
async def logout(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/logout``: end this browser's session."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        await staff.end_session(session, who.token)
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="console.logout", at=_now())
    return _signed_out(request)


@staff_required(province=True)
async def logout_all(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/logout-all``: end every session of this account, on every device."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        ended = await staff.end_all_sessions(session, account_id=who.account_id)
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="console.logout_all", detail=f"{ended} sessions", at=_now())
    return _signed_out(request)


def _day(text: str | None) -> dt.date | None:
    """A ``?from=``/``?to=`` date, or None when absent or not a date we keep."""
    try:
        day = dt.date.fromisoformat(text or "")
    except ValueError:
        return None
    return day if within_bounds(day) else None


def period(request: web.Request) -> tuple[dt.date, dt.date]:
    """The period a page shows: ``?from=`` to ``?to=``, by default this month so far."""
    today = _now().astimezone(TZ).date()
    first = _day(request.query.get("from")) or today.replace(day=1)
    last = _day(request.query.get("to")) or max(today, first)
    return (last, first) if last < first else (first, last)


FIGURES = (  # (key of Figures.report(), catalog id), in the order of the upward report
    ("received", N_("Received")), ("online", N_("Online")), ("in_person", N_("In person")),
    ("post", N_("By post")), ("settled_on_time", N_("Settled early or on time")),
    ("settled_late", N_("Settled late")),
    ("settled_without_due_date", N_("Settled, no due date")),
    ("in_progress", N_("In progress")), ("in_progress_overdue", N_("Overdue")),
    ("closed_without_result", N_("Refused or withdrawn")),
    ("average_processing_days", N_("Average processing days")),
)


@staff_required()
async def overview(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/``: the commune's report figures for a period (this month by default),
    over time (``step``: day, week or month), with what citizens asked, the questions left
    unanswered, the citizens' feedback and their satisfaction."""
    # Imported here: this function is the only user in this module.
    from markupsafe import Markup

    from bot.charts import Series, chart
    from handlers.feedback import KIND_LABELS
    from storage.feedback import KINDS
    from storage.overview import STEPS, Step
    from storage.overview import overview as overview_data
    step_labels = {"day": N_("By day"), "week": N_("By week"), "month": N_("By month")}
    now, lang = _now(), page_language(request)
    first, last = period(request)
    wanted = request.query.get("step", "")
    days = (last - first).days
    step: Step = next((s for s in STEPS if s == wanted),
                      "day" if days <= 62 else "week" if days <= 366 else "month")
    office = who.served.office
    async with session_scope(office.sessions) as session:
        try:
            data = await overview_data(session, who.commune_id, first, last, step=step, now=now)
        except ValueError:  # too many steps for the period: by month always fits
            step = "month"
            data = await overview_data(session, who.commune_id, first, last, step=step, now=now)
        officers = {f"staff:{a.login}": a.display_name
                    for a in await staff.list_accounts(session, commune_id=who.commune_id)}
    t = Text(lang)
    label = "%m/%Y" if step == "month" else "%d/%m"
    series_chart = chart(
        [f"{p.start:{label}}" for p in data.series],
        [Series(t("Received"), [p.received for p in data.series]),
         Series(t("Settled"), [p.settled for p in data.series])],
        title=t("Applications over time"), x_label=t(step_labels[step]),
        y_label=t("Applications"), lang=lang, chart_id="overview-series")
    report = data.figures.report()

    def name(code: str) -> str:
        found = office.kb.procedures.get(code)
        if found is None:
            return code
        return (found.short_name_en or found.name_en) if lang == "en" else (
            found.short_name or found.name)

    def scores(table: dict[str, dict[int, int]], label: Callable[[str], str]
               ) -> list[tuple[str, dict[int, int], int, float]]:
        rows = [(label(key), counts, sum(counts.values()),
                 sum(s * n for s, n in counts.items()) / sum(counts.values()))
                for key, counts in table.items() if sum(counts.values())]
        return sorted(rows, key=lambda row: (-row[2], row[0]))[:20]

    satisfaction, feedback = data.satisfaction, data.feedback
    return render(request, "overview.html", staff_member=who,
                  start=first, end=last, step=step, steps=[(s, step_labels[s]) for s in STEPS],
                  # Not the average processing time: too costly over a year of applications
                  # for a page (storage.overview leaves it out); `python -m bot stats` has it.
                  figures=[(label, report[key]) for key, label in FIGURES
                           if key != "average_processing_days"],
                  series_chart=Markup(series_chart),  # bot.charts escapes its text
                  top_procedures=[(p.code, name(p.code), p.conversations)
                                  for p in data.top_procedures],
                  frequent_unanswered=data.frequent_unanswered,
                  recent_unanswered=data.recent_unanswered,
                  satisfaction=satisfaction,
                  by_procedure_scores=scores(satisfaction.by_procedure,
                                             lambda code: f"{name(code)} ({code})" if code
                                             else t("No procedure"))
                  if satisfaction else [],
                  by_officer_scores=scores(satisfaction.by_officer,
                                           lambda key: officers.get(key, key) or t("Unknown"))
                  if satisfaction else [],
                  feedback=feedback,
                  feedback_kinds=[(KIND_LABELS[k], feedback.by_kind.get(k, 0))
                                  for k in KINDS if feedback.by_kind.get(k)]
                  if feedback else [],
                  feedback_procedures=sorted(
                      ((f"{name(code)} ({code})" if code else t("No procedure"), n)
                       for code, n in feedback.by_procedure.items()),
                      key=lambda row: (-row[1], row[0]))[:20] if feedback else [],
                  local=lambda at: at.astimezone(TZ))


@staff_required(role="admin")
async def accounts(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/staff`` (admins): the commune's staff accounts."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        found = await staff.list_accounts(session, commune_id=who.commune_id)
    return render(request, "staff.html", staff_member=who, accounts=found)


@staff_required()
async def my_account(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/me``: the signed-in staff member's account and linked Telegram."""
    return render(request, "me.html", staff_member=who, code="", expires=None)


@staff_required()
async def my_account_change(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/me``: show a one-time code that links a Telegram account, or unlink."""
    action = await _field(request, "action")
    now = _now()
    async with session_scope(request.app[OFFICE].sessions) as session:
        account = await session.get(StaffAccount, who.account_id)
        assert account is not None, "a signed-in account exists"
        if action == "unlink":
            await staff.unlink_telegram(session, account, now=now)
            await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                              action="staff.unlink_telegram", at=now)
            return redirect(f"{PREFIX}/me")
        code = await staff.new_link_code(session, account, now=now)
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="staff.link_code", at=now)
    bot = who.served.settings.telegram_bot_username
    return render(request, "me.html", staff_member=who, code=code, bot=bot,
                  expires=(now + staff.LINK_CODE_LIFETIME).astimezone(TZ))


async def to_overview(request: web.Request) -> web.StreamResponse:
    """``GET /console``: the overview lives at ``/console/``."""
    return redirect(f"{PREFIX}/")


def add_console_routes(app: web.Application, settings: Settings, limiter: Limiter) -> None:
    """Serve the console under ``/console`` (``app`` holds the office under ``OFFICE``)."""
    templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app[CONSOLE] = Console(settings, limiter, templates, parse_limit(FAILURES_PER_LOGIN),
                           parse_limit(FAILURES_PER_ADDRESS))
    app.router.add_get(PREFIX, to_overview)
    app.router.add_get(f"{PREFIX}/", overview)
    app.router.add_get(f"{PREFIX}/login", login_page)
    app.router.add_post(f"{PREFIX}/login", login)
    app.router.add_post(f"{PREFIX}/logout", logout)
    app.router.add_post(f"{PREFIX}/logout-all", logout_all)
    app.router.add_get(f"{PREFIX}/staff", accounts)
    app.router.add_get(f"{PREFIX}/me", my_account)
    app.router.add_post(f"{PREFIX}/me", my_account_change)
    from bot import console_applications  # here: that module imports this one
    console_applications.add_routes(app)
    from bot import console_knowledge  # here: that module imports this one
    console_knowledge.add_routes(app)
    from bot import console_inbox  # here: that module imports this one
    console_inbox.add_routes(app)
    from bot import console_broadcasts  # here: that module imports this one
    console_broadcasts.add_routes(app)
    from bot import console_feedback  # here: that module imports this one
    console_feedback.add_routes(app)
    from bot import console_province  # here: that module imports this one
    console_province.add_routes(app)
