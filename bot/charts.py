"""Small server-side charts: a series over time as an inline, accessible SVG (no JavaScript).

The caller passes text already translated (title, axis labels, series names, one label per
step); numbers are formatted for the language with Babel (``knowledge.i18n.Text.number``).
Screen readers get the title and a description listing every value; each bar or point also
carries its value as a tooltip (``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

from knowledge.i18n import Lang, Text

COLOURS = ("#1f6feb", "#2da44e", "#d29922", "#cf222e")  # distinguishable, readable on white
GRID_LINES = 4  # horizontal lines above zero
MAX_TICK_LABELS = 12  # x labels shown at most; the others stay in tooltips and the description
Kind = Literal["bar", "line"]


@dataclass(frozen=True)
class Series:
    """Named values, one per step."""

    name: str
    values: Sequence[float]


def _grid_step(peak: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten (at least 1: counts are whole) such that
    ``GRID_LINES`` steps reach ``peak``."""
    wanted = max(peak / GRID_LINES, 1.0)
    power: float = 10.0 ** math.floor(math.log10(wanted))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= wanted)


def chart(labels: Sequence[str], series: Sequence[Series], *, title: str, x_label: str,
          y_label: str, lang: Lang, kind: Kind = "bar", width: int = 640,
          height: int = 260, chart_id: str = "chart") -> str:
    """An SVG chart of ``series`` over the steps named by ``labels``, as markup to embed."""
    if any(len(s.values) != len(labels) for s in series):
        raise ValueError("every series needs one value per label")
    text = Text(lang)
    left, right, top, bottom = 64, 12, 36, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    grid = _grid_step(max((v for s in series for v in s.values), default=0))
    peak = grid * GRID_LINES
    steps = max(len(labels), 1)
    slot = plot_w / steps

    def y(value: float) -> float:
        return top + plot_h - value / peak * plot_h

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    description = "; ".join(
        f"{s.name}: " + ", ".join(f"{label} {text.number(v)}"
                                   for label, v in zip(labels, s.values, strict=True))
        for s in series)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
           f'viewBox="0 0 {width} {height}" width="100%" '
           f'aria-labelledby="{title_id} {desc_id}">',
           f'<title id="{title_id}">{escape(title)}</title>',
           f'<desc id="{desc_id}">{escape(description)}</desc>',
           f'<text x="{left}" y="16" font-size="14" font-weight="bold">{escape(title)}</text>']
    for k in range(GRID_LINES + 1):  # horizontal grid with the y values
        value = grid * k
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" '
                   f'y2="{y(value):.1f}" stroke="#d0d7de" stroke-width="1"/>')
        out.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{escape(text.number(value))}</text>')
    every = math.ceil(steps / MAX_TICK_LABELS)
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(f'<text x="{left + slot * (i + 0.5):.1f}" y="{top + plot_h + 16}" '
                       f'font-size="11" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 22}" font-size="12" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>')
    bar_w = slot * 0.8 / max(len(series), 1)
    for n, s in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        points, marks = [], []
        for i, (label, value) in enumerate(zip(labels, s.values, strict=True)):
            tip = f"<title>{escape(f'{s.name}, {label}: {text.number(value)}')}</title>"
            if kind == "bar":
                x = left + slot * i + slot * 0.1 + bar_w * n
                marks.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar_w:.1f}" '
                             f'height="{y(0) - y(value):.1f}" fill="{colour}">{tip}</rect>')
            else:
                cx, cy = left + slot * (i + 0.5), y(value)
                points.append(f"{cx:.1f},{cy:.1f}")
                marks.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
                             f'{tip}</circle>')
        if points:  # the line under its points, so each point keeps its tooltip
            out.append(f'<polyline points="{" ".join(points)}" fill="none" '
                       f'stroke="{colour}" stroke-width="2"/>')
        out.extend(marks)
        legend_x = left + n * 160
        out.append(f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 14}" y="{height - 3}" font-size="11">'
                   f'{escape(s.name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
