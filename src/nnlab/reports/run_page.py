"""A run's report.html: overview, metrics, curves, the task's extras, evaluations, inspection plots, model, config;
and `nnlab report RUN`, the page then the terminal report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from nnlab import runs
from nnlab.reports.html import Section, definition_table, esc, image, render_page, table
from nnlab.reports.summary import (
    Confusion,
    EvaluationSummary,
    RunSummary,
    config_essentials,
    format_config_value,
    format_value,
    read_run,
    stale_plots,
    standard_plots,
)
from nnlab.reports.terminal import data_line, epochs_line, parameters_line, print_run, status_line

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


def examples_section(run: RunSummary) -> Section | None:
    if not run.examples:
        return None
    return Section("examples", "Decoded examples (validation)", _examples_body(run.examples, run.decoded))


def _examples_body(lines: list[str], decoded: list[dict[str, Any]] | None) -> str:
    """A table of the decoded examples' records; an older run's examples.txt lines as they are."""
    if decoded is None:
        return f"<pre>{esc(chr(10).join(lines))}</pre>"
    rows = [["right" if e["right"] else "wrong", repr(e["input"]), repr(e["predicted"]), repr(e["true"])]
            for e in decoded]
    right = sum(bool(e["right"]) for e in decoded)
    return (f"<p>{right} of {len(decoded)} shown examples are entirely right.</p>"
            + table(["", "input", "predicted", "true"], rows, numeric_from=99,
                    row_classes=["ok" if e["right"] else "wrong" for e in decoded]))


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
        body += "<h3>Decoded examples</h3>" + _examples_body(evaluation.examples, evaluation.decoded)
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
    found = sorted((p for p in folder.rglob("[!.]*.png") if p.relative_to(folder).as_posix() not in standard),
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
    path = Path(path) if path is not None else Path(run_dir) / runs.REPORT
    subtitle = f"{run.task or 'unknown task'} · {status_line(run)} · {run.created or ''}"
    runs.write_text(path, render_page(f"{run.name} — {run.run_id}", run_sections(run), subtitle=subtitle))
    return path


def report_run(run_dir: str | Path, *, html: bool = True) -> None:
    """`nnlab report RUN`: write report.html (with `html`), then print the run's terminal report. A run folder that
    cannot be written (shared, archived) still gets the terminal report, and a note on stderr says why no page."""
    from rich.console import Console

    report_path = None
    if html:
        try:
            report_path = write_run_report(run_dir)
        except OSError as exc:
            print(f"note: cannot write into {run_dir} ({exc.strerror or type(exc).__name__}); terminal report only",
                  file=sys.stderr, flush=True)
    print_run(read_run(run_dir), Console(highlight=False), report_path=report_path)


__all__ = ["evaluation_section", "refresh_plots", "report_run", "run_sections", "write_run_report"]
