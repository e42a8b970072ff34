"""The console's Applications pages: search, status change with the follower's message shown
first, import with a preview; communes, CSRF and sessions (SQLite and PostgreSQL)."""

import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any

from aiohttp import ClientResponse, FormData
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.runtime import create_api_key
from handlers.applications import Office
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import Application, Notification, StatusChange
from tests.samples import CODE, T0, record
from tests.test_console_auth import Browser, add_account, audited
from tests.test_console_auth import browser as browser  # the fixtures
from tests.test_console_auth import client as client

OTHER = "000.00.19.H26-251127-0002"  # Đặng Thị Ánh's application
FOREIGN = "000.00.19.H99-251127-0009"  # in another commune
NOTE = "Bản sao giấy chứng sinh có chứng thực"
CSV = ("Mã hồ sơ,Mã thủ tục,Người nộp,Số điện thoại,Hình thức nộp,Ngày tiếp nhận,Trạng thái\n"
       "000.00.19.H26-251201-0001,1.001193,Lê Văn Mới,0911000111,Trực tuyến,"
       "01/12/2026 09:00,Tiếp nhận\n"
       f"{CODE},1.001193,Nguyễn Văn A,0912345678,Trực tuyến,02/11/2026 08:30,Đang xử lý\n"
       "000.00.19.H26-251201-0003,1.001193,Trần Văn Sai,0911000333,Trực tuyến,"
       "31/02/2026 09:00,Tiếp nhận\n")


async def _add(office: Office, *records: repo.ApplicationRecord, commune_id: int | None = None
               ) -> dict[str, int]:
    """Store applications; their ids by receipt code."""
    async with session_scope(office.sessions) as session:
        commune = commune_id or office.commune_id
        await repo.upsert_applications(session, commune_id=commune, actor="test", now=T0,
                                       records=list(records))
        found = await repo.existing(session, commune_id=commune,
                                    codes=[r.receipt_code for r in records])
    return {code: app.id for code, app in found.items() if app.id is not None}


async def _ids(office: Office, *codes: str) -> dict[str, int]:
    async with office.sessions() as session:
        found = await repo.existing(session, commune_id=office.commune_id, codes=codes)
    return {code: app.id for code, app in found.items() if app.id is not None}


async def _signed_in(office: Office, browser: Callable[[], Browser]) -> Browser:
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    return chrome


async def _listed(chrome: Browser, query: str) -> list[str]:
    """The receipt codes a search lists."""
    page = await chrome.get(f"/console/applications?{query}")
    assert page.status == 200
    return re.findall(r'<a href="/console/applications/\d+">([^<]+)</a>', await page.text())


async def _status(office: Office, code: str) -> str:
    async with office.sessions() as session:
        app = (await repo.existing(session, commune_id=office.commune_id, codes=[code]))[code]
    return app.status


async def test_staff_find_applications_by_code_name_or_phone_and_filter_them(
        office: Office, browser: Callable[[], Browser]) -> None:
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
    await _add(office, record(OTHER, applicant_name="Đặng Thị Ánh", phone="0987654321",
                              status=ApplicationStatus.PROCESSING,
                              due_at=T0 + dt.timedelta(days=365)))
    await _add(office, record(FOREIGN, applicant_name="Nguyễn Văn A"), commune_id=other)
    chrome = await _signed_in(office, browser)
    page = await chrome.get("/console/applications")
    text = await page.text()
    assert "Hồ sơ" in text and 'href="/console/applications"' in text  # the nav link
    assert await _listed(chrome, "") == [OTHER, CODE]  # latest first; not the other commune's
    assert await _listed(chrome, "q=nguyen+van+a") == [CODE]  # no diacritics, any case
    assert await _listed(chrome, "q=%C4%90%E1%BA%B6NG+anh") == [OTHER]  # "ĐẶNG anh"
    assert await _listed(chrome, "q=0987+654") == [OTHER]  # part of the phone number
    assert await _listed(chrome, "q=%2B84%20987%20654%20321") == [OTHER]
    assert await _listed(chrome, "q=251127-0002") == [OTHER]  # part of the receipt code
    assert await _listed(chrome, f"q={CODE.lower()}") == [CODE]  # a whole code, any case
    assert await _listed(chrome, "q=xuan") == []
    assert await _listed(chrome, "status=processing") == [OTHER]
    assert await _listed(chrome, "procedure=1.001193&status=received") == [CODE]
    assert await _listed(chrome, "due_from=2027-10-01&due_to=2027-12-31") == [OTHER]
    # The sample was due on 3 November 2026: overdue now, unlike Ánh's (November 2027).
    overdue = await chrome.get("/console/applications?overdue=1")
    assert re.findall(r'applications/\d+">([^<]+)<', await overdue.text()) == [CODE]
    assert "quá hạn" in await overdue.text()
    empty = await chrome.get("/console/applications?q=xuan")
    assert "Không có hồ sơ nào khớp" in await empty.text()


