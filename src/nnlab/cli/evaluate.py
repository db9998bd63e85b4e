"""`nnlab evaluate`: score a trained run on a split of its data, or of other data via data.* overrides."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import allow_incomplete_option, device_option, handle_errors, run_argument, runs_dir_option


@handle_errors
def evaluate(
    run: str = run_argument(),
    overrides: Optional[list[str]] = typer.Argument(None, help="data.key=value overrides (values as YAML); "
                                                               "no other keys: the model is already trained."),
    split: str = typer.Option("val", "--split", help="Which split to score: val, test or train."),
    allow_incomplete: bool = allow_incomplete_option(),
    device: str = device_option(),
    runs_dir: Optional[str] = runs_dir_option(),
) -> None:
    """Score a trained run with the metrics training uses; write them into the run's evaluations/ folder.

    Each evaluation gets its own folder (metrics.json, predictions, confusion matrix or examples, plots,
    evaluation.json with the overrides used); `nnlab report RUN` shows each one. Nothing else in the run
    folder is changed.

    Example: nnlab evaluate latest data.n_val=500 --split val
    """
    from nnlab.trained.evaluate import evaluate_run

    evaluate_run(run, overrides or [], split=split, runs_dir=runs_dir, allow_incomplete=allow_incomplete,
                 device=device)
