"""`nnlab compare`: runs side by side, config differences highlighted, and a compare-*.html page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nnlab.cli._common import handle_errors
from nnlab.errors import ConfigError


@handle_errors
def compare(
    run_refs: list[str] = typer.Argument(..., metavar="RUN", help="Two or more runs: ids, prefixes, paths or latest."),
    out: Optional[str] = typer.Option(
        None, "--out", help="Where to write the page (default: compare-<ids>.html beside the runs)."),
    runs_dir: Optional[str] = typer.Option(
        None, "--runs-dir", envvar="NNLAB_RUNS_DIR", help="Folder of runs (default: runs)."),
) -> None:
    """Compare runs: the config keys that differ, metrics side by side, learning curves overlaid.

    \b
    Example:
      nnlab compare 20250101-120000-digits_mlp-1a2b 20250101-121500-digits_mlp-3c4d
    """
    from rich.console import Console

    from nnlab import runs
    from nnlab.reports.compare import compare_runs, comparison_file_name
    from nnlab.reports.summary import read_run
    from nnlab.reports.terminal import print_comparison

    if len(run_refs) < 2:
        raise ConfigError(f"nnlab compare: give at least two runs (got {len(run_refs)})")
    folder = runs_dir or runs.default_runs_dir()
    run_dirs = [runs.find_run(ref, folder) for ref in run_refs]
    seen: dict[Path, str] = {}
    for ref, run_dir in zip(run_refs, run_dirs):
        key = run_dir.resolve()
        if key in seen:
            raise ConfigError(f"nnlab compare: {seen[key]!r} and {ref!r} are the same run ({run_dir.name})")
        seen[key] = ref
    comparison = compare_runs([read_run(d) for d in run_dirs])
    from nnlab.reports.compare_page import write_comparison_report

    page = Path(out) if out else run_dirs[0].parent / comparison_file_name([d.name for d in run_dirs])
    if page.exists() and (page.parent / runs.META).is_file() and not page.name.startswith("compare-"):
        raise ConfigError(f"--out {page}: is a file of run {page.parent.name}; choose another name")
    write_comparison_report(comparison, page)
    print_comparison(comparison, Console(highlight=False), page_path=page)
