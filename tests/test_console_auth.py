"""The staff console's doors: signing in and out, sessions, CSRF, roles, communes, throttling,
and the ``staff`` commands that make the accounts (SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.console import LOGIN_COOKIE, SESSION_COOKIE
from bot.settings import Settings
from bot.web import create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from storage import applications as repo
from storage import staff
from storage.db import session_scope
from storage.models import AuditEntry
from storage.staff import Role
from tests.conftest import deployment
from tests.samples import T0, record

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "mot-cua-hat-mon-2026"
NOVEMBER = "/console/?from=2026-11-01&to=2026-11-30"
SETTINGS = Settings(limit_address="1000/minute", secret_key="test-secret", refusal_delay=0)
FORGED = "Biểu mẫu đã hết hạn hoặc không được gửi từ trang cán bộ"
WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."


class Browser:
    """One browser with its own cookies, talking to the test server."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.session = ClientSession(cookie_jar=CookieJar(unsafe=True))

    async def get(self, path: str) -> ClientResponse:
        return await self.session.get(self.client.make_url(path), allow_redirects=False)

    async def post(self, path: str, data: dict[str, str]) -> ClientResponse:
        return await self.session.post(self.client.make_url(path), data=data,
                                       allow_redirects=False)

    async def csrf(self, path: str) -> str:
        """The CSRF token of the forms on the page at ``path``."""
        page = await self.get(path)
        assert page.status == 200, page.status
        found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert found is not None
        return found[1]

    async def sign_in(self, login: str, password: str = PASSWORD) -> ClientResponse:
        token = await self.csrf("/console/login")
        return await self.post("/console/login",
                               {"login": login, "password": password, "csrf": token})

    def session_token(self) -> str:
        return next((c.value for c in self.session.cookie_jar if c.key == SESSION_COOKIE), "")


@pytest.fixture
async def client(assistant: Assistant, office: Office, phuc_tho: Office
                 ) -> AsyncIterator[TestClient[Any, Any]]:
    """The console of a deployment serving Hát Môn and Phúc Thọ."""
    async with TestClient(TestServer(deployment(assistant, office, phuc_tho,
                                                settings=SETTINGS))) as c:
        yield c


@pytest.fixture
async def browser(client: TestClient[Any, Any]) -> AsyncIterator[Callable[[], Browser]]:
    opened: list[Browser] = []

    def new() -> Browser:
        opened.append(Browser(client))
        return opened[-1]

    yield new
    for one in opened:
        await one.session.close()


async def add_account(office: Office, login: str, role: Role = "officer", *,
                      commune_id: int | None = None, password: str = PASSWORD) -> None:
    async with session_scope(office.sessions) as session:
        await staff.create_account(session, commune_id=commune_id or office.commune_id,
                                   login=login, display_name=f"Cán bộ {login}", role=role,
                                   password=password, now=T0)


async def audited(office: Office, action: str) -> list[AuditEntry]:
    async with office.sessions() as session:
        return list((await session.exec(
            select(AuditEntry).where(AuditEntry.action == action))).all())


