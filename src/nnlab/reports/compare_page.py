"""The comparison page (compare-*.html): runs side by side, config and environment differences, metrics, curves."""

from __future__ import annotations

from pathlib import Path

from nnlab import runs
from nnlab.errors import ConfigError
from nnlab.reports.compare import MISSING, Comparison, compare_runs, comparison_file_name
from nnlab.reports.html import Section, esc, image, render_page, table
from nnlab.reports.summary import format_config_value, read_run
from nnlab.reports.terminal import status_line

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


def compare_refs(run_refs: list[str], runs_dir: str | Path, out: str | Path | None = None
                 ) -> tuple[Comparison, Path]:
    """`nnlab compare`: the runs `run_refs` name (each a different run), compared, and the page written to `out`
    (default: compare-<ids>.html beside the first run), never over a file of a run; returns both."""
    run_dirs = [runs.find_run(ref, runs_dir) for ref in run_refs]
    seen: dict[Path, str] = {}
    for ref, run_dir in zip(run_refs, run_dirs):
        key = run_dir.resolve()
        if key in seen:
            raise ConfigError(f"nnlab compare: {seen[key]!r} and {ref!r} are the same run ({run_dir.name})")
        seen[key] = ref
    comparison = compare_runs([read_run(d) for d in run_dirs])
    page = Path(out) if out else run_dirs[0].parent / comparison_file_name([d.name for d in run_dirs])
    if page.exists() and (page.parent / runs.META).is_file() and not page.name.startswith("compare-"):
        raise ConfigError(f"--out {page}: is a file of run {page.parent.name}; choose another name")
    write_comparison_report(comparison, page)
    return comparison, page


def _cell(value: object) -> str:
    return "(absent)" if value is MISSING else format_config_value(value)


__all__ = ["comparison_sections", "write_comparison_report"]