async def test_status_change_shows_the_message_then_queues_it_as_the_api_would(
        office: Office, browser: Callable[[], Browser], client: TestClient[Any, Any]) -> None:
    ids = await _add(office, record(OTHER))
    ids.update(await _ids(office, CODE))
    async with session_scope(office.sessions) as session:
        for code, recipient in ((CODE, "console-follower"), (OTHER, "api-follower")):
            await repo.subscribe(session, commune_id=office.commune_id,
                                 application_id=ids[code], channel="telegram",
                                 recipient=recipient, lang="vi")
    chrome = await _signed_in(office, browser)
    page = await chrome.get(f"/console/applications/{ids[CODE]}")
    text = await page.text()
    assert re.search(r"<dt>Người theo dõi</dt><dd>1</dd>", text)
    assert "console-follower" not in text  # a count, never who
    offered = re.findall(r'<option value="([a-z_]+)"', text.split('id="new-status"')[1])
    assert offered == ["processing", "supplement_required", "rejected", "withdrawn"]
    assert 'name="supplement_due"' in text
    form = {"csrf": await chrome.csrf(f"/console/applications/{ids[CODE]}"),
            "status": "supplement_required", "note": NOTE, "supplement_due": "2026-11-20"}
    preview = await chrome.post(f"/console/applications/{ids[CODE]}/status",
                                {**form, "step": "preview"})
    assert preview.status == 200
    shown = html.unescape(re.findall(r"<pre[^>]*>(.*?)</pre>", await preview.text(), re.S)[0])
    assert NOTE in shown and "20 tháng 11, 2026" in shown
    assert await _status(office, CODE) == "received"  # nothing saved by the preview
    saved = await chrome.post(f"/console/applications/{ids[CODE]}/status",
                              {**form, "step": "confirm"})
    assert saved.status == 303
    assert saved.headers["Location"] == f"/console/applications/{ids[CODE]}?saved=" \
        "supplement_required"
    # The same change through the REST API, on the other application.
    key = await create_api_key(office, "mot-cua-tinh")
    api = await client.patch(f"/api/v1/applications/{OTHER}", headers={
        "Authorization": f"Bearer {key}"}, json={
        "status": "supplement_required", "note": NOTE,
        "supplement_due_at": "2026-11-20T17:00:00+07:00"})
    assert api.status == 200
    async with office.sessions() as session:
        queued = {n.recipient: n for n in (await session.exec(select(Notification))).all()}
        change = (await session.exec(select(StatusChange).where(
            StatusChange.application_id == ids[CODE]).order_by(col(StatusChange.id)))).all()[-1]
        app = await session.get(Application, ids[CODE])
    assert queued["console-follower"].text == shown
    assert queued["console-follower"].text == queued["api-follower"].text.replace(OTHER, CODE)
    assert queued["console-follower"].kind == "status"
    assert (change.status, change.changed_by, change.note) == (
        "supplement_required", "staff:an", NOTE)
    assert app is not None and app.supplement_due_at is not None
    entries = await audited(office, "application.status")
    assert [(e.actor, e.target) for e in entries] == [("staff:an", CODE)]
    after = await chrome.get(saved.headers["Location"])
    assert "Đã lưu trạng thái" in await after.text()


