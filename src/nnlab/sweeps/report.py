"""A sweep's plots (metric against each parameter, overlaid learning curves, parameter counts, bayes history),
its terminal summary and its report.html; everything is read from the sweep folder and the trials' run folders.
`nnlab report` starts here: a reference names a sweep or else a run (whose report is reports.run_page's)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from nnlab import runs
from nnlab.reports.summary import Curves, column_texts, format_value, read_curves
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
    """A swept value as the sweep file spells it: JSON (null, true, [8]), not Python (None, True)."""
    return json.dumps(value) if value is None or isinstance(value, (list, dict, bool)) else str(value)


def point_label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={label(v)}" for k, v in params.items()) or "base"


def shown(text: str, width: int = 40) -> str:
    """A tick or legend label as a figure shows it: JSON without quotes, wrapped at `width` (a swept
    model section is a long JSON object, and one line of it left no room for the axes)."""
    import textwrap

    compact = text.replace('"', "").replace(": ", ":") if text[:1] in "[{" else text
    return "\n".join(textwrap.wrap(compact, width)) if len(compact) > width else compact


def _tight(fig) -> None:
    """tight_layout, without the warning it prints when long labels leave it no room (the figure is kept)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tight layout not applied")
        fig.tight_layout()


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

    others = [p for p in sweep.swept if p != path and (y == "metric" or _changes_parameter_count(sweep, p))]
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
            ax.errorbar(xs, means, yerr=stds if y == "metric" else None, marker="o", capsize=4,
                        label=shown(key, 60) if key else None)
    if numeric:
        if _log_spaced(sweep, path, raw_values):
            ax.set_xscale("log")
    else:
        ticks = [shown(v) for v in values]
        ax.set_xticks(range(len(values)), ticks, rotation=30 if max(map(len, ticks)) > 6 else 0,
                      fontsize=8 if max(map(len, ticks)) > 20 else None)
    ax.set_xlabel(path)
    ax.set_ylabel(f"{sweep.metric} (mean ± std over repeats)" if y == "metric" else "parameters")
    if y != "metric" and numeric:
        ax.set_yscale("log" if _log_spaced(sweep, path, raw_values) else "linear")
    ax.grid(alpha=0.3)
    if any(groups):
        ax.legend(fontsize=8)
    ax.set_title(f"{sweep.metric if y == 'metric' else 'parameter count'} against {path}")
    _tight(fig)
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
            ax.plot(curves[0].epochs[:length], mean, color=color, linewidth=2.4, marker="o" if length == 1 else None,
                    label=shown(f"{labels.get(point, point)} (n={len(series)})", 60))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(column or sweep.metric)
    ax.grid(alpha=0.3)
    if by_point and _grouped(sweep):  # a legend that groups nothing (every point once) only hides the curves
        ax.legend(fontsize=7, ncol=2 if len(by_point) > 6 else 1, loc="best")
    ax.set_title(f"learning curves: {column or sweep.metric} per trial (thin) and mean per point (thick)")
    _tight(fig)
    return fig if by_point else None


def _grouped(sweep: SweepSummary) -> bool:
    """A grid sweep, or one whose points ran more than once: a legend by point says something."""
    return sweep.spec.get("method", "grid") == "grid" or any(p.n > 1 for p in sweep.points)


def _searched(sweep: SweepSummary) -> bool:
    """random and bayes: points drawn one by one, read as a history rather than a grid."""
    return sweep.spec.get("method") in ("random", "bayes")


def _completed(sweep: SweepSummary) -> list[dict[str, Any]]:
    """Completed trials with a finite metric, in trial order."""
    rows = [r for r in sweep.rows if r.get("status") == "completed" and isinstance(r.get(sweep.metric), (int, float))
            and math.isfinite(float(r[sweep.metric]))]
    return sorted(rows, key=lambda r: int(r["trial"]))


def _axis_values(sweep: SweepSummary, path: str, rows: list[dict[str, Any]]) -> tuple[list[float], list[str] | None]:
    """A parameter's values as positions on an axis: the numbers themselves, or the index of each category
    (returned with the category labels)."""
    values = [r.get(path) for r in rows]
    if _numeric(values):
        return [float(v) for v in values], None
    categories = list(dict.fromkeys(label(v) for v in values))
    return [float(categories.index(label(v))) for v in values], categories


