"""`nnlab export`: a trained run's model as a Keras file, a TensorFlow SavedModel or ONNX, checked on reload."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import handle_errors


@handle_errors
def export(
    run: str = typer.Argument(..., help="Run id, unique id prefix, run folder path, or latest."),
    fmt: str = typer.Option(..., "--format", help="keras, savedmodel or onnx (onnx needs pip install 'nnlab[onnx]')."),
    out: Optional[str] = typer.Option(None, "--out", help="Where to write (default: the run's exports/ folder)."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                          help="Use the last checkpoint of a run that did not complete."),
    device: str = typer.Option("auto", "--device", help="cpu, gpu or auto."),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR",
                                           help="Folder of runs (default: runs)."),
) -> None:
    """Export a trained run's model for another program, and check the export before reporting it done.

    keras: the .keras file as is. savedmodel: a TensorFlow SavedModel for serving (Keras's own export).
    onnx: an .onnx file (Keras's export through tf2onnx). Each export is loaded back, run on the first
    validation examples and compared with the Keras model; the tolerance is printed.

    Example: nnlab export latest --format onnx --out model.onnx
    """
    from nnlab.export import export_run

    export_run(run, fmt, out=out, runs_dir=runs_dir, allow_incomplete=allow_incomplete, device=device)