async def test_staff_member_signs_in_and_sees_the_overview(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an", "admin")
    chrome = browser()
    signed_in = await chrome.sign_in("An")  # the login name's case does not matter
    assert (signed_in.status, signed_in.headers["Location"]) == (303, "/console/")
    cookie = next(h for h in signed_in.headers.getall("Set-Cookie")
                  if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
    page = await chrome.get(NOVEMBER)
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "style-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert '<html lang="vi">' in html and "Tổng quan" in html
    assert "Đang đăng nhập: Cán bộ an" in html
    assert re.search(r"<dt>Tiếp nhận</dt><dd>1</dd>", html)
    assert "Hồ sơ theo thời gian" in html  # the chart (task CF; no per-procedure table now)
    english = await (await chrome.get(NOVEMBER + "&lang=en")).text()
    assert '<html lang="en">' in english and re.search(r"<dt>Received</dt><dd>1</dd>", english)
    assert [e.actor for e in await audited(office, "console.login")] == ["staff:an"]


async def test_cookie_is_secure_behind_https(assistant: Assistant, office: Office) -> None:
    await add_account(office, "an")
    https = Settings(limit_address="1000/minute", secret_key="test-secret",
                     public_base_url="https://motcua.hatmon.example")
    async with TestClient(TestServer(create_app(assistant, office, settings=https))) as client:
        chrome = Browser(client)
        try:
            form = await chrome.get("/console/login")
            token = await chrome.csrf("/console/login")
            # A Secure cookie is not sent back over this test's plain HTTP: send it by hand.
            signed_in = await chrome.session.post(
                client.make_url("/console/login"), allow_redirects=False,
                data={"login": "an", "password": PASSWORD, "csrf": token},
                cookies={LOGIN_COOKIE: token})
        finally:
            await chrome.session.close()
    assert "Secure" in form.headers["Set-Cookie"]
    assert signed_in.status == 303
    assert any(h.startswith(SESSION_COOKIE) and "Secure" in h
               for h in signed_in.headers.getall("Set-Cookie"))


async def test_wrong_password_and_unknown_login_are_refused_alike(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an")
    chrome = browser()
    for login, password in (("an", "not-the-password"), ("nobody", PASSWORD)):
        refused = await chrome.sign_in(login, password)
        assert refused.status == 401
        assert WRONG in await refused.text()
        assert not chrome.session_token()
    assert (await chrome.get("/console/")).headers["Location"] == "/console/login"
    assert len(await audited(office, "console.login_refused")) == 1  # the known account's


async def test_disabled_account_is_refused_and_its_sessions_end(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    async with session_scope(office.sessions) as session:
        account = await staff.account_by_login(session, "an")
        assert account is not None
        await staff.disable(session, account, now=dt.datetime.now(dt.UTC))
    assert (await chrome.get("/console/")).status == 303
    refused = await browser().sign_in("an")
    assert refused.status == 401 and WRONG in await refused.text()


async def test_missing_and_forged_csrf_tokens_are_refused(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    for data in ({}, {"csrf": "forged"}, {"csrf": "ĐỐ"}):
        refused = await chrome.post("/console/logout", data)
        assert refused.status == 403
        assert FORGED in await refused.text()
    assert (await chrome.get("/console/")).status == 200  # still signed in
    # The sign-in form has its own token, bound to the browser that fetched the form.
    no_token = await browser().post("/console/login", {"login": "an", "password": PASSWORD})
    assert no_token.status == 403 and FORGED in await no_token.text()
    stolen = await browser().csrf("/console/login")  # another browser's form token
    forged = await browser().post("/console/login",
                                  {"login": "an", "password": PASSWORD, "csrf": stolen})
    assert forged.status == 403
    token = await chrome.csrf("/console/")
    signed_out = await chrome.post("/console/logout", {"csrf": token})
    assert (signed_out.status, signed_out.headers["Location"]) == (303, "/console/login")
    assert (await chrome.get("/console/")).status == 303


async def test_officer_cannot_open_the_admin_page(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an", "admin")
    await add_account(office, "binh", "officer")
    officer = browser()
    assert (await officer.sign_in("binh")).status == 303
    refused = await officer.get("/console/staff")
    assert refused.status == 403
    assert "Bạn không có quyền mở trang này." in await refused.text()
    assert "/console/staff" not in await (await officer.get("/console/")).text()
    admin = browser()
    assert (await admin.sign_in("an")).status == 303
    listing = await admin.get("/console/staff")
    assert listing.status == 200
    html = await listing.text()
    assert "Cán bộ binh" in html and "Quản trị" in html


async def test_pages_without_a_session_send_to_the_sign_in_page(
        browser: Callable[[], Browser]) -> None:
    chrome = browser()
    for path in ("/console/", "/console/staff", NOVEMBER):
        response = await chrome.get(path)
        assert (response.status, response.headers["Location"]) == (303, "/console/login")
    chrome.session.cookie_jar.update_cookies({SESSION_COOKIE: "guessed-token"})
    assert (await chrome.get("/console/")).headers["Location"] == "/console/login"
    posted = await chrome.post("/console/logout-all", {"csrf": "x"})
    assert (posted.status, posted.headers["Location"]) == (303, "/console/login")
    assert (await chrome.get("/console")).headers["Location"] == "/console/"


async def test_staff_see_only_their_own_communes_figures_and_accounts(
        office: Office, browser: Callable[[], Browser]) -> None:
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
        await repo.upsert_applications(session, commune_id=other, actor="test", now=T0, records=[
            record("PHUCTHO-0001", procedure_name="Thủ tục chỉ có ở Phúc Thọ"),
            record("PHUCTHO-0002", procedure_name="Thủ tục chỉ có ở Phúc Thọ")])
    await add_account(office, "an", "admin")
    await add_account(office, "son", "admin", commune_id=other)
    hat_mon, neighbour = browser(), browser()
    assert (await hat_mon.sign_in("an")).status == 303
    assert (await neighbour.sign_in("son")).status == 303
    mine = await (await hat_mon.get(NOVEMBER)).text()
    theirs = await (await neighbour.get(NOVEMBER)).text()
    assert re.search(r"<dt>Tiếp nhận</dt><dd>1</dd>", mine) and "Phúc Thọ" not in mine
    assert re.search(r"<dt>Tiếp nhận</dt><dd>2</dd>", theirs)
    assert "Thủ tục đăng ký khai sinh" not in theirs
    accounts = await (await neighbour.get("/console/staff")).text()
    assert "Cán bộ son" in accounts and "Cán bộ an" not in accounts


async def test_repeated_failures_are_throttled(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an")
    await add_account(office, "binh")
    chrome = browser()
    for _ in range(5):
        assert (await chrome.sign_in("an", "guess-guess-guess")).status == 401
    refused = await chrome.sign_in("an")  # even the right password, for now
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 800
    assert "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 15 phút." in await refused.text()
    assert not chrome.session_token()
    assert (await browser().sign_in("binh")).status == 303  # another name, same address
    for n in range(15):  # 20 failures from this address in all
        assert (await chrome.sign_in(f"guess{n}", "guess-guess-guess")).status == 401
    assert (await browser().sign_in("binh")).status == 429


async def test_sign_out_everywhere_ends_the_other_sessions(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an")
    await add_account(office, "binh")
    office_pc, phone, colleague = browser(), browser(), browser()
    for one, login in ((office_pc, "an"), (phone, "an"), (colleague, "binh")):
        assert (await one.sign_in(login)).status == 303
    token = await phone.csrf("/console/")
    done = await phone.post("/console/logout-all", {"csrf": token})
    assert (done.status, done.headers["Location"]) == (303, "/console/login")
    assert (await office_pc.get("/console/")).status == 303
    assert (await phone.get("/console/")).status == 303
    assert (await colleague.get("/console/")).status == 200  # another account: untouched
    entries = await audited(office, "console.logout_all")
    assert [(e.actor, e.detail) for e in entries] == [("staff:an", "2 sessions")]


def run_cli(database_url: str, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MOTCUA_COMMUNE": "hat-mon",
           "MOTCUA_STAFF_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "bot", "staff", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_cli_creates_an_account_whose_password_works(
        database_url: str, office: Office, browser: Callable[[], Browser]) -> None:
    async def cli(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_cli, database_url, *args, password=password)

    short = await cli("create", "chi", "--name", "Trần Thị Chi", password="ngan")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    made = await cli("create", "chi", "--name", "Trần Thị Chi", "--role", "admin",
                     password=PASSWORD)
    assert made.returncode == 0, made.stderr
    chrome = browser()
    assert (await chrome.sign_in("chi")).status == 303
    assert "Đang đăng nhập: Trần Thị Chi" in await (await chrome.get("/console/")).text()
    assert (await chrome.get("/console/staff")).status == 200  # an admin
    reset = await cli("reset-password", "chi", password="mat-khau-moi-2026")
    assert reset.returncode == 0, reset.stderr
    assert (await chrome.get("/console/")).status == 303  # signed out everywhere
    assert (await browser().sign_in("chi")).status == 401
    assert (await browser().sign_in("chi", "mat-khau-moi-2026")).status == 303
    listed = await cli("list")
    assert re.search(r"chi\s+admin\s+active\s+Trần Thị Chi", listed.stdout)
    actions = [e.action for e in await audited(office, "staff.create")]
    actions += [e.action for e in await audited(office, "staff.reset-password")]
    actions += [e.action for e in await audited(office, "staff.list")]
    assert actions == ["staff.create", "staff.reset-password", "staff.list"]
