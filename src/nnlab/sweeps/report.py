"""A sweep's plots (metric against each parameter, overlaid learning curves, parameter counts, bayes history),
its terminal summary and its report.html; everything is read from the sweep folder and the trials' run folders."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from nnlab import runs
from nnlab.reports.summary import Curves, format_value, read_curves
from nnlab.sweeps import aggregate
from nnlab.sweeps.aggregate import PointSummary, SweepSummary, read_sweep


def find_sweep_ref(ref: str, runs_dir: str | Path, sweep_only: bool) -> Path | None:
    """The sweep `ref` names, or None when it names a run (runs win unless `--sweep`)."""
    from nnlab.errors import RunNotFoundError

    if sweep_only or (Path(ref) / aggregate.SWEEP).is_file():
        return aggregate.find_sweep(ref, runs_dir)
    try:
        runs.find_run(ref, runs_dir)
        return None
    except RunNotFoundError as not_a_run:
        try:
            return aggregate.find_sweep(ref, runs_dir)
        except RunNotFoundError:
            raise not_a_run from None  # neither: the message about runs, as before sweeps existed


def label(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def point_label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={label(v)}" for k, v in params.items()) or "base"


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _log_spaced(sweep: SweepSummary, path: str, values: list[Any]) -> bool:
    spec = (sweep.spec.get("parameters") or {}).get(path) or {}
    if spec.get("distribution") == "log_uniform_values":
        return True
    return _numeric(values) and len(values) >= 3 and min(values) > 0 and max(values) / min(values) >= 100


def _history_metric(sweep: SweepSummary, curves: Curves) -> str:
    """The learning-curve column to draw: the sweep's metric if history.csv has it, else val_loss or loss."""
    for name in (sweep.metric, "val_loss", "loss"):
        if name in curves.series:
            return name
    return next(iter(curves.series), "loss")


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib is imported only here, when a figure is drawn).
def plot_metric_against(sweep: SweepSummary, path: str, *, y: str = "metric"):
    """Mean +- std of the metric (or the parameter count) over repeats against one swept parameter; one line
    per combination of the other swept parameters (at most 8), else the marginal over them."""
    import matplotlib.pyplot as plt

    others = [p for p in sweep.swept if p != path]
    groups: dict[str, list[PointSummary]] = {}
    for point in sweep.points:
        key = point_label({p: point.params.get(p) for p in others}) if others else ""
        groups.setdefault(key, []).append(point)
    if len(groups) > 8:
        groups = {"": list(sweep.points)}
    values = list(dict.fromkeys(label(p.params.get(path)) for p in sweep.points))
    raw_values = []
    for p in sweep.points:
        if p.params.get(path) not in raw_values:
            raw_values.append(p.params.get(path))
    numeric = _numeric(raw_values)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, points in groups.items():
        xs, means, stds = [], [], []
        by_value: dict[str, list[float]] = {}
        for point in points:
            if y == "metric":
                by_value.setdefault(label(point.params.get(path)), []).extend(point.values)
            elif point.parameters is not None:
                by_value.setdefault(label(point.params.get(path)), []).append(float(point.parameters))
        for text in values:
            sample = by_value.get(text)
            if not sample:
                continue
            mean = sum(sample) / len(sample)
            xs.append(raw_values[values.index(text)] if numeric else values.index(text))
            means.append(mean)
            stds.append(math.sqrt(sum((v - mean) ** 2 for v in sample) / len(sample)))
        if xs:
            ax.errorbar(xs, means, yerr=stds if y == "metric" else None, marker="o", capsize=4, label=key or None)
    if numeric:
        if _log_spaced(sweep, path, raw_values):
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(values)), values, rotation=30 if max(map(len, values)) > 6 else 0)
    ax.set_xlabel(path)
    ax.set_ylabel(f"{sweep.metric} (mean ± std over repeats)" if y == "metric" else "parameters")
    if y != "metric" and numeric:
        ax.set_yscale("log" if _log_spaced(sweep, path, raw_values) else "linear")
    ax.grid(alpha=0.3)
    if any(groups):
        ax.legend(fontsize=8)
    ax.set_title(f"{sweep.metric if y == 'metric' else 'parameter count'} against {path}")
    fig.tight_layout()
    return fig


