"""Terminal summaries of a run and of a comparison, drawn with rich from RunSummary objects."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nnlab import runs
from nnlab.reports.compare import MISSING, Comparison
from nnlab.reports.summary import (
    EvaluationSummary,
    RunSummary,
    config_essentials,
    format_config_value,
    format_value,
)

STATUS_STYLE = {"completed": "green", "running": "cyan", "failed": "red", "interrupted": "yellow", "pruned": "magenta"}


def format_duration(seconds: float | None) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02.0f}s"
    if minutes:
        return f"{minutes}m {secs:02.0f}s"
    return f"{secs:.1f}s"


def status_line(run: RunSummary) -> str:
    """`completed in 24.9s`, `failed after 3.0s: the loss became NaN ...`."""
    duration = format_duration(run.duration_s)
    if run.status == "completed":
        text = f"completed in {duration}"
    elif run.duration_s is not None:
        text = f"{run.status} after {duration}"
    else:
        text = run.status
    return f"{text}: {run.reason}" if run.reason and run.status != "completed" else text


def data_line(run: RunSummary) -> str:
    """`digits, real data: train 1,437 / val 360`."""
    sizes = " / ".join(f"{split} {n:,}" for split, n in run.sizes.items()) or "sizes unknown"
    name = run.data.get("name") or run.config.get("data", {}).get("name", "?")
    return f"{name}, {run.data_source} data: {sizes}"


def parameters_line(run: RunSummary) -> str:
    counts = run.parameters
    if not counts:
        return "-"
    return f"{counts.get('total', 0):,} ({counts.get('trainable', 0):,} trainable)"


def epochs_line(run: RunSummary) -> str:
    done = run.epochs_done if run.epochs_done is not None else (run.curves.epochs[-1] if run.curves.epochs else None)
    text = f"{done if done is not None else '-'} of {run.epochs_planned or '-'}"
    best = run.best_row()
    if run.best_epoch is not None:
        text += f", best epoch {run.best_epoch}"
        if best is not None:
            shown = [f"{k} {format_value(v)}" for k, v in best.items() if k.startswith("val_")]
            text += f" ({', '.join(shown)})" if shown else ""
    return text


def print_run(run: RunSummary, console: Console, *, report_path: Path | None = None, max_examples: int = 10) -> None:
    """The terminal report of one run: facts, config essentials, metrics per split and the task's extras."""
    style = STATUS_STYLE.get(run.status, "")
    title = Text.assemble(("run ", "bold"), (run.run_id, "bold"), f"  ({run.name}, {run.task or 'unknown task'})")
    console.print(title, soft_wrap=True)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("status", Text(status_line(run), style=style))
    facts.add_row("created", run.created or "-")
    facts.add_row("data source", data_line(run))
    facts.add_row("parameters", parameters_line(run))
    facts.add_row("epochs", epochs_line(run))
    if run.main_metric and run.main_metric.get("name"):
        facts.add_row("main metric", f"{run.main_metric['name']} {format_value(run.main_metric.get('value'))}")
    for key, value in config_essentials(run.config):
        facts.add_row(key, format_config_value(value))
    if run.overrides:
        facts.add_row("overrides", " ".join(run.overrides))
    console.print(facts)
    if run.metrics:
        console.print()
        console.print(Text("final metrics", style="bold"), metrics_table(run))
    else:
        console.print()
        console.print(Text("no final metrics (metrics.json is missing)", style="yellow"))
    if run.confusion is not None:
        console.print()
        console.print(Text("confusion matrix (validation; rows true, columns predicted)", style="bold"), soft_wrap=True)
        console.print(confusion_table(run))
    if run.examples:
        console.print()
        console.print(Text(f"examples (validation, {min(max_examples, len(run.examples))} of {len(run.examples)})",
                           style="bold"))
        for line in run.examples[:max_examples]:
            console.print(Text("  " + line, style="green" if line.startswith("ok") else "red"))
    for evaluation in run.evaluations:
        console.print()
        print_evaluation(evaluation, console)
    console.print()
    if (run.run_dir / runs.TENSORBOARD).is_dir():
        console.print(f"tensorboard logs: tensorboard --logdir {run.run_dir / runs.TENSORBOARD}", soft_wrap=True)
    if report_path is not None:
        console.print(f"report: {report_path}", soft_wrap=True)


