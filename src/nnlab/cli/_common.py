"""What every command shares: turning NnlabError into one line on stderr and its exit code."""

from __future__ import annotations

import functools
import os
import signal
import sys
import traceback
from typing import Callable

import typer

from nnlab.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, NnlabError, first_line, one_line

state = {"debug": bool(os.environ.get("NNLAB_DEBUG"))}


def handle_errors(fn: Callable) -> Callable:
    """Run a command; map errors to one clear line and an exit code (a traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM ends a run like Ctrl-C: marked, resumable
        try:
            return fn(*args, **kwargs)
        except NnlabError as exc:
            _show(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # `nnlab runs | head -3`: the reader has all it wants
            _silence_stdout()
            raise typer.Exit(EXIT_OK) from None
        except KeyboardInterrupt:
            _show("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a failure inside Keras or a bug: one line, details with --debug
            first = first_line(exc) if str(exc).strip() else ""
            _show(f"error: {type(exc).__name__}: {first} (run with --debug for the traceback)")
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


def _show(line: str) -> None:
    if state["debug"]:
        traceback.print_exc()
    typer.echo(one_line(line, 1000), err=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (in-process test runners)
        pass


def _terminate(signum, frame):
    raise KeyboardInterrupt


# Arguments and options shared by the commands that use a trained run (evaluate, predict, export).
def run_argument():
    return typer.Argument(..., help="Run id, unique id prefix, run folder path, or latest.",
                          autocompletion=complete_run)


def complete_run(incomplete: str) -> list[str]:
    """Shell completion of a run argument: `latest` and the run ids in $NNLAB_RUNS_DIR (default runs)."""
    from nnlab import runs

    try:
        ids = [p.name for p in runs.list_runs(runs.default_runs_dir())]
    except (OSError, NnlabError):
        ids = []
    return [name for name in ("latest", *ids) if name.startswith(incomplete)]


def allow_incomplete_option():
    return typer.Option(False, "--allow-incomplete", help="Use the last checkpoint of a run that did not complete.")


def device_option():
    return typer.Option("auto", "--device", help="cpu, gpu or auto.")


def runs_dir_option():
    return typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR", help="Folder of runs (default: runs).")
