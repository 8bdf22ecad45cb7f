"""A report as a list of blocks, rendered to Markdown or to one self-contained HTML page.

Blocks: :class:`Heading`, :class:`Text` (Markdown lines), :class:`Table` (a header and rows
of cells, exactly as the Markdown shows them) and :class:`Chart` (bars with error bars, or
lines with a band, drawn as inline SVG in the HTML; in Markdown a chart is the PNG it names,
or nothing). The HTML page needs no network: its style and its one script (click a table
header to sort by that column; numbers sort by value) are inlined, its charts are SVG.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Sequence, Union


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    lines: list[str]


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]]


@dataclass
class Bars:
    """``values[group][series] = (mean, std)``: one cluster of bars per group."""

    groups: list[str]
    series: list[str]
    values: dict[str, dict[str, tuple[float, float]]]


@dataclass
class Lines:
    """``curves[name] = (xs, means, stds)``."""

    curves: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]]
    xlabel: str = ""


@dataclass
class Chart:
    title: str
    data: Union[Bars, Lines]
    ylabel: str = ""
    png: str | None = None  # the Markdown report's figure for the same data, if it has one
    note: list[str] = field(default_factory=list)


Block = Union[Heading, Text, Table, Chart]


# -- Markdown ----------------------------------------------------------------------------------


def markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += [f"{'#' * b.level} {b.text}", ""] if b.level > 1 else [f"# {b.text}", ""]
        elif isinstance(b, Text):
            lines += b.lines
        elif isinstance(b, Table):
            lines += ["| " + " | ".join(b.head) + " |", "|" + "---|" * len(b.head), *["| " + " | ".join(r) + " |" for r in b.rows]]
        elif isinstance(b, Chart) and b.png:
            lines += [f"![{b.title}]({b.png})", ""]
    return "\n".join(lines) + "\n"


# -- HTML --------------------------------------------------------------------------------------

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 .2em; border-radius: 3px; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f6f6; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " \\25B2"; } th[data-order="desc"]::after { content: " \\25BC"; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #555; }
svg text { font-size: 11px; fill: #333; }
"""

SCRIPT = """
function cellValue(td) {
  var m = td.textContent.trim().match(/^[-+]?(\\d+(\\.\\d+)?|\\.\\d+)(e[-+]?\\d+)?/i);
  return m ? parseFloat(m[0]) : td.textContent.trim().toLowerCase();
}
function sortTable(th) {
  var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  var order = th.getAttribute('data-order') === 'asc' ? 'desc' : 'asc';
  table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-order'); });
  th.setAttribute('data-order', order);
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
    var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
    return order === 'asc' ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.querySelectorAll('table.sortable th').forEach(function (th) { th.addEventListener('click', function () { sortTable(th); }); });
"""