def plot_trial_curves(sweep: SweepSummary, runs_dir: Path):
    """Every trial's learning curve, coloured by point: repeats thin, the mean over repeats thick."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    column = None
    by_point: dict[int, list[Curves]] = {}
    for row in sweep.rows:
        run_id = row.get("run_id")
        if run_id and (runs_dir / str(run_id) / runs.HISTORY).is_file():
            by_point.setdefault(int(row["point"]), []).append(read_curves(runs_dir / str(run_id)))
    labels = {p.point: point_label(p.params) for p in sweep.points}
    for i, (point, curves) in enumerate(sorted(by_point.items())):
        color = colors[i % len(colors)]
        column = column or _history_metric(sweep, curves[0])
        series = [c.series.get(column, []) for c in curves]
        for c, s in zip(curves, series):
            ax.plot(c.epochs, s, color=color, linewidth=0.7, alpha=0.35, marker="." if len(s) == 1 else None)
        length = min(len(s) for s in series)
        if length:
            mean = [sum(s[e] for s in series) / len(series) for e in range(length)]
            ax.plot(curves[0].epochs[:length], mean, color=color, linewidth=2.4,
                    label=f"{labels.get(point, point)} (n={len(series)})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(column or sweep.metric)
    ax.grid(alpha=0.3)
    if by_point:
        ax.legend(fontsize=7, ncol=2 if len(by_point) > 6 else 1)
    ax.set_title(f"learning curves: {column or sweep.metric} per trial (thin) and mean per point (thick)")
    fig.tight_layout()
    return fig if by_point else None


def plot_metric_by_trial(sweep: SweepSummary):
    """bayes: the metric of each trial in order, with the best so far."""
    import matplotlib.pyplot as plt

    done = sorted((int(r["trial"]), float(r[sweep.metric])) for r in sweep.rows
                  if r.get("status") == "completed" and isinstance(r.get(sweep.metric), (int, float)))
    if not done:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([t for t, _ in done], [v for _, v in done], "o", alpha=0.6, label="trial")
    pick = max if sweep.goal == "maximize" else min
    best, running = [], None
    for _, v in done:
        running = v if running is None else pick(running, v)
        best.append(running)
    ax.step([t for t, _ in done], best, where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(sweep.metric)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{sweep.metric} against trial number")
    fig.tight_layout()
    return fig


def _slug(path: str) -> str:
    return path.replace(".", "_")


def write_sweep_plots(sweep_dir: str | Path) -> list[Path]:
    """Draw every sweep plot into the sweep folder's plots/; return the files written."""
    from nnlab.reports.plots import save_figure

    sweep_dir = Path(sweep_dir)
    sweep = read_sweep(sweep_dir)
    folder = sweep_dir / aggregate.PLOTS
    written = []
    has_metric = any(p.values for p in sweep.points)
    has_counts = any(p.parameters is not None for p in sweep.points)
    for path in sweep.swept:
        if has_metric:
            written.append(save_figure(plot_metric_against(sweep, path), folder / f"metric_vs_{_slug(path)}.png"))
        if has_counts:
            written.append(save_figure(plot_metric_against(sweep, path, y="parameters"),
                                       folder / f"parameters_vs_{_slug(path)}.png"))
    curves = plot_trial_curves(sweep, sweep_dir.parent.parent)
    if curves is not None:
        written.append(save_figure(curves, folder / "curves.png"))
    if sweep.spec.get("method") == "bayes":
        fig = plot_metric_by_trial(sweep)
        if fig is not None:
            written.append(save_figure(fig, folder / "metric_vs_trial.png"))
    return written


# ---------------------------------------------------------------------------------------------
# Terminal.
def summary_table(sweep: SweepSummary) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    best = sweep.best()
    for column in ("point", *sweep.swept):
        table.add_column(column, min_width=len(column), overflow="fold")
    scored = any(p.values or p.failed for p in sweep.points)  # else --params-only: counts alone
    for column in (("n", f"{sweep.metric} mean", "std", "min", "max", "failed") if scored else ()) + ("parameters",):
        table.add_column(column, justify="right", no_wrap=True)
    for p in sweep.points:
        style = "bold green" if best is not None and p.point == best.point else ""
        scores = [str(p.n), *(format_value(v) if v is not None else "-" for v in
                              (p.mean, p.std, min(p.values) if p.values else None, max(p.values) if p.values else None)),
                  str(p.failed)] if scored else []
        cells = [str(p.point), *(label(p.params.get(k)) for k in sweep.swept), *scores,
                 f"{p.parameters:,}" if p.parameters is not None else "-"]
        table.add_row(*cells, style=style)
    return table


