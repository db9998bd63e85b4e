"""The HTML page toolkit: self-contained pages (images inlined as data URIs, no network) built from `Section`s.

The pages themselves are elsewhere: a run's report.html (run_page.py), a comparison (compare_page.py) and a
sweep's report (sweeps/report.py); each builds sections from summary objects and calls `render_page`.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Iterable

from nnlab import __version__
from nnlab.reports.summary import format_value

# The page may load nothing: images are data: URIs and the style sheet is inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; margin: 0 auto;
       max-width: 1100px; padding: 1.5rem; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1rem; }
.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.diag { font-weight: bold; background: #e6f0fa; }
tr.diff td, tr.diff th { background: #fff3c4; }
tr.ok td { color: #116329; } tr.wrong td { color: #a40e26; }
.status-completed { color: #116329; } .status-failed { color: #a40e26; } .status-interrupted { color: #9a6700; }
pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; white-space: pre-wrap; }
figure { margin: 0.8rem 0; break-inside: avoid; page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.figures figure { flex: 1 1 420px; }
.figures.stack figure { flex-basis: 100%; }
footer { margin-top: 2rem; color: #777; font-size: 0.8rem; }
.scroll { overflow-x: auto; max-width: 100%; }
.scroll table { margin: 0; }
.scroll td, .scroll th { white-space: nowrap; }
code.command { background: #f6f8fa; padding: 0.2rem 0.4rem; font-size: 0.9rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, figure, pre { break-inside: avoid; page-break-inside: avoid; }
  pre { white-space: pre-wrap; }
}
"""


@dataclass(frozen=True)
class Section:
    """One titled part of a page; `body` is ready HTML."""

    id: str
    title: str
    body: str


# ---------------------------------------------------------------------------------------------
# Building blocks.
def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str, caption: str = "") -> str:
    caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="{png_data_uri(png)}">{caption_html}</figure>'


def table(header: Iterable[str], rows: Iterable[Iterable[object]], *, numeric_from: int = 1,
          row_classes: Iterable[str] | None = None, formatted: bool = False) -> str:
    """An HTML table; cells from column `numeric_from` on are right-aligned and formatted as numbers
    (`formatted`: they are text already, e.g. from `column_texts`, and only aligned)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    classes = list(row_classes) if row_classes is not None else None
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            if j >= numeric_from and formatted:
                cells.append(f'<td class="num">{esc(value)}</td>')
            elif j >= numeric_from and not isinstance(value, str):
                cells.append(f'<td class="num">{esc(format_value(value))}</td>')
            else:
                cells.append(f"<td>{esc(value)}</td>")
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def scrolling(body: str) -> str:
    """A wide table kept inside the page: it scrolls sideways on its own."""
    return f'<div class="scroll">{body}</div>'


def definition_table(rows: Iterable[tuple[str, object]]) -> str:
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def render_page(title: str, sections: list[Section], *, subtitle: str = "") -> str:
    """The whole page: inline style, a content-security policy that forbids any request, the sections."""
    contents = "".join(f'<li><a href="#{esc(s.id)}">{esc(s.title)}</a></li>' for s in sections)
    parts = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1>" + (f'<p class="subtitle">{esc(subtitle)}</p>' if subtitle else "")
        + f"<nav><ol>{contents}</ol></nav>{parts}"
        f"<footer>Generated by nnlab {esc(__version__)} from the run files; self-contained, no network.</footer>"
        "</body></html>\n"
    )


__all__ = ["CSP", "STYLE", "Section", "definition_table", "esc", "image", "png_data_uri", "render_page", "scrolling",
           "table"]
