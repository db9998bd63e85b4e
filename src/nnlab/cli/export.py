"""`nnlab export`: a trained run's model as a Keras file, a TensorFlow SavedModel or ONNX, checked on reload."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import allow_incomplete_option, device_option, handle_errors, run_argument, runs_dir_option


@handle_errors
def export(
    run: str = run_argument(),
    fmt: str = typer.Option(..., "--format", help="keras, savedmodel or onnx (onnx needs pip install 'nnlab[onnx]')."),
    out: Optional[str] = typer.Option(None, "--out", help="Where to write (default: the run's exports/ folder)."),
    allow_incomplete: bool = allow_incomplete_option(),
    device: str = device_option(),
    runs_dir: Optional[str] = runs_dir_option(),
) -> None:
    """Export a trained run's model for another program, and check the export before reporting it done.

    keras: the .keras file as is. savedmodel: a TensorFlow SavedModel for serving (Keras's own export).
    onnx: an .onnx file (Keras's export through tf2onnx). Each export is loaded back, run on the first
    validation examples (keras: on random inputs, so it needs no data) and compared with the Keras model;
    the tolerance is printed.

    Example: nnlab export latest --format onnx --out model.onnx
    """
    from nnlab.trained.export import export_run

    export_run(run, fmt, out=out, runs_dir=runs_dir, allow_incomplete=allow_incomplete, device=device)
