"""``GET /thu-tuc/{code}``: a procedure's card as a web page, where the notice-board QR codes
point; the text is the chat's full card, escaped, with a link to ask the web chat."""

from __future__ import annotations

import html
import re

from aiohttp import web

from knowledge.answer import Assistant
from knowledge.i18n import DEFAULT_LANG, LANGUAGES, Lang, Text
from knowledge.match import Aspect

PATH = "/thu-tuc/{code}"
STYLESHEET = "/static/thu-tuc.css"
CHAT_PAGE = "../"  # the commune's chat, from /thu-tuc/<code> and /c/<slug>/thu-tuc/<code>
# An address in the escaped text, without the punctuation that closes its sentence.
_ADDRESS = re.compile(r"https://[^\s<>&()]*[^\s<>&().,;:]")


def procedure_path(code: str) -> str:
    """The page's path for a procedure code ("1.001193" → "/thu-tuc/1.001193")."""
    return PATH.format(code=code)


def card_sections(assistant: Assistant, code: str, lang: Lang
                  ) -> tuple[str, dict[Aspect, tuple[str, str]], list[str]]:
    """The card the chat's "Xem đầy đủ" shows, in parts: title and summary, the sections by
    aspect (label, body), the notes and source."""
    return assistant.card_parts(code, lang)


def _text(value: str) -> str:
    """Escaped text with its https:// addresses as links."""
    escaped = html.escape(value)
    return _ADDRESS.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)


def _lines(value: str) -> str:
    return "".join(f"<p>{_text(line)}</p>" for line in value.split("\n") if line.strip())


def _page(lang: Lang, title: str, body: list[str]) -> str:
    return "\n".join([
        "<!doctype html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f'<link rel="stylesheet" href="{STYLESHEET}"></head>',
        "<body><main>", *body, "</main></body></html>",
    ])


def render_card(assistant: Assistant, code: str, lang: Lang) -> str:
    """The HTML page of one procedure's card."""
    t = Text(lang)
    commune = assistant.kb.commune.name
    head, sections, tail = card_sections(assistant, code, lang)
    title, _, summary = head.partition("\n")
    short = assistant.short_name(code, t)
    ask = f'<p><a class="ask" href="{CHAT_PAGE}">{html.escape(t("Ask the assistant"))}</a></p>'
    body = [f'<p class="commune">{html.escape(commune)}</p>',
            f"<h1>{html.escape(short)}</h1>",
            f'<p class="official">{_text(title)}</p>', _lines(summary), ask]
    for label, text in sections.values():
        if text:
            body.append(f"<section><h2>{html.escape(label)}</h2>{_lines(text)}</section>")
    body.append(f"<footer>{''.join(_lines(line) for line in tail)}</footer>")
    body.append(ask)
    return _page(lang, f"{short} — {commune}", body)


def render_missing(assistant: Assistant, code: str, lang: Lang) -> str:
    """The page for a code the knowledge base does not hold."""
    t = Text(lang)
    return _page(lang, t("Procedure not found"), [
        f'<p class="commune">{html.escape(assistant.kb.commune.name)}</p>',
        f"<h1>{html.escape(t('Procedure not found'))}</h1>",
        f"<p>{html.escape(t('No procedure has the code {code}.', code=code[:40]))}</p>",
        f'<p><a class="ask" href="{CHAT_PAGE}">{html.escape(t("Ask the assistant"))}</a></p>',
    ])


def add_procedure_routes(app: web.Application, assistant: Assistant) -> None:
    """Serve ``GET /thu-tuc/{code}[?lang=en]`` from ``assistant``'s knowledge base."""

    async def procedure_page(request: web.Request) -> web.Response:
        """One procedure's card; 404 with a Vietnamese page for an unknown code."""
        code = request.match_info["code"]
        asked = request.query.get("lang", DEFAULT_LANG)
        lang: Lang = next((x for x in LANGUAGES if x == asked), DEFAULT_LANG)
        if code not in assistant.kb.procedures:
            return web.Response(status=404, text=render_missing(assistant, code, lang),
                                content_type="text/html")
        return web.Response(text=render_card(assistant, code, lang), content_type="text/html")

    app.router.add_get(PATH, procedure_page)