def print_evaluation(evaluation: EvaluationSummary, console: Console) -> None:
    """One `nnlab evaluate` result: what was scored and its metrics."""
    console.print(Text.assemble(("evaluation ", "bold"), (evaluation.id, "bold")), soft_wrap=True)
    if evaluation.note:
        console.print(Text(evaluation.note, style="yellow"), soft_wrap=True)
    data = evaluation.data
    sizes = " / ".join(f"{k} {v:,}" for k, v in (data.get("sizes") or {}).items())
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("split", evaluation.split)
    facts.add_row("data", f"{data.get('name', '?')}, {data.get('source', '?')} data: {sizes}")
    if data.get("path"):
        facts.add_row("data path", str(data["path"]))
    facts.add_row("overrides", " ".join(evaluation.overrides) or "none")
    facts.add_row("model", evaluation.model)
    console.print(facts)
    table = _table()
    table.add_column("metric")
    table.add_column(evaluation.split, justify="right")
    for name, value in evaluation.metrics.items():
        table.add_row(name, format_value(value))
    console.print(table)


def metrics_table(run: RunSummary) -> Table:
    table = _table()
    table.add_column("metric")
    for split in run.splits:
        table.add_column(split, justify="right")
    for name in run.metric_names():
        values = (run.metrics[split].get(name) for split in run.splits)
        table.add_row(name, *("-" if value is None else format_value(value) for value in values))
    return table


def confusion_table(run: RunSummary) -> Table:
    """Counts on validation; the diagonal (right answers) in bold."""
    confusion = run.confusion
    table = _table()
    table.add_column("true \\ pred")
    for name in confusion.class_names:
        table.add_column(name, justify="right")
    for i, name in enumerate(confusion.class_names):
        cells = [Text(str(int(v)), style="bold" if i == j else ("red" if v else "dim"))
                 for j, v in enumerate(confusion.matrix[i])]
        table.add_row(name, *cells)
    return table


def print_comparison(comparison: Comparison, console: Console, *, page_path: Path | None = None) -> None:
    """Runs, the config keys that differ (highlighted) and the metrics side by side."""
    labels = comparison.labels
    runs_table = _table()
    runs_table.add_column("")
    runs_table.add_column("id", no_wrap=True, min_width=max(len(r.run_id) for r in comparison.runs))
    for column in ("name", "status", "duration"):
        runs_table.add_column(column)
    for label, run in zip(labels, comparison.runs):
        runs_table.add_row(label, run.run_id, run.name, Text(run.status, STATUS_STYLE.get(run.status, "")),
                           format_duration(run.duration_s))
    console.print(Text("runs", style="bold"), runs_table)

    count = len(comparison.differing)
    console.print()
    if count:
        console.print(Text(f"config differences ({count} of {len(comparison.keys)} keys differ)", style="bold"),
                      _differences(labels, "key", comparison.differing, comparison.values))
    else:
        console.print(Text(f"config differences: none (all {len(comparison.keys)} keys are equal)", style="bold"))

    if comparison.environment_differing:
        console.print()
        console.print(Text(f"environment differences ({len(comparison.environment_differing)})", style="bold"),
                      _differences(labels, "entry (meta.json)", comparison.environment_differing,
                                   comparison.environment_values))
    note = comparison.reproducibility_note()
    if note:
        console.print()
        console.print(Text(note, style="bold red"), soft_wrap=True)

    metrics = _table()
    metrics.add_column("split")
    metrics.add_column("metric")
    for label in labels:
        metrics.add_column(label, justify="right")
    for split, name, values in comparison.metric_rows():
        metrics.add_row(split, name, *(format_value(v) if v is not None else "-" for v in values))
    console.print()
    console.print(Text("final metrics", style="bold"), metrics)
    if page_path is not None:
        console.print()
        console.print(f"comparison page: {page_path}", soft_wrap=True)


def _differences(labels: list[str], heading: str, keys: list[str], values) -> Table:
    """One row per differing key, one column per run, the values highlighted."""
    table = _table()
    table.add_column(heading, style="bold yellow", no_wrap=True)
    for label in labels:
        table.add_column(label)
    for key in keys:
        table.add_row(key, *(Text(_show(v), style="yellow") for v in values(key)))
    return table


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)


def _show(value) -> str:
    return "(absent)" if value is MISSING else format_config_value(value)


__all__ = ["format_duration", "print_comparison", "print_evaluation", "print_run", "status_line"]
