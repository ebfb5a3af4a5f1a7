"""HTML building blocks of the funnel report: one self-contained page.

Inline CSS with the system font stack, images as ``data:`` URIs, every text escaped; no
external URL anywhere, so the file opens offline and from an e-mail attachment.
"""

from __future__ import annotations

import base64
import html
import math

import pandas as pd

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #1f2430;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 8px; border-bottom: 2px solid #3b6ea8; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
section { background: #fff; border-radius: 8px; padding: 18px 22px; margin: 18px 0;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
nav { font-size: 14px; margin: 8px 0 0; }
nav a { color: #3b6ea8; margin-right: 12px; text-decoration: none; white-space: nowrap; }
.note { color: #5a6270; font-size: 14px; }
.missing { background: #fff7e0; border-left: 4px solid #e0a800; padding: 8px 12px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 14px; }
.kpi { background: #fff; border-radius: 8px; padding: 10px 16px; min-width: 130px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.kpi b { display: block; font-size: 22px; }
.kpi span { color: #5a6270; font-size: 13px; }
.scroll { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e3e6ea; text-align: right;
  vertical-align: top; }
th { background: #eef1f5; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th.text, td.text { text-align: left; }
td.text { max-width: 340px; }
table.matrix td { text-align: center; min-width: 64px; }
table.matrix td:first-child { text-align: left; font-weight: 600; }
table.matrix td small { display: block; color: #5a6270; }
td.next { box-shadow: inset 0 -3px 0 #2e8b57; }
td.skip { box-shadow: inset 0 -3px 0 #8a63d2; }
td.back { box-shadow: inset 0 -3px 0 #d2691e; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr));
  gap: 12px; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr));
  gap: 0 24px; align-items: start; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
img.wide { min-width: 680px; }
@media (max-width: 600px) {
  main { padding: 12px 8px 32px; }
  section { padding: 12px 10px; }
  h1 { font-size: 21px; }
  .kpi { min-width: 0; flex: 1 1 40%; }
  .kpi b { font-size: 18px; }
}
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  section { box-shadow: none; border: 1px solid #ccd; break-inside: avoid-page; }
  .scroll { overflow: visible; }
  img.wide { min-width: 0; }
}
td.ci { white-space: nowrap; }
.legend span { margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 18px; height: 4px; vertical-align: middle;
  margin-right: 4px; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: list[str]) -> str:
    """The whole document: head with inline CSS, then the body parts."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def section(anchor: str, title: str, parts: list[str]) -> str:
    return (
        f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n' + "\n".join(parts) + "\n</section>"
    )


def para(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def missing(text: str) -> str:
    """A highlighted line saying what is missing and which command produces it."""
    return para(text, "missing")


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def wide_image(png: bytes, alt: str) -> str:
    """A small-multiples chart: never narrower than 680 px, scrolled sideways on phones."""
    return (
        '<div class="scroll">' + image(png, alt).replace("<img ", '<img class="wide" ') + "</div>"
    )


def kpis(items: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in items
    )
    return f'<div class="kpis">{cells}</div>'


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """``frame`` as an HTML table; ``formats`` maps a column to ``count``, ``pct``,
    ``days``, ``money``, ``prob``, ``num`` (right-aligned) or ``ci`` (preformatted
    "value [low–high]" text, right-aligned, never wrapped); other columns are text.
    Headers show underscores as spaces."""
    formats = formats or {}
    align = {
        c: ' class="ci"' if formats.get(c) == "ci" else "" if c in formats else ' class="text"'
        for c in frame.columns
    }
    head = "".join(f"<th{align[c]}>{esc(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = [
            f"<td{align[c]}>{esc(fmt(v, formats.get(c)))}</td>"
            for c, v in zip(frame.columns, values, strict=True)
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = "\n".join(rows) or f'<tr><td colspan="{len(frame.columns)}">(no rows)</td></tr>'
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def fmt(value: object, kind: str | None) -> str:
    """One cell as text; missing values as an en dash."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "days":
        return f"{float(value):.1f}"
    if kind == "money":
        return f"{float(value):,.0f}"
    if kind == "prob":
        return f"{float(value):.3f}"
    if kind == "num":
        return f"{float(value):,.3f}"
    return str(value)


def matrix_table(counts: pd.DataFrame, kinds: pd.DataFrame) -> str:
    """The transition matrix: count and row share per cell, cells marked by move kind."""
    head = (
        "<th>from \\ to</th>"
        + "".join(f"<th>{esc(c)}</th>" for c in counts.columns)
        + "<th>total</th>"
    )
    rows = []
    for source, row in counts.iterrows():
        total = int(row.sum())
        cells = [f"<td>{esc(source)}</td>"]
        for target, n in row.items():
            if n == 0:
                cells.append("<td>·</td>")
                continue
            share = n / total if total else math.nan
            alpha = 0.08 + 0.6 * share
            kind = kinds.loc[source, target]
            cells.append(
                f'<td class="{esc(kind)}" style="background: rgba(59,110,168,{alpha:.2f})">'
                f"{int(n):,}<small>{100 * share:.1f}%</small></td>"
            )
        cells.append(f"<td><b>{total:,}</b></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    legend = (
        '<p class="legend note"><span><i style="background:#2e8b57"></i>next stage</span>'
        '<span><i style="background:#8a63d2"></i>skip forward</span>'
        '<span><i style="background:#d2691e"></i>back (regression)</span>'
        "<span>shade = share of the row</span></p>"
    )
    return (
        f'<div class="scroll"><table class="matrix">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + f"\n</tbody></table></div>\n{legend}"
    )
