"""The province's view (``/console/province``): the report figures of every commune the
deployment serves, a row each and their total, for a province officer (role ``province``).
Figures only: no page of theirs reads an application, a conversation or a citizen's name."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from bot.communes import COMMUNES
from bot.console import FIGURES, PREFIX, Staff, period, render, staff_required
from knowledge.workdays import TZ
from storage.db import session_scope
from storage.stats import Figures, figures_by_step

PAGE = f"{PREFIX}/province"
COLUMNS = [(key, label) for key, label in FIGURES if key != "average_processing_days"]


@staff_required(role="province")
async def province(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/province``: each commune's figures for a period (this month by default)
    and the province's total."""
    first, last = period(request)
    now = dt.datetime.now(dt.UTC)
    bounds = [dt.datetime.combine(first, dt.time(), TZ),
              dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), TZ)]
    rows, total = [], Figures()
    async with session_scope(who.served.office.sessions) as session:
        for served in request.app[COMMUNES].values():
            [figures] = await figures_by_step(session, commune_id=served.office.commune_id,
                                              bounds=bounds, now=now)
            total.add(figures)
            rows.append((served.name, figures.report()))
    return render(request, "province.html", staff_member=who, start=first, end=last,
                  columns=COLUMNS, rows=rows, total=total.report())


def add_routes(app: web.Application) -> None:
    """Serve the province's view."""
    app.router.add_get(PAGE, province)