def _inline(text: str) -> str:
    """Markdown's inline code and links in a line of HTML-escaped text."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', out)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo if hi > lo else 1.0
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _axis_range(lows: list[float], highs: list[float], bars: bool) -> tuple[float, float]:
    lo, hi = min(lows), max(highs)
    if bars and lo >= 0 and lo < 0.5 * hi:
        lo = 0.0  # bars start at zero unless that would flatten every difference
    pad = 0.08 * (hi - lo if hi > lo else abs(hi) or 1.0)
    return (lo if bars and lo == 0.0 else lo - pad), hi + pad


def svg_chart(chart: Chart, width: int = 720, height: int = 300) -> str:
    """The chart as an SVG element: bars (one cluster per group, one colour per series) with
    error bars of one standard deviation, or lines with a band of one standard deviation."""
    left, right, top, bottom = 60, 150, 28, 50
    w, h = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(chart.title)}">', f'<text x="{left}" y="16" font-weight="bold">{html.escape(chart.title)}</text>']
    d = chart.data
    if isinstance(d, Bars):
        vals = [(g, s, *d.values[g][s]) for g in d.groups for s in d.series if s in d.values.get(g, {})]
        lo, hi = _axis_range([m - (sd if sd == sd else 0) for *_, m, sd in vals], [m + (sd if sd == sd else 0) for *_, m, sd in vals], True)
    else:
        xs_all = [float(x) for xs, _, _ in d.curves.values() for x in xs]
        lo, hi = _axis_range([m - s for _, ms, ss in d.curves.values() for m, s in zip(ms, ss)],
                             [m + s for _, ms, ss in d.curves.values() for m, s in zip(ms, ss)], False)
        x_lo, x_hi = min(xs_all), max(xs_all)

    def y(v: float) -> float:
        return top + h - (v - lo) / ((hi - lo) or 1.0) * h

    for t in _ticks(lo, hi):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + h}" stroke="#999"/>'
                 f'<line x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}" stroke="#999"/>')
    if chart.ylabel:
        parts.append(f'<text transform="translate(14,{top + h / 2:.0f}) rotate(-90)" text-anchor="middle">{html.escape(chart.ylabel)}</text>')
    names = d.series if isinstance(d, Bars) else list(d.curves)
    if isinstance(d, Bars):
        slot = w / max(1, len(d.groups))
        bw = slot * 0.8 / max(1, len(d.series))
        for gi, g in enumerate(d.groups):
            x0 = left + gi * slot + slot * 0.1
            for si, s in enumerate(d.series):
                if s not in d.values.get(g, {}):
                    continue
                m, sd = d.values[g][s]
                x = x0 + si * bw
                top_y = y(m)
                label = f"{g} / {s}: {m:.4f} ± {sd:.4f}" if len(d.series) > 1 else f"{g}: {m:.4f} ± {sd:.4f}"
                attrs = (f'fill="{PALETTE[si % len(PALETTE)]}" data-group="{html.escape(g)}" data-series="{html.escape(s)}" '
                         f'data-mean="{m:.4f}" data-std="{sd:.4f}"><title>{html.escape(label)}</title>')
                if lo <= 0 <= hi:  # a bar from zero
                    base = y(0.0)
                    parts.append(f'<rect class="bar" x="{x:.1f}" y="{min(top_y, base):.1f}" width="{bw * 0.92:.1f}" '
                                 f'height="{abs(base - top_y):.1f}" {attrs}</rect>')
                else:  # an axis that does not start at zero: a dot, not a bar whose length would mislead
                    parts.append(f'<circle class="bar" cx="{x + bw * 0.46:.1f}" cy="{top_y:.1f}" r="5" {attrs}</circle>')
                if sd == sd and sd > 0:
                    cx = x + bw * 0.46
                    parts.append(f'<path class="errorbar" d="M{cx:.1f},{y(m + sd):.1f}V{y(m - sd):.1f}M{cx - 3:.1f},{y(m + sd):.1f}'
                                 f'h6M{cx - 3:.1f},{y(m - sd):.1f}h6" stroke="#222" fill="none"/>')
            parts.append(f'<text x="{left + gi * slot + slot / 2:.1f}" y="{top + h + 16}" text-anchor="middle">{html.escape(g)}</text>')
    else:
        def x(v: float) -> float:
            return left + (v - x_lo) / ((x_hi - x_lo) or 1.0) * w

        integral = all(float(v).is_integer() for v in xs_all)
        for t in _ticks(x_lo, x_hi):
            if integral and not float(t).is_integer():
                continue
            parts.append(f'<text x="{x(t):.1f}" y="{top + h + 16}" text-anchor="middle">{t:g}</text>')
        if d.xlabel:
            parts.append(f'<text x="{left + w / 2:.0f}" y="{top + h + 36}" text-anchor="middle">{html.escape(d.xlabel)}</text>')
        for i, (name, (xs, ms, ss)) in enumerate(d.curves.items()):
            colour = PALETTE[i % len(PALETTE)]
            pts = [(x(float(a)), y(float(m))) for a, m in zip(xs, ms)]
            band = [(x(float(a)), y(float(m) + float(s))) for a, m, s in zip(xs, ms, ss)]
            band += [(x(float(a)), y(float(m) - float(s))) for a, m, s in reversed(list(zip(xs, ms, ss)))]
            parts.append(f'<polygon class="band" points="{" ".join(f"{p:.1f},{q:.1f}" for p, q in band)}" fill="{colour}" '
                         'fill-opacity="0.18" stroke="none"/>')
            parts.append(f'<polyline class="curve" data-series="{html.escape(name)}" '
                         f'data-means="{" ".join(f"{float(m):.4f}" for m in ms)}" points="{" ".join(f"{p:.1f},{q:.1f}" for p, q in pts)}" '
                         f'fill="none" stroke="{colour}" stroke-width="2"><title>{html.escape(name)}</title></polyline>')
    for i, name in enumerate(names):  # legend
        ly = top + 6 + 16 * i
        parts.append(f'<rect x="{left + w + 12}" y="{ly}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{left + w + 26}" y="{ly + 9}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_page(title: str, blocks: list[Block]) -> str:
    """One self-contained HTML page (no external script, style, font or image)."""
    body: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            body.append("<p>" + " ".join(_inline(p) for p in para) + "</p>")
            para.clear()

    for b in blocks:
        if isinstance(b, Heading):
            flush()
            body.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            for line in b.lines:
                if not line.strip():
                    flush()
                elif line.startswith("!["):
                    continue  # the Markdown's PNG figures: the page draws its own charts
                elif line.startswith("#"):
                    flush()
                    level = len(line) - len(line.lstrip("#"))
                    body.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
                else:
                    para.append(line)
            flush()
        elif isinstance(b, Table):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in b.head)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
        elif isinstance(b, Chart):
            flush()
            note = " ".join(_inline(n) for n in b.note)
            body.append(f"<figure>{svg_chart(b)}" + (f"<figcaption>{note}</figcaption>" if note else "") + "</figure>")
    flush()
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n" + "\n".join(body)
            + f"\n<script>{SCRIPT}</script>\n</body></html>\n")