async def test_a_refused_transition_is_explained(office: Office,
                                                 browser: Callable[[], Browser]) -> None:
    ids = await _ids(office, CODE)
    chrome = await _signed_in(office, browser)
    token = await chrome.csrf(f"/console/applications/{ids[CODE]}")
    refused = await chrome.post(f"/console/applications/{ids[CODE]}/status", {
        "csrf": token, "status": "returned", "step": "confirm"})
    assert refused.status == 409
    text = html.unescape(await refused.text())
    assert "Hồ sơ đang ở trạng thái đã tiếp nhận không thể chuyển sang đã trả kết quả" in text
    assert "đang xử lý" in text  # what it may become instead
    assert await _status(office, CODE) == "received"


async def test_import_preview_changes_nothing_until_confirmed(
        office: Office, browser: Callable[[], Browser]) -> None:
    chrome = await _signed_in(office, browser)
    token = await chrome.csrf("/console/applications/import")

    async def upload(data: FormData) -> ClientResponse:
        return await chrome.session.post(chrome.client.make_url("/console/applications/import"),
                                         data=data, allow_redirects=False)

    form = FormData({"csrf": token, "step": "preview"})
    form.add_field("file", CSV.encode(), filename="xuat-thang-12.csv", content_type="text/csv")
    preview = await upload(form)
    assert preview.status == 200
    text = html.unescape(await preview.text())
    assert re.search(r"<dt>Hồ sơ mới</dt><dd>1</dd>", text)
    assert re.search(r"<dt>Đổi trạng thái</dt><dd>1</dd>", text)
    assert "000.00.19.H26-251201-0001" in text  # the new one, listed
    assert re.search(r'<td class="num">4</td><td>[^<]*31/02/2026', text)  # refused, and why
    async with office.sessions() as session:
        assert len((await session.exec(select(Application))).all()) == 1
    assert await _status(office, CODE) == "received"
    import_token = re.findall(r'name="token" value="([^"]+)"', text)[0]
    done = await chrome.post("/console/applications/import", {
        "csrf": token, "step": "import", "token": import_token, "skip_bad": "1"})
    assert done.status == 200
    assert "1 mới" in await done.text()
    assert await _status(office, CODE) == "processing"
    async with office.sessions() as session:
        codes = set((await session.exec(select(Application.receipt_code))).all())
    assert codes == {CODE, "000.00.19.H26-251201-0001"}
    entries = await audited(office, "applications.import")
    assert [(e.actor, e.target) for e in entries] == [("staff:an", "xuat-thang-12.csv")]
    again = await chrome.post("/console/applications/import", {
        "csrf": token, "step": "import", "token": import_token})
    assert again.status == 410  # imported once, then forgotten


async def test_another_communes_application_is_out_of_reach(
        office: Office, browser: Callable[[], Browser]) -> None:
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
    foreign = (await _add(office, record(FOREIGN), commune_id=other))[FOREIGN]
    chrome = await _signed_in(office, browser)
    assert (await chrome.get(f"/console/applications/{foreign}")).status == 404
    token = await chrome.csrf("/console/applications")
    moved = await chrome.post(f"/console/applications/{foreign}/status", {
        "csrf": token, "status": "processing", "step": "confirm"})
    assert moved.status == 404
    async with office.sessions() as session:
        app = await session.get(Application, foreign)
    assert app is not None and app.status == "received"
    assert await _listed(chrome, "q=H99") == []


async def test_posts_without_csrf_and_pages_without_a_session_are_refused(
        office: Office, browser: Callable[[], Browser]) -> None:
    ids = await _ids(office, CODE)
    stranger = browser()
    for path in ("/console/applications", f"/console/applications/{ids[CODE]}",
                 "/console/applications/import"):
        page = await stranger.get(path)
        assert (page.status, page.headers["Location"]) == (303, "/console/login")
    chrome = await _signed_in(office, browser)
    forged = await chrome.post(f"/console/applications/{ids[CODE]}/status", {
        "status": "processing", "step": "confirm"})
    assert forged.status == 403
    form = FormData({"step": "preview"})
    form.add_field("file", CSV.encode(), filename="x.csv", content_type="text/csv")
    upload = await chrome.session.post(chrome.client.make_url("/console/applications/import"),
                                       data=form, allow_redirects=False)
    assert upload.status == 403
    assert await _status(office, CODE) == "received"
