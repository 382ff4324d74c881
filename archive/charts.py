"""Small server-rendered SVG charts: horizontal bars (per country, per category) and daily columns.

No script, no external font: the SVG is inline in the page, its text escaped here, its colours
presentation attributes that reader.css may override (dark mode). Each chart is an image to
assistive technology (``role="img"`` labelled by its own <title> and <desc>); the page shows the
same numbers as a table beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext
from markupsafe import Markup, escape

WIDTH = 320  # viewBox units; the SVG scales to its box, and 320 reads well on a 360 px phone
FONT_SIZE = 11
BAR_FILL = "#1a5fb4"  # 6.4:1 against white
INK = "currentColor"  # text and axes follow the page's colour, dark mode included


@dataclass(frozen=True)
class ChartRow:
    """One labelled number of a chart, with an optional link for its row in the table."""

    label: str
    value: int
    href: str | None = None


@dataclass(frozen=True)
class Chart:
    """A chart ready to show: its SVG and the rows it draws (for the accessible table)."""

    title: str
    description: str
    rows: tuple[ChartRow, ...]
    svg: Markup
    value_label: str


def _attrs(attrs: dict[str, object]) -> str:
    pairs = (f' {name}="{escape(value)}"' for name, value in attrs.items() if value is not None)
    return "".join(pairs)


def _el(name: str, attrs: dict[str, object], *children: str | Markup) -> Markup:
    """An SVG element; text children are escaped, Markup children (other elements) kept."""
    inner = "".join(str(c if isinstance(c, Markup) else escape(c)) for c in children)
    return Markup(f"<{name}{_attrs(attrs)}>{inner}</{name}>")


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(
    chart_id: str, title: str, description: str, height: int, body: Iterable[Markup]
) -> Markup:
    return _el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {height}",
            "role": "img",
            "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
            "class": "chart",
            "font-size": FONT_SIZE,
            "font-family": "system-ui, sans-serif",
        },
        _el("title", {"id": f"{chart_id}-title"}, title),
        _el("desc", {"id": f"{chart_id}-desc"}, description),
        *body,
    )


def _empty(chart_id: str, title: str, description: str) -> Markup:
    note = _el("text", {"x": 0, "y": 16, "fill": INK}, gettext("Nothing to show yet."))
    return _svg(chart_id, title, description, 24, [note])


def bar_chart(
    chart_id: str, title: str, description: str, rows: Sequence[ChartRow], value_label: str
) -> Chart:
    """Horizontal bars, one row per item in the order given, each with its value at its end."""
    rows = tuple(rows)
    if not rows:
        return Chart(title, description, rows, _empty(chart_id, title, description), value_label)
    label_width, gap, row_height, bar_height = 118, 6, 20, 14
    value_room = 40  # the number written after the longest bar
    bar_room = WIDTH - label_width - gap - value_room
    biggest = max(row.value for row in rows) or 1
    body = []
    for index, row in enumerate(rows):
        top = index * row_height + 2
        width = round(bar_room * row.value / biggest, 1)
        text_y = top + bar_height - 3
        body.append(
            _el(
                "g",
                {},
                _el("title", {}, f"{row.label}: {row.value} {value_label}"),
                # Start-anchored and cut short: a long label may never run off the left edge.
                _el("text", {"x": 0, "y": text_y, "fill": INK}, _shortened(row.label, 17)),
                _el(
                    "rect",
                    {
                        "x": label_width + gap, "y": top, "width": max(width, 1),
                        "height": bar_height, "fill": BAR_FILL, "class": "bar",
                    },
                ),
                _el(
                    "text",
                    {"x": label_width + gap + width + 4, "y": text_y, "fill": INK},
                    str(row.value),
                ),
            )
        )
    height = len(rows) * row_height + 4
    svg = _svg(chart_id, title, description, height, body)
    return Chart(title, description, rows, svg, value_label)


def day_chart(
    chart_id: str, title: str, description: str, days: Sequence[tuple[date, int]], value_label: str
) -> Chart:
    """One column per day, oldest on the left, with the first and last dates and the peak marked."""
    rows = tuple(ChartRow(day.isoformat(), value) for day, value in days)
    if not rows:
        return Chart(title, description, rows, _empty(chart_id, title, description), value_label)
    left, bottom, top, plot_height = 30, 16, 8, 90
    plot_width = WIDTH - left
    step = plot_width / len(rows)
    peak = max(row.value for row in rows)
    scale = plot_height / (peak or 1)
    base = top + plot_height
    body = [
        _el("line", {"x1": left, "y1": base, "x2": WIDTH, "y2": base, "stroke": INK}),
        _el("text", {"x": left - 4, "y": top + 4, "text-anchor": "end", "fill": INK}, str(peak)),
        _el("text", {"x": left - 4, "y": base, "text-anchor": "end", "fill": INK}, "0"),
    ]
    for index, row in enumerate(rows):
        height = round(row.value * scale, 1)
        body.append(
            _el(
                "rect",
                {
                    "x": round(left + index * step + 0.5, 1), "y": round(base - height, 1),
                    "width": round(max(step - 1, 1), 1), "height": height,
                    "fill": BAR_FILL, "class": "bar",
                },
                _el("title", {}, f"{row.label}: {row.value} {value_label}"),
            )
        )
    label_y = base + bottom - 3
    body.append(_el("text", {"x": left, "y": label_y, "fill": INK}, rows[0].label))
    if len(rows) > 1:
        last = {"x": WIDTH, "y": label_y, "text-anchor": "end", "fill": INK}
        body.append(_el("text", last, rows[-1].label))
    height = base + bottom
    svg = _svg(chart_id, title, description, height, body)
    return Chart(title, description, rows, svg, value_label)
