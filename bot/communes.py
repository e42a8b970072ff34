"""The communes one server serves, for the routes that belong to none of them: the staff
console (each account works in its own commune), the province view and the root page."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from aiohttp import web

from bot.settings import CommuneSettings
from handlers.applications import Office
from handlers.conversation import Dialogue
from handlers.knowledge import LiveKnowledge
from knowledge.i18n import Lang, Text


@dataclass(frozen=True)
class Served:
    """One commune as the server holds it: its channels, office, conversation and assistant
    (kept current with its staff's knowledge changes)."""

    settings: CommuneSettings
    office: Office
    dialogue: Dialogue
    knowledge: LiveKnowledge

    @property
    def name(self) -> str:
        """The commune's name, from its profile ("Xã Hát Môn")."""
        return self.office.kb.commune.name


COMMUNES = web.AppKey("communes", dict[int, Served])  # by commune id, the first one first
COMMUNE_PATH = re.compile(r"/c/[a-z0-9-]+(?=/|$)")  # where a commune's own routes are served


def local_path(request: web.Request) -> str:
    """The request's path within its commune: ``/c/phuc-tho/api/chat`` → ``/api/chat``."""
    found = COMMUNE_PATH.match(request.path)
    return request.path[found.end():] if found else request.path


def communes_page(request: web.Request) -> web.Response:
    """``GET /`` when several communes are served: each one's name, linking to its chat
    (``?lang=en`` in English)."""
    lang: Lang = "en" if request.query.get("lang") == "en" else "vi"
    t = Text(lang)
    items = "".join(f'<li><a href="{served.settings.path}/">{html.escape(served.name)}</a></li>'
                    for served in request.app[COMMUNES].values())
    title = html.escape(t("Choose your commune or ward"))
    return web.Response(content_type="text/html", text="\n".join([
        "<!doctype html>", f'<html lang="{lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<title>{title}</title><link rel="stylesheet" href="/static/thu-tuc.css"></head>',
        f"<body><main><h1>{title}</h1>",
        f"<p>{html.escape(t('The assistant of the one-stop desk answers for each of them.'))}</p>",
        f'<ul class="communes">{items}</ul></main></body></html>']))