def plot_metric_scatter(sweep: SweepSummary, path: str):
    """random/bayes: every completed trial's metric against one parameter, coloured by trial number; no lines
    (neighbouring values are not neighbouring trials)."""
    import matplotlib.pyplot as plt

    rows = _completed(sweep)
    if not rows:
        return None
    xs, categories = _axis_values(sweep, path, rows)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    dots = ax.scatter(xs, [float(r[sweep.metric]) for r in rows], c=[int(r["trial"]) for r in rows], cmap="viridis",
                      s=36, edgecolors="black", linewidths=0.4)
    fig.colorbar(dots, ax=ax, label="trial")
    if categories is not None:
        ticks = [shown(c) for c in categories]
        ax.set_xticks(range(len(categories)), ticks, rotation=30 if max(map(len, ticks)) > 6 else 0,
                      fontsize=8 if max(map(len, ticks)) > 20 else None)
    elif _log_spaced(sweep, path, xs):
        ax.set_xscale("log")
    ax.set_xlabel(path)
    ax.set_ylabel(sweep.metric)
    ax.grid(alpha=0.3)
    ax.set_title(f"{sweep.metric} against {path} (colour: trial number)")
    _tight(fig)
    return fig


def param_importances(sweep: SweepSummary) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA, `optuna.importance`) over the completed trials in trials.csv,
    given to an in-memory study: the sweep's own storage is not opened. {} when they cannot be told apart."""
    rows = _completed(sweep)
    distributions = {path: _distribution(sweep, path, rows) for path in sweep.swept}
    if len(sweep.swept) < 2 or len(rows) < 3 or any(d is None for d in distributions.values()):
        return {}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=sweep.goal if sweep.goal in ("minimize", "maximize") else "minimize")
    for row in rows:
        params = {path: (label(row.get(path)) if _is_categorical(distributions[path]) else row.get(path))
                  for path in sweep.swept}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=float(row[sweep.metric])))
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # e.g. every trial with the same value
        return {}
    return {path: float(value) for path, value in importances.items()}


def _is_categorical(distribution) -> bool:
    return type(distribution).__name__ == "CategoricalDistribution"


