"""The web chat in a real browser: the server as deployed, headless Chromium on a phone screen.

Needs Debian's ``chromium`` (``.ci/run`` installs it); the ``playwright`` package drives it
through its bundled driver, with no browser download.
"""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import (
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
)

from tests.browser import CHROMIUM_FLAGS, serve
from tests.browser import chromium as chromium  # the fixtures
from tests.browser import playwright as playwright

PHONE: ViewportSize = {"width": 360, "height": 740}
SCREENSHOT = Path("/tmp/webchat-phone.png")
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m bot serve`` on a free port and a fresh SQLite database."""
    folder = tmp_path_factory.mktemp("webchat")
    env = {"DATABASE_URL": f"sqlite:///{folder / 'm.sqlite3'}", "TELEGRAM_BOT_TOKEN": "",
           # The commune's site of the widget test, on a port chosen later.
           "MOTCUA_EMBED_ORIGINS": "http://localhost:*", "MOTCUA_SECRET_KEY": "browser-test"}
    with serve(folder / "server.log", env) as base:
        yield base


@pytest.fixture
def context(playwright: Playwright, chromium: str, tmp_path: Path) -> Iterator[BrowserContext]:
    """A phone-sized headless Chromium with a fresh profile."""
    browser = playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
        locale="vi-VN")
    browser.set_default_timeout(20_000)
    yield browser
    browser.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.pages[0] if context.pages else context.new_page()


def _no_horizontal_scroll(page: Page) -> None:
    sizes = page.evaluate("""() => ({
        inner: window.innerWidth,
        page: document.documentElement.scrollWidth,
        log: document.getElementById("log").scrollWidth,
        logBox: document.getElementById("log").clientWidth})""")
    assert sizes["inner"] == PHONE["width"], sizes
    assert sizes["page"] <= PHONE["width"], sizes
    assert sizes["log"] <= sizes["logBox"], sizes


def _input_is_visible(page: Page) -> None:
    box = page.locator("#q").bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box


def test_phone_conversation(page: Page, server: str, tmp_path: Path) -> None:
    refused: list[str] = []  # what the page's Content-Security-Policy blocked
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.goto(server + "/")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    greeting = page.locator(".msg.bot").first
    expect(greeting).to_contain_text("Xin chào")
    expect(greeting.get_by_role("button", name="Thủ tục", exact=True)).to_be_visible()
    _input_is_visible(page)

    page.get_by_label("Câu hỏi của bạn").fill("làm giấy khai sinh cần gì")
    page.keyboard.press("Enter")
    answer = page.locator(".msg.bot", has_text="Giấy tờ cần chuẩn bị — Làm giấy khai sinh")
    expect(answer).to_be_visible()

    # A short follow-up is about the same procedure.
    page.get_by_label("Câu hỏi của bạn").fill("còn phí thì sao")
    page.keyboard.press("Enter")
    fee = page.locator(".msg.bot", has_text="Lệ phí — Làm giấy khai sinh (mã 1.001193)")
    expect(fee).to_be_visible()
    # A button under the answer opens another aspect, then the whole card.
    fee.get_by_role("button", name="Nơi nộp", exact=True).tap()
    online = page.locator(".msg.bot", has_text="Nơi nộp — Làm giấy khai sinh")
    expect(online).to_be_visible()
    link = online.locator("a[href^='https://']").first
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert link.get_attribute("href") == link.inner_text()
    online.get_by_role("button", name="Xem đầy đủ", exact=True).tap()
    expect(page.locator(".msg.bot", has_text="Thủ tục đăng ký khai sinh (mã 1.001193)")
           ).to_be_visible()

    greeting.get_by_role("button", name="Thủ tục", exact=True).tap()
    expect(page.locator("#q")).to_be_focused()
    fields = page.locator(".msg.bot", has_text="Chọn lĩnh vực")
    fields.get_by_role("button", name="Hộ tịch", exact=True).tap()
    procedures = page.locator(".msg.bot", has_text="Chọn thủ tục")
    expect(procedures.get_by_role("button", name="Làm giấy khai sinh", exact=True)
           ).to_be_visible()
    assert procedures.get_by_role("button").count() >= 5
    expect(page.locator("#error")).to_be_hidden()

    _no_horizontal_scroll(page)
    _input_is_visible(page)
    assert refused == []
    page.screenshot(path=tmp_path / "webchat-phone.png")
    page.screenshot(path=SCREENSHOT)


def test_keyboard_large_text_and_english(page: Page, server: str) -> None:
    page.goto(server + "/")
    expect(page.locator(".msg.bot").first).to_contain_text("Xin chào")
    bigger = page.get_by_role("button", name="Chữ lớn")
    bigger.focus()
    page.keyboard.press("Enter")
    expect(bigger).to_have_attribute("aria-pressed", "true")
    expect(page.locator("body")).to_have_class("big")
    _no_horizontal_scroll(page)

    # Keyboard only: a reply's button pressed with Enter hands the cursor back to the input.
    first_choice = page.locator(".choices button").first
    first_choice.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#q")).to_be_focused()
    expect(page.locator(".msg.bot", has_text="Chọn lĩnh vực")).to_be_visible()

    page.get_by_role("button", name="English").click()
    expect(page.locator(".msg.bot", has_text="The assistant now speaks English.")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Send")).to_be_visible()

    page.reload()  # large text and language are remembered
    expect(page.locator(".msg.bot").first).to_contain_text("Hello")
    expect(page.get_by_role("button", name="Large text")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"

    page.get_by_role("button", name="Tiếng Việt").click()
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_label("Câu hỏi của bạn")).to_be_visible()


def test_the_session_is_the_servers_and_survives_a_reload(page: Page, server: str) -> None:
    bodies: list[str] = []
    page.on("request", lambda r: bodies.append(r.post_data or "")
            if r.url.endswith("/api/chat") else None)
    page.goto(server + "/")
    page.get_by_label("Câu hỏi của bạn").fill("làm giấy khai sinh cần gì")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.bot", has_text="Giấy tờ cần chuẩn bị — Làm giấy khai sinh")
           ).to_be_visible()
    token = page.evaluate("localStorage.getItem('motcua-session')")
    assert token and token.startswith("web-")
    assert all('"user"' not in body for body in bodies)  # the page names no user id

    page.reload()  # the same conversation: a follow-up is about the same procedure
    page.get_by_label("Câu hỏi của bạn").fill("còn phí thì sao")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.bot", has_text="Lệ phí — Làm giấy khai sinh")).to_be_visible()
    assert page.evaluate("localStorage.getItem('motcua-session')") == token


def test_too_fast_says_how_long_to_wait(page: Page, server: str) -> None:
    page.goto(server + "/")
    expect(page.locator(".msg.bot").first).to_contain_text("Xin chào")
    page.route("**/api/chat", lambda route: route.fulfill(
        status=429, headers={"Retry-After": "7"}, json={"error": "too many requests"}))
    question = page.get_by_label("Câu hỏi của bạn")
    question.fill("lệ phí khai sinh")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("đợi 7 giây")
    expect(question).to_have_value("lệ phí khai sinh")  # given back, to send again


def test_server_text_is_never_markup(page: Page, server: str) -> None:
    reply = {"replies": [{"text": "<img src=x onerror=alert(1)> xem https://a.example/b.",
                          "buttons": [{"title": "<b>x</b>", "payload": "menu"}]}]}
    page.route("**/api/chat", lambda route: route.fulfill(json=reply))
    page.goto(server + "/")
    message = page.locator(".msg.bot").first
    expect(message).to_contain_text("<img src=x onerror=alert(1)>")
    assert message.locator("img").count() == 0
    expect(message.locator("a")).to_have_attribute("href", "https://a.example/b")
    expect(message.get_by_role("button", name="<b>x</b>")).to_be_visible()


def test_unreachable_server_shows_an_error(page: Page, server: str) -> None:
    page.route("**/api/chat", lambda route: route.abort())
    page.goto(server + "/")
    expect(page.get_by_role("alert")).to_contain_text("Không kết nối được máy chủ")
    question = page.get_by_label("Câu hỏi của bạn")
    question.fill("lệ phí khai sinh")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.me", has_text="lệ phí khai sinh")).to_have_count(1)
    expect(page.locator(".msg.wait")).to_have_count(0)
    expect(question).to_have_value("lệ phí khai sinh")  # given back, to send again
    expect(question).to_be_focused()

    page.unroute("**/api/chat")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.bot", has_text="khai sinh").last).to_be_visible()
    expect(page.get_by_role("alert")).to_be_hidden()


@pytest.fixture
def commune_site(server: str) -> Iterator[str]:
    """The commune's own website (another origin) embedding the widget."""
    html = ('<!doctype html><html lang="vi"><meta charset="utf-8"><title>UBND xã</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<body><h1>UBND xã</h1><a href="#">Tin tức</a>'
            f'<script src="{server}/static/widget.js" defer></script>').encode()

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_widget_on_a_commune_site(page: Page, server: str, commune_site: str) -> None:
    page.goto(commune_site)
    opener = page.get_by_role("button", name="Hỏi trợ lý")
    expect(opener).to_have_attribute("aria-expanded", "false")
    opener.click()
    dialog = page.get_by_role("dialog", name="Trợ lý thủ tục hành chính")
    expect(dialog).to_be_visible()
    chat = page.frame_locator("iframe[title='Trợ lý thủ tục hành chính']")
    expect(chat.locator(".msg.bot").first).to_contain_text("Xin chào")
    expect(chat.locator("#q")).to_be_focused()
    assert page.frames[1].url == server + "/"

    page.keyboard.press("Escape")  # pressed inside the chat, another origin
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    expect(opener).to_have_attribute("aria-expanded", "false")

    opener.press("Enter")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Đóng trợ lý").focus()
    focused = set()
    for _ in range(15):  # Tab goes through the chat and back to "Đóng", never out of the dialog
        page.keyboard.press("Tab")  # (focus crosses into and out of the iframe asynchronously)
        page.wait_for_function("document.activeElement?.id === 'motcua-widget'")
        focused.add(page.evaluate(
            "document.getElementById('motcua-widget').shadowRoot.activeElement.tagName"))
    assert focused == {"IFRAME", "BUTTON"}
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