def print_sweep(sweep: SweepSummary, console: Console, *, report_path: Path | None = None) -> None:
    """The summary table, the failures, then `sweep id:`, `sweep folder:` and the best point (the output contract)."""
    counts = sweep.counts()
    console.print(f"sweep {sweep.sweep_id} ({sweep.name}, {sweep.spec.get('method', '?')}): "
                  + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; status {sweep.state.get('status')}",
                  markup=False)
    if sweep.points:
        console.print(summary_table(sweep))
    for row in sweep.rows:
        if row.get("status") == "failed":
            console.print(f"trial {row['trial']} seed {row['seed']} failed: {row.get('reason')}", style="red",
                          markup=False)
    if report_path is not None:
        console.print(f"report: {report_path}")
    console.print(f"sweep id: {sweep.sweep_id}")
    console.print(f"sweep folder: {sweep.sweep_dir}")
    best = sweep.best()
    if best is not None:
        console.print(f"best point: {point_label(best.params)}: {sweep.metric} {best.mean:.4f} ± {best.std:.4f} "
                      f"(n={best.n}); best.yaml: {sweep.sweep_dir / aggregate.BEST}", markup=False)
    elif sweep.points and any(p.parameters is not None for p in sweep.points):
        console.print("parameter counts only (--params-only)")
    else:
        console.print("best point: none (no trial completed)")


# ---------------------------------------------------------------------------------------------
# report.html.
def write_sweep_report(sweep_dir: str | Path) -> Path:
    """report.html: overview, the per-point table, every plot, and each trial linked to its own report."""
    from nnlab.reports.html import Section, definition_table, esc, image, render_page, table, write_run_report

    sweep_dir = Path(sweep_dir)
    write_sweep_plots(sweep_dir)
    sweep = read_sweep(sweep_dir)
    runs_dir = sweep_dir.parent.parent
    counts = sweep.counts()
    best = sweep.best()
    overview = definition_table([
        ("sweep id", sweep.sweep_id), ("name", sweep.name), ("method", sweep.spec.get("method", "-")),
        ("metric", f"{sweep.metric} ({sweep.goal})"), ("repeats", sweep.spec.get("repeats", 1)),
        ("trials", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"),
        ("status", sweep.state.get("status", "-")), ("source", sweep.spec.get("source", "-")),
        ("workers x threads", f"{sweep.state.get('workers', '-')} x {sweep.state.get('threads', '-')}"),
        ("best point", f"{point_label(best.params)}: {best.mean:.4f} ± {best.std:.4f} (n={best.n})" if best else "-"),
    ])
    header = ["point", *sweep.swept, "n", f"{sweep.metric} mean", "std", "min", "max", "failed", "parameters"]
    rows = [[str(p.point), *(label(p.params.get(k)) for k in sweep.swept), p.n,
             *(v if v is not None else "-" for v in (p.mean, p.std, min(p.values) if p.values else None,
                                                    max(p.values) if p.values else None)),
             p.failed, p.parameters if p.parameters is not None else "-"] for p in sweep.points]
    summary = table(header, rows, numeric_from=1 + len(sweep.swept),
                    row_classes=["ok" if best is not None and p.point == best.point else "" for p in sweep.points])
    figures = "".join(image(png.read_bytes(), png.stem.replace("_", " "), png.name)
                      for png in sorted((sweep_dir / aggregate.PLOTS).glob("*.png")))
    trial_rows = []
    for row in sweep.rows:
        run_id = row.get("run_id")
        link = esc(run_id or "-")
        if run_id and (runs_dir / str(run_id) / runs.META).is_file():
            write_run_report(runs_dir / str(run_id))
            link = f'<a href="../../{esc(run_id)}/report.html">{esc(run_id)}</a>'
        value = row.get(sweep.metric)
        cells = [row.get("trial"), row.get("status"), row.get("seed"), *(label(row.get(k)) for k in sweep.swept),
                 format_value(value) if value is not None else "-", format_value(row.get("duration_s")) if
                 row.get("duration_s") is not None else "-", row.get("reason") or ""]
        trial_rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + f"<td>{link}</td></tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in ["trial", "status", "seed", *sweep.swept, sweep.metric,
                                                  "duration_s", "reason", "run"])
    trials = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trial_rows)}</tbody></table>"
    sections = [Section("overview", "Overview", overview), Section("summary", "Per point", summary)]
    if figures:
        sections.append(Section("plots", "Plots", f'<div class="figures">{figures}</div>'))
    sections.append(Section("trials", "Trials", trials))
    path = sweep_dir / aggregate.REPORT
    runs.write_text(path, render_page(f"sweep {sweep.name} — {sweep.sweep_id}", sections,
                                      subtitle=f"{sweep.spec.get('method', '?')} · {sweep.metric}"))
    return path


__all__ = ["print_sweep", "write_sweep_plots", "write_sweep_report"]
