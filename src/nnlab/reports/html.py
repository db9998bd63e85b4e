"""Self-contained HTML pages (report.html, compare-*.html): images inlined as data URIs, no network.

A page is a list of `Section`s; each section builder takes summary objects (RunSummary, Comparison),
so later pages (a sweep's) reuse the builders and `render_page` as they are.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from nnlab import __version__, runs
from nnlab.reports.compare import MISSING, Comparison
from nnlab.reports.summary import (
    Confusion,
    EvaluationSummary,
    RunSummary,
    column_texts,
    config_essentials,
    format_config_value,
    format_value,
    read_run,
    stale_plots,
    standard_plots,
)
from nnlab.reports.terminal import data_line, epochs_line, parameters_line, status_line

REPORT = "report.html"
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


# ---------------------------------------------------------------------------------------------
# Sections about one run.
def overview_section(run: RunSummary) -> Section:
    rows = [
        ("run id", run.run_id),
        ("status", status_line(run)),
        ("task", run.task or "-"),
        ("created", run.created or "-"),
        ("data", data_line(run)),
        ("parameters", parameters_line(run)),
        ("epochs", epochs_line(run)),
        ("seed", run.seed if run.seed is not None else "-"),
        ("config file", run.config_file or "-"),
        ("overrides", " ".join(run.overrides) or "none"),
        ("device", run.device.get("used", "-")),
        ("versions", ", ".join(f"{k} {v}" for k, v in run.versions.items() if v) or "-"),
    ]
    return Section("overview", "Overview", definition_table(rows))


def config_section(run: RunSummary) -> Section:
    import yaml

    essentials = definition_table((k, format_config_value(v)) for k, v in config_essentials(run.config))
    full = ""
    if run.config:
        text = yaml.safe_dump(run.config, sort_keys=False, width=100)
        full = f"<h3>config.yaml (resolved)</h3><pre>{esc(text)}</pre>"
    return Section("config", "Configuration", essentials + full)


def model_section(run: RunSummary) -> Section:
    counts = run.parameters
    totals = definition_table([("total parameters", f"{counts.get('total', 0):,}"),
                               ("trainable", f"{counts.get('trainable', 0):,}"),
                               ("non-trainable", f"{counts.get('non_trainable', 0):,}")]) if counts else ""
    if run.layers is not None:
        body = table(run.layers.columns, run.layers.rows, numeric_from=len(run.layers.columns))
    elif run.model_summary:
        body = f"<pre>{esc(run.model_summary)}</pre>"
    else:
        body = "<p>No model summary (summary.txt is missing).</p>"
    return Section("model", "Model", body + totals)


def metrics_section(run: RunSummary) -> Section:
    if not run.metrics:
        return Section("metrics", "Final metrics", "<p>No final metrics: metrics.json is missing "
                       f"(the run is {esc(run.status)}).</p>")
    rows = [[name, *(run.metrics[s].get(name, "-") for s in run.splits)] for name in run.metric_names()]
    main = (run.main_metric or {}).get("name", "")
    note = f"<p>Main metric: <b>{esc(main)}</b> = {esc(format_value(run.main_metric.get('value')))}</p>" if main else ""
    return Section("metrics", "Final metrics", table(["metric", *run.splits], rows) + note)


def _plot(run: RunSummary, name: str) -> bytes | None:
    return _png(run.run_dir / runs.PLOTS / name)


def _png(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def curves_section(run: RunSummary) -> Section | None:
    png = _plot(run, "curves.png")
    if png is None:
        return None
    best = f"Best epoch: {run.best_epoch}." if run.best_epoch is not None else ""
    return Section("curves", "Learning curves", image(png, "learning curves", f"Drawn from history.csv. {best}"))


def confusion_section(run: RunSummary) -> Section | None:
    if run.confusion is None:
        return None
    body = _confusion_body(run.confusion, _plot(run, "confusion_matrix.png"),
                           _plot(run, "confusion_matrix_normalized.png"))
    return Section("confusion", "Confusion matrix (validation)", body)


def _confusion_body(confusion: Confusion, counts_png: bytes | None, normalised_png: bytes | None) -> str:
    names = confusion.class_names
    head = "".join(f"<th>{esc(h)}</th>" for h in ["true \\ predicted", *names])
    body = "".join(
        f"<tr><th>{esc(name)}</th>"
        + "".join(f'<td class="num{" diag" if i == j else ""}">{int(v)}</td>'
                  for j, v in enumerate(confusion.matrix[i]))
        + "</tr>"
        for i, name in enumerate(names)
    )
    counts = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    figures = '<div class="figures">'
    if counts_png is not None:
        figures += image(counts_png, "confusion matrix (counts)", "Counts.")
    if normalised_png is not None:
        figures += image(normalised_png, "confusion matrix (normalised)",
                         "Each row (true class) normalised to 1: recall on the diagonal.")
    figures += "</div>"
    return figures + counts


def per_class_section(run: RunSummary) -> Section | None:
    if not run.class_report:
        return None
    return Section("per-class", "Per-class scores (validation)", _per_class_table(run.class_report))


def _per_class_table(report: dict[str, dict[str, float]]) -> str:
    rows = [[name, s.get("precision"), s.get("recall"), s.get("f1"), s.get("support")] for name, s in report.items()]
    if rows:
        mean = [float(np.mean([r[i] for r in rows])) for i in (1, 2, 3)]
        rows.append(["macro average", *mean, int(sum(r[4] or 0 for r in rows))])
    header = ["class", "precision", "recall", "f1", "support"]
    return table(header, rows)


_EXAMPLE = re.compile(r"^(ok|XX)\s+(.*) -> (.*)\s+\(true (.*)\)$")


def examples_section(run: RunSummary) -> Section | None:
    if not run.examples:
        return None
    return Section("examples", "Decoded examples (validation)", _examples_body(run.examples))


def _examples_body(examples: list[str]) -> str:
    parsed = [_EXAMPLE.match(line) for line in examples]
    if all(parsed):
        rows = [["right" if m.group(1) == "ok" else "wrong", m.group(2), m.group(3).strip(), m.group(4)]
                for m in parsed]
        right = sum(m.group(1) == "ok" for m in parsed)
        body = (f"<p>{right} of {len(parsed)} shown examples are entirely right.</p>"
                + table(["", "input", "predicted", "true"], rows, numeric_from=99,
                        row_classes=["ok" if m.group(1) == "ok" else "wrong" for m in parsed]))
    else:
        body = f"<pre>{esc(chr(10).join(examples))}</pre>"
    return body


def predictions_section(run: RunSummary) -> Section | None:
    figures = []
    for split, name in (("val", "validation"), ("test", "test")):
        png = _plot(run, f"predictions_{split}.png")
        if png is not None:
            figures.append(image(png, f"predictions ({name})", f"Drawn from predictions.npz ({split})."))
        roc = _plot(run, f"roc_{split}.png")
        if roc is not None:
            figures.append(image(roc, f"roc curve ({name})", f"The curve the ROC AUC sums up ({split})."))
    if not figures:
        return None
    return Section("predictions", "Predictions", '<div class="figures">' + "".join(figures) + "</div>")


def evaluation_section(evaluation: EvaluationSummary) -> Section:
    """One `nnlab evaluate` result: what was scored, the metrics, and the task's extras and plots."""
    data = evaluation.data
    sizes = " / ".join(f"{k} {v:,}" for k, v in (data.get("sizes") or {}).items())
    facts = [("split", evaluation.split), ("data", f"{data.get('name', '?')}, {data.get('source', '?')} data: {sizes}"),
             ("overrides", " ".join(evaluation.overrides) or "none"), ("model", evaluation.model),
             ("created", evaluation.created or "-")]
    if data.get("path"):
        facts.insert(2, ("data path", data["path"]))
    body = (f"<p><b>{esc(evaluation.note)}</b></p>" if evaluation.note else "") + definition_table(facts)
    rows = [[name, value] for name, value in evaluation.metrics.items()]
    body += table(["metric", evaluation.split], rows)
    plots = evaluation.folder / runs.PLOTS
    if evaluation.confusion is not None:
        body += "<h3>Confusion matrix</h3>" + _confusion_body(evaluation.confusion, _png(plots / "confusion_matrix.png"),
                                                              _png(plots / "confusion_matrix_normalized.png"))
    if evaluation.class_report:
        body += "<h3>Per-class scores</h3>" + _per_class_table(evaluation.class_report)
    if evaluation.examples:
        body += "<h3>Decoded examples</h3>" + _examples_body(evaluation.examples)
    png = _png(plots / f"predictions_{evaluation.split}.png")
    if png is not None:
        body += image(png, f"predictions ({evaluation.split})", f"Drawn from predictions.npz ({evaluation.split}).")
    roc = _png(plots / f"roc_{evaluation.split}.png")
    if roc is not None:
        body += image(roc, f"roc curve ({evaluation.split})", f"The curve the ROC AUC sums up ({evaluation.split}).")
    return Section(f"evaluation-{evaluation.id}", f"Evaluation {evaluation.id}", body)


