"""`nnlab compare`: runs side by side, config differences highlighted, and a compare-*.html page."""

from __future__ import annotations

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
    from nnlab.reports.compare_page import compare_refs
    from nnlab.reports.terminal import print_comparison

    if len(run_refs) < 2:
        raise ConfigError(f"nnlab compare: give at least two runs (got {len(run_refs)})")
    comparison, page = compare_refs(run_refs, runs_dir or runs.default_runs_dir(), out)
    print_comparison(comparison, Console(highlight=False), page_path=page)