def _distribution(sweep: SweepSummary, path: str, rows: list[dict[str, Any]]):
    """The Optuna distribution sweep.yaml describes for `path` (categories as their labels); None if unknown."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    spec = (sweep.spec.get("parameters") or {}).get(path) or {}
    if "values" in spec:
        choices = list(dict.fromkeys(label(v) for v in spec["values"]))
        return CategoricalDistribution(choices) if len(choices) > 1 else None
    low, high, kind = spec.get("min"), spec.get("max"), spec.get("distribution")
    if not _numeric([low, high]) or not low < high:
        return None
    values = [r.get(path) for r in rows]
    if not _numeric(values):
        return None
    if kind == "int_uniform" or (kind is None and all(isinstance(v, int) for v in (low, high))):
        return IntDistribution(int(low), int(high))
    if kind == "q_uniform" and spec.get("q"):
        return FloatDistribution(float(low), float(high), step=float(spec["q"]))
    return FloatDistribution(float(low), float(high), log=kind == "log_uniform_values")


def plot_importances(importances: dict[str, float], sweep: SweepSummary):
    import matplotlib.pyplot as plt

    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(names) + 1.6))
    ax.barh(names, [importances[n] for n in names], color="#4c72b0")
    for y, name in enumerate(names):
        ax.text(importances[name], y, f" {importances[name]:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, max(1.0, max(importances.values()) * 1.15))
    ax.set_xlabel(f"importance for {sweep.metric} (Optuna, fANOVA)")
    ax.set_title("parameter importances")
    _tight(fig)
    return fig


def plot_parallel_coordinates(sweep: SweepSummary):
    """Every completed trial as a line through one axis per parameter and the metric, coloured by the metric."""
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    rows = _completed(sweep)
    if len(sweep.swept) < 2 or len(rows) < 2:
        return None
    axes_values, ticks = [], []
    for path in sweep.swept:
        xs, categories = _axis_values(sweep, path, rows)
        log = categories is None and _log_spaced(sweep, path, xs) and min(xs) > 0
        scaled = [math.log10(v) for v in xs] if log else xs
        low, high = min(scaled), max(scaled)
        span = (high - low) or 1.0
        axes_values.append([(v - low) / span for v in scaled])
        if categories is not None:
            ticks.append([((i - low) / span, text) for i, text in enumerate(categories)])
        else:
            ends = [low, high]
            ticks.append([(0.0, format_value(10 ** ends[0] if log else ends[0])),
                          (1.0, format_value(10 ** ends[1] if log else ends[1]))])
    metric = [float(r[sweep.metric]) for r in rows]
    low, high = min(metric), max(metric)
    axes_values.append([(v - low) / ((high - low) or 1.0) for v in metric])
    ticks.append([(0.0, format_value(low)), (1.0, format_value(high))])
    names = [*sweep.swept, sweep.metric]
    norm = colors.Normalize(low, high)
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(names)), 4.4))
    for i in range(len(rows)):
        ax.plot(range(len(names)), [axis[i] for axis in axes_values], color=cm.viridis(norm(metric[i])), alpha=0.8)
    for x, marks in enumerate(ticks):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, text in marks:
            ax.text(x + 0.03, y, text, fontsize=8, va="center")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(names) - 0.6)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label=sweep.metric)
    ax.set_title("parallel coordinates: each line a trial")
    _tight(fig)
    return fig


def plot_contour(sweep: SweepSummary, first: str, second: str):
    """The metric over the two most important parameters: interpolated between the trials (dots)."""
    import matplotlib.pyplot as plt

    rows = _completed(sweep)
    xs, x_categories = _axis_values(sweep, first, rows)
    ys, y_categories = _axis_values(sweep, second, rows)
    if len(set(zip(xs, ys))) < 4 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    x_log = x_categories is None and _log_spaced(sweep, first, xs) and min(xs) > 0
    y_log = y_categories is None and _log_spaced(sweep, second, ys) and min(ys) > 0
    px = [math.log10(v) for v in xs] if x_log else xs
    py = [math.log10(v) for v in ys] if y_log else ys
    metric = [float(r[sweep.metric]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 5))
    try:
        filled = ax.tricontourf(px, py, metric, levels=12, cmap="viridis")
    except (ValueError, RuntimeError):  # points on one line: no triangles to fill
        plt.close(fig)
        return None
    fig.colorbar(filled, ax=ax, label=sweep.metric)
    ax.scatter(px, py, c="white", edgecolors="black", s=22, linewidths=0.6)
    for axis, categories, log, path in ((ax.xaxis, x_categories, x_log, first), (ax.yaxis, y_categories, y_log, second)):
        if categories is not None:
            axis.set_ticks(range(len(categories)), categories)
        elif log:
            axis.set_major_formatter(plt.FuncFormatter(lambda v, _: format_value(10 ** v)))
    ax.set_xlabel(first + (" (log)" if x_log else ""))
    ax.set_ylabel(second + (" (log)" if y_log else ""))
    ax.set_title(f"{sweep.metric} over the two most important parameters")
    _tight(fig)
    return fig


def plot_metric_by_trial(sweep: SweepSummary):
    """random/bayes: the metric of each trial in order, with the best so far (the optimisation history)."""
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
    ax.set_title(f"optimisation history: {sweep.metric} of each trial, best so far")
    _tight(fig)
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
            fig = plot_metric_scatter(sweep, path) if _searched(sweep) else plot_metric_against(sweep, path)
            if fig is not None:
                written.append(save_figure(fig, folder / f"metric_vs_{_slug(path)}.png"))
        if has_counts and _changes_parameter_count(sweep, path):
            written.append(save_figure(plot_metric_against(sweep, path, y="parameters"),
                                       folder / f"parameters_vs_{_slug(path)}.png"))
    curves = plot_trial_curves(sweep, sweep_dir.parent.parent)
    if curves is not None:
        written.append(save_figure(curves, folder / "curves.png"))
    if _searched(sweep):
        for name, fig in _search_figures(sweep):
            written.append(save_figure(fig, folder / name))
    # A plot no longer drawn must not linger. Removed after drawing, and never a dot-file: a second process
    # finishing the same sweep may be writing `.name-<random>.png` this moment, and draws the same names.
    for stale in folder.glob("*.png") if folder.is_dir() else []:
        if not stale.name.startswith(".") and stale not in written:
            stale.unlink(missing_ok=True)
    return written


def _search_figures(sweep: SweepSummary):
    """random/bayes: history, importances, parallel coordinates, the contour of the two most important."""
    history = plot_metric_by_trial(sweep)
    if history is not None:
        yield "history.png", history
    importances = param_importances(sweep)
    if importances:
        yield "importances.png", plot_importances(importances, sweep)
    parallel = plot_parallel_coordinates(sweep)
    if parallel is not None:
        yield "parallel_coordinates.png", parallel
    if len(importances) >= 2:
        first, second = list(importances)[:2]
        contour = plot_contour(sweep, first, second)
        if contour is not None:
            yield "contour.png", contour


def _changes_parameter_count(sweep: SweepSummary, path: str) -> bool:
    """Only model (and data) settings change the parameter count; a plot of a flat count says nothing."""
    if path.startswith("train.") or path == "seed":
        return False
    return len({p.parameters for p in sweep.points if p.parameters is not None}) > 1


# ---------------------------------------------------------------------------------------------
# Terminal.
def summary_table(sweep: SweepSummary) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    best = sweep.best()
    texts = {k: [shown(label(p.params.get(k))) for p in sweep.points] for k in sweep.swept}  # a model: compact
    table.add_column("point", min_width=5, overflow="fold")
    for column in sweep.swept:
        widest = max((len(line) for text in texts[column] for line in text.splitlines()), default=0)
        table.add_column(column, min_width=max(len(column), widest), overflow="fold")
    scored = any(p.values or p.failed for p in sweep.points)  # else --params-only: counts alone
    for column in (("n", f"{sweep.metric} mean", "std", "min", "max", "failed") if scored else ()) + ("parameters",):
        table.add_column(column, justify="right", no_wrap=True)
    numbers = [[p.mean, p.std if p.n > 1 else None, min(p.values) if p.values else None,
                max(p.values) if p.values else None] for p in sweep.points]
    columns = [column_texts([row[i] for row in numbers]) for i in range(4)]  # one format per column; std – for n=1
    for i, p in enumerate(sweep.points):
        style = "bold green" if best is not None and p.point == best.point else ""
        scores = [str(p.n), *(column[i] for column in columns), str(p.failed)] if scored else []
        cells = [str(p.point), *(texts[k][i] for k in sweep.swept), *scores,
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
        from rich.measure import Measurement

        table = summary_table(sweep)  # never narrower than its columns' minimum: rich would drop whole columns
        unbounded = console.options.update_width(1_000_000)  # a measure within the console's width is cut to it
        width = console.width  # print(width=) cannot widen a console, so the console itself is widened
        console.width = max(width, Measurement.get(console, unbounded, table).minimum)
        try:
            console.print(table)
        finally:
            console.width = width
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
        spread = f" ± {best.std:.4f}" if best.n > 1 else ""
        console.print(f"best point: {point_label(best.params)}: {sweep.metric} {best.mean:.4f}{spread} "
                      f"(n={best.n}); best.yaml: {sweep.sweep_dir / aggregate.BEST}", markup=False)
    elif sweep.points and any(p.parameters is not None for p in sweep.points):
        console.print("parameter counts only (--params-only)")
    else:
        console.print("best point: none (no trial completed)")


# ---------------------------------------------------------------------------------------------
# report.html.
def write_sweep_report(sweep_dir: str | Path) -> Path:
    """report.html: overview, the best point and how to train it, the per-point table, every plot, and each
    trial linked to its own report."""
    from nnlab.reports.html import Section, definition_table, esc, image, render_page, scrolling, table
    from nnlab.reports.run_page import write_run_report

    sweep_dir = Path(sweep_dir)
    write_sweep_plots(sweep_dir)
    sweep = read_sweep(sweep_dir)
    runs_dir = sweep_dir.parent.parent
    counts = sweep.counts()
    best = sweep.best()
    overview = definition_table([
        ("sweep id", sweep.sweep_id), ("name", sweep.name), ("method", sweep.spec.get("method", "-")),
        ("metric", f"{sweep.metric} ({sweep.goal})"), ("repeats", sweep.spec.get("repeats", 1)),
        ("every trial", " ".join(sweep.fixed) or "-"),
        ("trials", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"),
        ("status", sweep.state.get("status", "-")), ("source", sweep.spec.get("source", "-")),
        ("workers x threads", f"{sweep.state.get('workers', '-')} x {sweep.state.get('threads', '-')}"),
    ])
    sections = [Section("overview", "Overview", overview)]
    if best is not None:
        sections.append(Section("best", "Best point", _best_point_html(sweep, best)))
    numbers = [[p.n, p.mean, p.std if p.n > 1 else None, min(p.values) if p.values else None,
                max(p.values) if p.values else None, p.failed, p.parameters] for p in sweep.points]
    columns = [column_texts([row[i] for row in numbers]) for i in range(7)]
    header = ["point", *sweep.swept, "n", f"{sweep.metric} mean", "std", "min", "max", "failed", "parameters"]
    rows = [[str(p.point), *(label(p.params.get(k)) for k in sweep.swept), *(column[i] for column in columns)]
            for i, p in enumerate(sweep.points)]
    summary = table(header, rows, numeric_from=1 + len(sweep.swept), formatted=True,
                    row_classes=["ok" if best is not None and p.point == best.point else "" for p in sweep.points])
    sections.append(Section("summary", "Per point", scrolling(summary)))
    figures = "".join(image(png.read_bytes(), png.stem.replace("_", " "), png.name)
                      for png in sorted((sweep_dir / aggregate.PLOTS).glob("[!.]*.png"), key=_plot_order))
    if figures:
        sections.append(Section("plots", "Plots", f'<div class="figures">{figures}</div>'))
    values = column_texts([row.get(sweep.metric) if isinstance(row.get(sweep.metric), (int, float)) else None
                           for row in sweep.rows])
    durations = column_texts([float(row["duration_s"]) if isinstance(row.get("duration_s"), (int, float)) else None
                              for row in sweep.rows])
    trial_rows = []
    for row, value, duration in zip(sweep.rows, values, durations):
        run_id = row.get("run_id")
        link = esc(run_id or "-")
        if run_id and (runs_dir / str(run_id) / runs.META).is_file():
            write_run_report(runs_dir / str(run_id))
            link = f'<a href="../../{esc(run_id)}/report.html">{esc(run_id)}</a>'
        cells = [row.get("trial"), row.get("status"), row.get("seed"), *(label(row.get(k)) for k in sweep.swept)]
        trial_rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells)
                          + f'<td class="num">{esc(value)}</td><td class="num">{esc(duration)}</td>'
                          + f"<td>{esc(row.get('reason') or '')}</td><td>{link}</td></tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in ["trial", "status", "seed", *sweep.swept, sweep.metric,
                                                  "duration_s", "reason", "run"])
    trials = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trial_rows)}</tbody></table>"
    sections.append(Section("trials", "Trials", scrolling(trials)))
    path = sweep_dir / aggregate.REPORT
    runs.write_text(path, render_page(f"sweep {sweep.name} — {sweep.sweep_id}", sections,
                                      subtitle=f"{sweep.spec.get('method', '?')} · {sweep.metric}"))
    return path


def train_best_command(sweep_dir: Path) -> str:
    """`nnlab train <best.yaml>`, the path as the user reaches it from here (relative when it is below)."""
    best = Path(sweep_dir) / aggregate.BEST
    try:
        shown = best.resolve().relative_to(Path.cwd().resolve()) if best.is_absolute() else best
    except ValueError:
        shown = best
    return f"nnlab train {shown}"


def _best_point_html(sweep: SweepSummary, best: PointSummary) -> str:
    from nnlab.reports.html import definition_table, esc

    spread = f" ± {best.std:.4f}" if best.n > 1 else ""
    rows = [*((path, label(best.params.get(path))) for path in sweep.swept),
            (sweep.metric, f"{best.mean:.4f}{spread} (n={best.n})")]
    command = (f'<p>Train it: <code class="command">{esc(train_best_command(sweep.sweep_dir))}</code> '
               f"(its config, the base with this point's values, is {esc(aggregate.BEST)} in the sweep folder)</p>"
               if (sweep.sweep_dir / aggregate.BEST).is_file() else "")
    return definition_table(rows) + command


_PLOT_ORDER = ("history", "importances", "metric_vs_", "contour", "parallel_coordinates", "curves", "parameters_vs_")


def _plot_order(png: Path) -> tuple[int, str]:
    """The plots in reading order: how the search went, what mattered, then the details."""
    return next((i for i, prefix in enumerate(_PLOT_ORDER) if png.stem.startswith(prefix)), len(_PLOT_ORDER)), png.stem


# ---------------------------------------------------------------------------------------------
# nnlab report.
def report_ref(ref: str, runs_dir: str | Path, *, sweep_only: bool = False, html: bool = True) -> None:
    """`nnlab report REF`: a sweep's report.html (with `html`) and per-point table, or else a run's page and
    terminal report (see find_sweep_ref for which `ref` names)."""
    from nnlab.reports.run_page import report_run

    sweep_dir = find_sweep_ref(ref, runs_dir, sweep_only)
    if sweep_dir is None:
        report_run(runs.find_run(ref, runs_dir), html=html)
        return
    page = write_sweep_report(sweep_dir) if html else None  # its table, plots and a page linking every trial
    print_sweep(read_sweep(sweep_dir), Console(highlight=False, soft_wrap=True), report_path=page)


__all__ = ["print_sweep", "report_ref", "write_sweep_plots", "write_sweep_report"]
