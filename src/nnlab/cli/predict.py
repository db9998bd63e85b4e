"""`nnlab predict`: a trained run's predictions for images, .npy arrays, CSV rows or question strings."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import allow_incomplete_option, device_option, handle_errors, run_argument, runs_dir_option


@handle_errors
def predict(
    run: str = run_argument(),
    inputs: list[str] = typer.Argument(..., help="PNG/JPEG images, .npy arrays (one example or a batch), CSV files "
                                                 "of feature rows, or question strings for seq2seq runs."),
    out: Optional[str] = typer.Option(None, "--out", help="Also write the rows as CSV, or the raw outputs as .npy."),
    top: int = typer.Option(1, "--top", help="Classification: show the K most likely classes."),
    show: bool = typer.Option(False, "--show", help="Print how each input was converted for the model."),
    invert: bool = typer.Option(False, "--invert", help="Turn images' values round (255 - value): dark ink on light "
                                "paper for a run trained on light ink on dark, as MNIST is."),
    allow_incomplete: bool = allow_incomplete_option(),
    device: str = device_option(),
    runs_dir: Optional[str] = runs_dir_option(),
) -> None:
    """Predict with a trained run: one row per input (a batch file gives one row per example).

    Classification rows name the class and its probability (the top K with --top), regression rows the
    value(s), seq2seq rows the decoded answer. Images are converted to the run's input size, channels
    and scaling exactly as its dataset loader prepares training images (--show prints each step).
    .npy files are never unpickled. Inputs that cannot be used are each named in one line, after the
    others are predicted, and the exit code is 2.

    Example: nnlab predict latest my_digit.png --top 3 --show
    """
    from nnlab.trained.predict import predict_run

    predict_run(run, inputs, out=out, top=top, show=show, invert=invert, runs_dir=runs_dir,
                allow_incomplete=allow_incomplete, device=device)
