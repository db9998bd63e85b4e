"""The two dashboards sweep users already know: the optuna-dashboard command that opens a sweep's own study
storage, and TensorBoard HParams records of its trials (tensorboard/ in the sweep folder). Neither imports
TensorFlow: the event files are written with the tensorboard package's protobufs and record writer."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shlex
import time
from pathlib import Path
from typing import Any

from nnlab import runs
from nnlab.sweeps import aggregate

TENSORBOARD = "tensorboard"  # runs/sweeps/<id>/tensorboard/: one folder per trial


# ---------------------------------------------------------------------------------------------
# optuna-dashboard.
def without_password(url: str) -> str:
    """The URL without any password (`user:pw@host` -> `user@host`, `password=` dropped from the query): a
    command we print may be pasted where `ps` shows it; libpq finds the password in PGPASSWORD or ~/.pgpass."""
    url = aggregate.URL_PASSWORD.sub(r"\1@", url)
    head, mark, query = url.partition("?")
    kept = [part for part in query.split("&") if part and not re.match(r"\s*password\s*=", part, re.IGNORECASE)]
    return head + (mark + "&".join(kept) if kept else "")


def _from_here(path: Path) -> str:
    """`path` as the user reaches it from the current folder (relative when it is below), quoted for a shell."""
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return shlex.quote(str(path))


def optuna_dashboard_command(sweep_dir: Path, storage_url: str) -> str:
    """`optuna-dashboard STORAGE`: the sweep's journal file or its database URL without the password."""
    if storage_url == "journal":
        return f"optuna-dashboard {_from_here(Path(sweep_dir) / aggregate.JOURNAL)}"
    return f"optuna-dashboard {shlex.quote(without_password(storage_url))}"


def tensorboard_command(sweep_dir: Path) -> str:
    """`tensorboard --logdir SWEEP_FOLDER`: its HParams dashboard lists the trials `write_hparams` recorded."""
    return f"tensorboard --logdir {_from_here(Path(sweep_dir))}"


def optuna_dashboard_hint(sweep_dir: Path, storage_url: str) -> str:
    """The line `nnlab sweep` prints at its start: the command, then how to get it or where the password comes from."""
    line = f"live view: {optuna_dashboard_command(sweep_dir, storage_url)}  (then open http://127.0.0.1:8080)"
    if without_password(storage_url) != storage_url:
        line += "; the password from PGPASSWORD or ~/.pgpass"
    if importlib.util.find_spec("optuna_dashboard") is None:
        line += "; pip install 'nnlab[dashboard]' first"
    return line


# ---------------------------------------------------------------------------------------------
# TensorBoard HParams.
_STATUS = {"completed": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "pruned": "STATUS_FAILURE"}


def _hparam_value(value: Any) -> bool | int | float | str:
    """TensorBoard takes bool, number or string: lists (model.hidden) become their JSON text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def write_hparams(sweep_dir: str | Path) -> Path | None:
    """TensorBoard HParams records of every finished trial, from trials.csv: `tensorboard --logdir <sweep folder>`
    lists them in its HParams dashboard (each trial's swept values and seed, its status and the sweep's metric).
    Rewritten whole each time (the folder is derived data). Returns the folder, or None when the tensorboard
    package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        return None

    sweep = aggregate.read_sweep(sweep_dir)
    folder = Path(sweep_dir) / TENSORBOARD
    with runs.atomic_folder(folder) as work:  # two hosts finishing one sweep each build their own, then swap
        _write_hparams(sweep, work)
    return folder


def _write_hparams(sweep: aggregate.SweepSummary, folder: Path) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
    from tensorboard.summary.writer.record_writer import RecordWriter

    now = time.time()

    def write(logdir: Path, *summaries) -> None:
        # The event file format by hand: tensorboard's EventFileWriter imports TensorFlow (for gfile) where it is
        # installed, which costs seconds and prints its C++ start-up lines.
        logdir.mkdir(parents=True, exist_ok=True)
        events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2"),
                  *(event_pb2.Event(wall_time=now, step=0, summary=summary) for summary in summaries)]
        with (logdir / f"events.out.tfevents.{int(now):010d}.nnlab").open("wb") as f:
            writer = RecordWriter(f)
            for event in events:
                writer.write(event.SerializeToString())

    hparams = list(dict.fromkeys([*sweep.swept, "seed"]))  # seed may itself be swept
    config = summary_v2.hparams_config_pb([summary_v2.HParam(name) for name in hparams],
                                          [summary_v2.Metric(sweep.metric, display_name=sweep.metric)],
                                          time_created_secs=now)
    write(folder, config)
    for row in sweep.rows:
        status = row.get("status")
        if status not in _STATUS:
            continue  # waiting or running: nothing to show yet
        values = {name: _hparam_value(row.get(name)) for name in hparams if row.get(name) is not None}
        start = summary_v2.hparams_pb(values, start_time_secs=now)  # one session per trial, its seed an hparam
        end_info = plugin_data_pb2.SessionEndInfo(status=getattr(api_pb2, _STATUS[status]), end_time_secs=now)
        end = summary_pb2.Summary()
        end.value.add(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                      metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(
                          session_end_info=end_info)))
        summaries = [start]
        value = row.get(sweep.metric)
        if status == "completed" and isinstance(value, (int, float)) and math.isfinite(value):
            summaries.append(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=sweep.metric,
                                                                                  simple_value=float(value))]))
        write(folder / f"trial-{int(row['trial']):03d}-seed{row.get('seed')}", *summaries, end)


def write_hparams_line(sweep_dir: Path) -> str:
    """`write_hparams`, and the one line `nnlab sweep` prints about it (a failure here never fails the sweep)."""
    from nnlab.errors import first_line

    try:
        written = write_hparams(sweep_dir)
    except Exception as exc:  # noqa: BLE001  (a broken tensorboard install: the trials are what matter)
        return f"note: no TensorBoard HParams records: {type(exc).__name__}: {first_line(exc)}"
    if written is None:
        return "note: no TensorBoard HParams records: the tensorboard package is missing (pip install tensorboard)"
    return f"TensorBoard HParams: {tensorboard_command(sweep_dir)}"


__all__ = ["optuna_dashboard_command", "optuna_dashboard_hint", "tensorboard_command", "without_password",
           "write_hparams", "write_hparams_line"]