def inspection_section(run: RunSummary) -> Section | None:
    """Every PNG under plots/ other than the standard ones shown above (inspection plots of other tools)."""
    folder = run.run_dir / runs.PLOTS
    if not folder.is_dir():
        return None
    standard = set(standard_plots(run.run_dir, run.task))
    # in the order they were drawn: inspect writes input, conv1, pool1, ... (layer order), then kernels
    found = sorted((p for p in folder.rglob("*.png") if p.relative_to(folder).as_posix() not in standard),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    if not found:
        return None
    figures = "".join(image(p.read_bytes(), p.stem.replace("_", " "), p.relative_to(run.run_dir).as_posix())
                      for p in found)
    return Section("inspection", "Inspection plots", f'<div class="figures stack">{figures}</div>')


def run_sections(run: RunSummary) -> list[Section]:
    """All sections of a run's report, in reading order (those with nothing to show left out).

    Figures come from plots/; call `refresh_plots` first so they match the run's data files.
    """
    candidates = [
        overview_section(run),
        metrics_section(run),
        curves_section(run),
        confusion_section(run),
        per_class_section(run),
        examples_section(run),
        predictions_section(run),
        *(evaluation_section(e) for e in run.evaluations),
        inspection_section(run),
        model_section(run),
        config_section(run),
    ]
    return [s for s in candidates if s is not None]


def refresh_plots(run_dir: str | Path, *, title: str = "") -> list[str]:
    """Redraw the standard plots that are missing or older than their data files; return their names.

    matplotlib is imported only when something has to be drawn.
    """
    stale = stale_plots(run_dir)
    if stale:
        from nnlab.reports.plots import write_run_plots

        write_run_plots(run_dir, title=title, only=stale)
    return stale


def write_run_report(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write `report.html` (or `path`) for the run in `run_dir`, redrawing stale plots first; return the path."""
    run = read_run(run_dir)
    refresh_plots(run_dir, title=run.name)
    path = Path(path) if path is not None else Path(run_dir) / REPORT
    subtitle = f"{run.task or 'unknown task'} · {status_line(run)} · {run.created or ''}"
    runs.write_text(path, render_page(f"{run.name} — {run.run_id}", run_sections(run), subtitle=subtitle))
    return path


# ---------------------------------------------------------------------------------------------
# Sections comparing runs.
def comparison_runs_section(comparison: Comparison) -> Section:
    rows = [[label, run.run_id, run.name, run.task or "-", "-" if run.epochs_done is None else run.epochs_done,
             status_line(run)] for label, run in zip(comparison.labels, comparison.runs)]
    header = ["", "id", "name", "task", "epochs", "status"]
    return Section("runs", "Runs", table(header, rows, numeric_from=99))


def comparison_config_section(comparison: Comparison) -> Section:
    labels = comparison.labels
    differing = set(comparison.differing)
    count = len(comparison.differing)
    head = f"<p>{count} of {len(comparison.keys)} config keys differ (highlighted).</p>"
    diff_rows = [[key, *(_cell(v) for v in comparison.values(key))] for key in comparison.differing]
    diff = ""
    if diff_rows:
        diff = table(["key", *labels], diff_rows, numeric_from=99, row_classes=["diff"] * len(diff_rows))
    all_rows = [[key, *(_cell(v) for v in comparison.values(key))] for key in comparison.keys]
    full = "<h3>All config keys</h3>" + table(["key", *labels], all_rows, numeric_from=99,
                                               row_classes=["diff" if k in differing else "" for k in comparison.keys])
    return Section("config", "Config differences", head + diff + full)


def comparison_environment_section(comparison: Comparison) -> Section | None:
    """The meta.json entries (backend, versions, threads, ...) that differ, and what they explain."""
    note = comparison.reproducibility_note()
    if not comparison.environment_differing and not note:
        return None
    rows = [[key, *(_cell(v) for v in comparison.environment_values(key))] for key in comparison.environment_differing]
    body = f"<p><strong>{esc(note)}</strong></p>" if note else ""
    if rows:
        body += table(["entry (meta.json)", *comparison.labels], rows, numeric_from=99, row_classes=["diff"] * len(rows))
    return Section("environment", "Environment differences", body)


def comparison_metrics_section(comparison: Comparison) -> Section:
    rows = [[split, name, *(v if v is not None else "-" for v in values)]
            for split, name, values in comparison.metric_rows()]
    return Section("metrics", "Final metrics", table(["split", "metric", *comparison.labels], rows, numeric_from=2))


def comparison_curves_section(comparison: Comparison) -> Section | None:
    curves = {label: run.curves for label, run in zip(comparison.labels, comparison.runs) if run.curves.epochs}
    if not curves:
        return None
    from nnlab.reports import plots

    png = plots.figure_png(plots.plot_curves_overlaid(curves))
    return Section("curves", "Learning curves", image(png, "overlaid learning curves",
                                                      "Validation solid, training dashed; one colour per run."))


def comparison_sections(comparison: Comparison) -> list[Section]:
    candidates = [comparison_runs_section(comparison), comparison_config_section(comparison),
                  comparison_environment_section(comparison), comparison_metrics_section(comparison),
                  comparison_curves_section(comparison)]
    return [s for s in candidates if s is not None]


def write_comparison_report(comparison: Comparison, path: str | Path) -> Path:
    """Write the comparison page to `path`; return it."""
    path = Path(path)
    title = f"Comparison of {len(comparison.runs)} runs"
    subtitle = " · ".join(f"{label}: {run.run_id}" for label, run in zip(comparison.labels, comparison.runs))
    runs.write_text(path, render_page(title, comparison_sections(comparison), subtitle=subtitle))
    return path


def _cell(value: object) -> str:
    return "(absent)" if value is MISSING else format_config_value(value)


__all__ = [
    "REPORT",
    "Section",
    "comparison_sections",
    "refresh_plots",
    "render_page",
    "run_sections",
    "write_comparison_report",
    "write_run_report",
]
