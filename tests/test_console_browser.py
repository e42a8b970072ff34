"""The staff console in a real browser: the server as deployed (``python -m bot serve``) on a
fresh SQLite and a fresh PostgreSQL database, headless Chromium at a phone's and an office
screen's width.

Each flow is a page's main task done as an officer does it: sign in, change an application's
status, answer a hand-over, send an announcement, teach the assistant a missed question,
answer a citizen's report. What it needs is made through public means only: the ``staff`` and
``apikey`` commands, the REST API and the web chat. A browser console error or a page error
fails the test; each page is photographed at 360×740 and 1366×768 under ``SHOTS``.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    ViewportSize,
    expect,
)

from bot.web import SESSION_HEADER
from knowledge.i18n import Text
from tests.browser import CHROMIUM_FLAGS, ROOT, serve
from tests.browser import chromium as chromium  # the fixtures
from tests.browser import playwright as playwright
from tests.conftest import POSTGRES, admin
from tests.test_console_auth import PASSWORD, WRONG

SHOTS = Path("/tmp/console-shots")
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1366, "height": 768}
LOGIN, NAME = "lan", "Nguyễn Thị Lan"
T = Text("vi")  # the console's language by default
BIRTH = "1.001193"  # Làm giấy khai sinh
MISSED = "giấy phép nuôi chim yến"  # declined today: no procedure of the commune names it
BUILDING_PERMIT = "1.013225"  # a swiftlet house is a building: it needs a building permit
FEEDBACK_PAGE = ROOT / "bot" / "console_feedback.py"
expect.set_options(timeout=15_000)


def _in_thread(work: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to its end on its own loop (playwright's sync API holds this
    thread's)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(work)
        except BaseException as exc:  # handed to the caller
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(kind, URL) of an empty database, dropped afterwards."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path_factory.mktemp('console') / 'm.sqlite3'}"
        return
    name = f"motcua_console_browser_{uuid.uuid4().hex[:8]}"
    try:
        _in_thread(admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES} ({exc})")
    try:
        yield "postgresql", f"{POSTGRES}/{name}"
    finally:
        _in_thread(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Site:
    """The running server, its integration key and where its screenshots go."""

    base: str
    key: str
    shots: Path


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT,
                          env={**os.environ, **env, "MOTCUA_STAFF_PASSWORD": PASSWORD},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def site(database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The server on ``database``, with an admin account made by the ``staff`` command before
    it starts (an active account is what makes the console a staff channel for hand-overs)."""
    kind, url = database
    env = {"DATABASE_URL": url, "MOTCUA_COMMUNE": "hat-mon", "TELEGRAM_BOT_TOKEN": "",
           "MOTCUA_SECRET_KEY": "console-browser-test",
           # Many requests from one address in a minute: not what these tests are about.
           "MOTCUA_LIMIT_ADDRESS": "1000/minute", "MOTCUA_LIMIT_CHAT_ADDRESS": "1000/minute",
           "MOTCUA_LIMIT_CHAT_USER": "1000/minute"}
    _cli(env, "staff", "create", LOGIN, "--name", NAME, "--role", "admin")
    key = _cli(env, "apikey", "create", "mot-cua-tinh").strip()
    shots = SHOTS / kind
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with serve(tmp_path_factory.mktemp(f"console-{kind}") / "server.log", env) as base:
        yield Site(base, key, shots)


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: str) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium, headless=True,
                                          args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


