"""The Typer app: composes one thin module per command; nothing heavy is imported here."""

from __future__ import annotations

import os
import sys

import typer

from nnlab import __version__
from nnlab.cli import _common
from nnlab.cli import compare as compare_command
from nnlab.cli import evaluate as evaluate_command
from nnlab.cli import export as export_command
from nnlab.cli import inspect as inspect_command
from nnlab.cli import list as list_command
from nnlab.cli import predict as predict_command
from nnlab.cli import report as report_command
from nnlab.cli import runs as runs_command
from nnlab.cli import sweep as sweep_command
from nnlab.cli import train as train_command

app = typer.Typer(
    name="nnlab",
    help="Train Keras models from short YAML files; every run leaves a folder full of evidence.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags without a `<bool>` type column, and nothing heavy imported
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnlab {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Train Keras models from short YAML files; every run leaves a folder full of evidence."""
    _common.state["debug"] = debug or _common.state["debug"]


# Unknown options reach `train` as arguments, so `--epochs 2` is answered with the key=value to write.
app.command("train", context_settings={"allow_interspersed_args": True, "ignore_unknown_options": True})(
    train_command.train)
app.command("sweep", context_settings={"allow_interspersed_args": True})(sweep_command.sweep)
app.command("list")(list_command.list_components)
app.command("runs")(runs_command.list_runs)
app.command("report")(report_command.report)
app.command("compare")(compare_command.compare)
app.command("inspect")(inspect_command.inspect)
app.command("evaluate", context_settings={"allow_interspersed_args": True})(evaluate_command.evaluate)
app.command("predict", context_settings={"allow_interspersed_args": True})(predict_command.predict)
app.command("export")(export_command.export)


def run() -> None:
    """The `nnlab` command. Once a command that loaded Keras is done (its files written and closed), the
    process ends without Python's teardown of TensorFlow/JAX, which takes about half a second."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if "keras" not in sys.modules:
        sys.exit(code)
    if not isinstance(code, int):  # sys.exit("message") or sys.exit(None)
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