@dataclass
class Tab:
    """A page in its own browser context, remembering the console errors it saw."""

    page: Page
    shots: Path
    tolerated: str = ""  # a URL whose failure is a known, reported problem of another page
    errors: list[str] = field(default_factory=list)

    def heard(self, message: ConsoleMessage) -> None:
        where = message.location.get("url") or self.page.url
        if message.type == "error" and not (self.tolerated and where == self.tolerated):
            self.errors.append(f"{where}: {message.text}")

    def clean(self) -> None:
        """No console error and no page error so far."""
        assert self.errors == [], self.errors

    def shoot(self, name: str) -> None:
        """Photograph the page at a phone's and an office screen's width; the phone's
        shows no page-wide horizontal scrolling."""
        self.clean()
        page = self.page
        page.set_viewport_size(PHONE)
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=self.shots / f"{name}-phone.png", full_page=True)
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=self.shots / f"{name}-desktop.png", full_page=True)
        assert width <= PHONE["width"], f"{name}: {width} px wide on a 360 px phone"


@pytest.fixture
def tabs(request: pytest.FixtureRequest, browser: Browser) -> Iterator[list[Tab]]:
    """The test's tabs; at its end (when it passed so far) none saw an error."""
    opened: list[Tab] = []
    failed = request.session.testsfailed
    yield opened
    for tab in opened:
        tab.page.context.close()
    if request.session.testsfailed == failed:
        for tab in opened:
            tab.clean()


def open_tab(browser: Browser, site: Site, tabs: list[Tab], *, phone: bool = False) -> Tab:
    """A tab with its own cookies: the console at an office screen's size, or the citizens'
    web chat on a phone."""
    context = browser.new_context(viewport=PHONE if phone else DESKTOP, locale="vi-VN",
                                  base_url=site.base)
    context.set_default_timeout(20_000)
    tab = Tab(context.new_page(), site.shots, tolerated="")
    tab.page.on("console", tab.heard)
    tab.page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
    tabs.append(tab)
    return tab


def nav(page: Page, label: str) -> None:
    """Follow a link of the console's navigation bar."""
    page.get_by_role("navigation", name=T("Staff console")).get_by_role(
        "link", name=label, exact=True).click()


def sign_in(browser: Browser, site: Site, tabs: list[Tab]) -> Tab:
    """A tab of the admin, signed in through the form, on the overview."""
    tab = open_tab(browser, site, tabs)
    page = tab.page
    page.goto("/console/login")
    page.get_by_label(T("Login name")).fill(LOGIN)
    page.get_by_label(T("Password")).fill(PASSWORD)
    page.get_by_role("button", name=T("Sign in")).click()
    expect(page.get_by_role("heading", level=1, name=T("Overview"))).to_be_visible()
    return tab


class Citizen:
    """A web chat visitor talking to the server's chat API, as the chat page does."""

    def __init__(self, site: Site) -> None:
        self.base = site.base
        self.session = ""

    def _call(self, path: str, body: dict[str, str] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.session:
            headers[SESSION_HEADER] = self.session
        request = urllib.request.Request(
            self.base + path, headers=headers, method="POST" if body is not None else "GET",
            data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(request, timeout=20) as response:
            answer: dict[str, Any] = json.loads(response.read())
        self.session = answer.get("session", self.session)
        return answer

    def say(self, text: str = "", payload: str = "") -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = self._call(
            "/api/chat", {"text": text, "payload": payload})["replies"]
        return replies

    def inbox(self) -> list[str]:
        """What waits for this visitor (staff replies, status changes, announcements)."""
        return [r["text"] for r in self._call("/api/chat/inbox")["replies"]]


def api(site: Site, method: str, path: str, body: object) -> dict[str, Any]:
    """The REST API, as the province's one-stop system calls it."""
    request = urllib.request.Request(
        site.base + path, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {site.key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def test_sign_in_and_a_wrong_password_is_refused(browser: Browser, site: Site,
                                                 tabs: list[Tab]) -> None:
    tab = open_tab(browser, site, tabs)
    page = tab.page
    page.goto("/console/applications")  # no session: the sign-in form
    expect(page).to_have_url(f"{site.base}/console/login")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    tab.shoot("login")

    page.get_by_label(T("Login name")).fill(LOGIN)
    page.get_by_label(T("Password")).fill("not-the-password-2026")
    with page.expect_response(f"{site.base}/console/login") as refused:
        page.get_by_role("button", name=T("Sign in")).click()
    assert refused.value.status == 401
    expect(page.get_by_role("alert")).to_have_text(WRONG)
    expect(page.get_by_label(T("Login name"))).to_have_value(LOGIN)  # kept, to try again
    # The browser reports the refused page's 401 on its console: that one is expected.
    assert len(tab.errors) == 1 and "401" in tab.errors[0], tab.errors
    tab.errors.clear()
    tab.shoot("login-refused")

    page.get_by_label(T("Password")).fill(PASSWORD)
    page.get_by_role("button", name=T("Sign in")).click()
    expect(page.get_by_role("heading", level=1, name=T("Overview"))).to_be_visible()
    expect(page.get_by_text(T("Signed in as {name}", name=NAME))).to_be_visible()
    tab.shoot("overview")

    page.get_by_role("button", name=T("Sign out"), exact=True).click()
    expect(page).to_have_url(f"{site.base}/console/login")
    page.goto("/console/")
    expect(page).to_have_url(f"{site.base}/console/login")  # the session has ended


def test_change_an_applications_status(browser: Browser, site: Site, tabs: list[Tab]) -> None:
    code, phone = "000.00.19.H26-261204-0001", "0912345678"
    made = api(site, "POST", "/api/v1/applications", {
        "receipt_code": code, "procedure_code": BIRTH, "applicant_name": "Trần Văn Bình",
        "phone": phone, "channel": "Trực tuyến", "received_at": "2026-12-04T09:15:00+07:00",
        "status": "Đang xử lý"})
    assert made["created"] == 1
    citizen = Citizen(site)  # follows the application in the web chat
    citizen.say(code)
    [status] = citizen.say(phone)
    follow = next(b["payload"] for b in status["buttons"]
                  if b["title"] == T("Follow this application"))
    citizen.say(payload=follow)

    tab = sign_in(browser, site, tabs)
    page = tab.page
    nav(page, T("Applications"))
    page.get_by_label(T("Receipt code, applicant's name or phone number")).fill("261204-0001")
    page.get_by_role("button", name=T("Search")).click()
    expect(page.get_by_role("cell", name="Trần Văn Bình")).to_be_visible()
    tab.shoot("status-1-search")

    page.get_by_role("link", name=code).click()
    expect(page.get_by_role("heading", level=1, name=T("Application {code}", code=code))
           ).to_be_visible()
    tab.shoot("status-2-application")
    ready = T("result ready for collection")
    page.get_by_label(T("New status")).select_option(label=ready)
    page.get_by_role("button", name=T("Preview the notification")).click()
    expect(page.get_by_text(T("{count} followers will receive this message:", count=1))
           ).to_be_visible()
    message = page.locator("pre").inner_text()
    assert code in message and ready in message
    tab.shoot("status-3-preview")

    page.get_by_role("button", name=T("Confirm")).click()
    expect(page.get_by_role("status")).to_have_text(
        T("The status was saved; followers will be notified."))
    expect(page.locator(".ap-facts div", has_text=T("Status")).locator("dd")).to_have_text(ready)
    expect(page.locator("table tbody tr").last).to_contain_text(f"staff:{LOGIN}")
    tab.shoot("status-4-saved")
    [delivered] = citizen.inbox()
    assert delivered == message  # what the preview showed is what the citizen got


def test_answer_a_hand_over(browser: Browser, site: Site, tabs: list[Tab]) -> None:
    citizen = open_tab(browser, site, tabs, phone=True)  # the web chat page on a phone
    chat = citizen.page
    chat.goto("/")
    expect(chat.locator(".msg.bot").first).to_contain_text("Xin chào")
    chat.get_by_label("Câu hỏi của bạn").fill("cho tôi gặp cán bộ")
    chat.keyboard.press("Enter")
    passed = T("I have passed your conversation to the staff of {commune}. They will reply "
               "here. Type \"kết thúc\" to go back to the assistant.").split("{commune}")[0]
    expect(chat.locator(".msg.bot").last).to_contain_text(passed)
    question = "Tôi nộp hồ sơ khai sinh cho con hôm qua, khi nào có kết quả ạ?"
    chat.get_by_label("Câu hỏi của bạn").fill(question)
    chat.keyboard.press("Enter")
    expect(chat.locator(".msg.me", has_text=question)).to_be_visible()

    tab = sign_in(browser, site, tabs)
    page = tab.page
    nav(page, T("Hand-over inbox"))
    expect(page.get_by_role("heading", level=1, name=T("Hand-over inbox"))).to_be_visible()
    expect(page.get_by_role("row", name="Web")).to_contain_text(question[:40])
    tab.shoot("handover-1-inbox")

    page.get_by_role("link", name=T("Open the conversation")).click()
    expect(page.locator(".inbox-citizen", has_text=question)).to_be_visible()
    tab.shoot("handover-2-conversation")
    answer = "Chào anh/chị, hồ sơ khai sinh được trả trong ngày làm việc tiếp theo."
    page.get_by_label(T("Your reply")).fill(answer)
    page.get_by_role("button", name=T("Send the reply")).click()
    expect(page.locator(".inbox-staff", has_text=answer)).to_contain_text(NAME)
    tab.shoot("handover-3-replied")

    # The chat page polls its inbox (/api/chat/inbox) every 5 s: the reply shows there.
    expect(chat.locator(".msg.bot", has_text=answer)).to_be_visible()
    citizen.shoot("handover-4-citizen")

    page.get_by_role("button", name=T("Give back to the assistant")).click()
    expect(page.get_by_text(T("No conversation is waiting for staff."))).to_be_visible()
    # Given back: the citizen is told (the page's next poll of its inbox).
    expect(chat.locator(".msg.bot", has_text=T("You are back with the assistant."))
           ).to_be_visible()


def test_send_a_broadcast(browser: Browser, site: Site, tabs: list[Tab]) -> None:
    citizen = Citizen(site)
    citizen.say("đăng ký nhận thông báo của xã")  # the only subscriber in this database
    text = "Thứ Bảy 12/12 xã tổ chức tiêm chủng tại trạm y tế, mời bà con đưa trẻ đến."

    tab = sign_in(browser, site, tabs)
    page = tab.page
    nav(page, T("Announcements"))
    page.get_by_role("link", name=T("Write an announcement")).click()
    page.get_by_label(T("Text of the announcement")).fill(text)
    expect(page.get_by_label(T("Everyone subscribed to announcements"))).to_be_checked()
    tab.shoot("broadcast-1-compose")
    page.get_by_role("button", name=T("Preview")).click()
    facts = page.locator(".bc-facts")
    expect(facts.locator("div", has_text=T("Recipients")).locator("dd")).to_have_text("1")
    expect(page.locator(".bc-preview")).to_contain_text(text)
    tab.shoot("broadcast-2-preview")

    page.get_by_role("button", name=T("Continue")).click()  # "now" is chosen by default
    expect(page.locator(".bc-confirm")).to_contain_text("1")
    tab.shoot("broadcast-3-confirm")
    page.get_by_role("button", name=T("Yes, send it")).click()
    expect(facts.locator("div", has_text=T("State")).locator("dd")).to_have_text(T("Sent out"))
    report = page.locator(".bc-report")
    expect(report.get_by_role("row", name="Web")).to_be_visible()
    expect(report.locator(".bc-total td").first).to_have_text("1")  # queued, in total
    tab.shoot("broadcast-4-report")

    [received] = citizen.inbox()
    assert text in received
    page.get_by_role("link", name=T("Back to the announcements")).click()
    expect(page.get_by_role("row", name=text[:30])).to_contain_text(T("Sent out"))
    tab.shoot("broadcast-5-list")


def test_fix_a_missed_question(browser: Browser, site: Site, tabs: list[Tab]) -> None:
    citizen = open_tab(browser, site, tabs, phone=True)
    chat = citizen.page
    chat.goto("/")
    expect(chat.locator(".msg.bot").first).to_contain_text("Xin chào")
    chat.get_by_label("Câu hỏi của bạn").fill(MISSED)
    chat.keyboard.press("Enter")
    expect(chat.locator(".msg.bot")).to_have_count(2)
    assert BUILDING_PERMIT not in chat.locator(".msg.bot").last.inner_text()  # declined

    tab = sign_in(browser, site, tabs)
    page = tab.page
    nav(page, T("Knowledge"))
    row = page.get_by_role("row", name=MISSED)
    expect(row).to_be_visible()
    tab.shoot("knowledge-1-missed")
    page.set_viewport_size(PHONE)  # taught from a phone: the form is on screen, not beside it
    for control in (row.get_by_label(T("This meant")),
                    row.get_by_role("button", name=T("Save as alias"))):
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    row.get_by_label(T("This meant")).fill(BUILDING_PERMIT)
    row.get_by_role("button", name=T("Save as alias")).click()
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_role("status")).to_have_text(
        T("Saved. The assistant answers with it from now on."))
    expect(page.locator(".kb-answer")).to_contain_text(f"(mã {BUILDING_PERMIT})")
    expect(page.get_by_text(T("No missed questions."))).to_be_visible()
    tab.shoot("knowledge-2-taught")

    chat.get_by_label("Câu hỏi của bạn").fill(MISSED)  # the next try, no restart
    chat.keyboard.press("Enter")
    expect(chat.locator(".msg.bot").nth(2)).to_contain_text(f"(mã {BUILDING_PERMIT})")
    citizen.shoot("knowledge-3-citizen")


@pytest.mark.skipif(not FEEDBACK_PAGE.exists(),
                    reason="the console's Feedback page (bot/console_feedback.py) is not built")
def test_answer_a_feedback_report(browser: Browser, site: Site, tabs: list[Tab]) -> None:
    citizen = Citizen(site)
    description = "Bảng hướng dẫn ở bộ phận một cửa đã cũ, chữ mờ không đọc được."
    for text in ("kiến nghị", "3", "bỏ qua"):  # the kind: 3, unclear guidance
        citizen.say(text)
    [filed] = citizen.say(description)
    number = filed["detail"]
    answer = "Xã đã thay bảng hướng dẫn mới. Cảm ơn bạn đã phản ánh."

    tab = sign_in(browser, site, tabs)
    page = tab.page
    nav(page, T("Citizens' feedback"))
    expect(page.get_by_role("row", name=number)).to_contain_text(T("Unclear guidance"))
    tab.shoot("feedback-1-list")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", level=1, name=T("Report {number}", number=number))
           ).to_be_visible()
    expect(page.locator(".fb-text")).to_have_text(description)  # staff see the description
    tab.shoot("feedback-2-report")

    page.get_by_label(T("Give it to")).select_option(label=f"{NAME} ({LOGIN})")
    page.get_by_role("button", name=T("Assign")).click()
    facts = page.locator(".fb-facts")
    expect(facts.locator("div", has_text=T("Assigned to")).locator("dd")).to_have_text(NAME)
    page.get_by_label(T("Answer to the citizen")).fill(answer)
    page.get_by_role("button", name=T("Send the answer")).click()
    expect(page.get_by_role("heading", name=T("Answer sent"))).to_be_visible()
    expect(facts.locator("div", has_text=T("Status")).locator("dd")).to_have_text(
        T("answered by the commune"), ignore_case=True)
    tab.shoot("feedback-3-answered")
    assert citizen.inbox() == [f"Trả lời phản ánh {number} của bạn:\n{answer}"]

    page.get_by_role("button", name=T("Close the report")).click()
    expect(page.get_by_text(T("This report is closed."))).to_be_visible()
    tab.shoot("feedback-4-closed")
