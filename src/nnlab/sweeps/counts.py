"""Parameter counts of a sweep's points: each model is built, never trained (one backend import); and the
params-only sweep (`nnlab sweep --params-only`), a finished sweep folder of those counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nnlab import runs
from nnlab.errors import ConfigError
from nnlab.sweeps import aggregate
from nnlab.sweeps.spec import Sweep, validate_point


def parameter_counts(sweep: Sweep, points: list[dict[str, Any]], device: str = "cpu", backend_name: str | None = None
                     ) -> list[int]:
    """The total parameter count of each point's model, prepared as its run would prepare it (`experiment.prepare`:
    nothing trained; points with the same data section share its loaded data where `datasets.load` can). Built on
    `backend_name` (--backend), else the base config's `backend:`, else $KERAS_BACKEND/TensorFlow."""
    from nnlab.experiment import parameter_counts as count
    from nnlab.experiment import prepare

    data_cache: dict = {}
    out = []
    for params in points:
        config = validate_point(sweep, params)
        # Nothing is trained, so no step is timed to choose the steps per call (`auto`): one, the count is the same.
        config = config.model_copy(update={"train": config.train.model_copy(update={"steps_per_execution": 1})})
        try:
            *_, model = prepare(config, source=sweep.source, device=device, backend=backend_name, data_cache=data_cache)
            out.append(count(model)["total"])
        except ConfigError as exc:
            if exc.file == sweep.source:
                exc.file = None  # named once, before the point
            shown = ", ".join(f"{p}={json.dumps(v)}" for p, v in params.items())
            raise ConfigError(f"{sweep.source}: with {shown}: {exc}") from None
    return out


def write_params_only(sweep: Sweep, runs_dir: str | Path, command: list[str], device: str = "cpu",
                      backend_name: str | None = None) -> Path:
    """A completed sweep folder whose trials are the points' parameter counts (nothing trained); return it."""
    if sweep.spec.method == "bayes":
        raise ConfigError(f"{sweep.source}: --params-only needs a grid or random sweep (bayes picks points as it trains)")
    counts = parameter_counts(sweep, sweep.points, device=device, backend_name=backend_name)
    sweep_dir = runs.create_run_dir(aggregate.sweeps_dir(runs_dir), sweep.name)
    aggregate.write_sweep_files(sweep_dir, {**sweep.to_dict(), "source": sweep.source, "params_only": True,
                                            "command": command}, sweep.base)
    seed = sweep.base.get("seed", 0)
    rows = [{"trial": i, "status": "completed", "seed": seed, **params, "parameters": n, "point": i, "attempt": 1}
            for i, (params, n) in enumerate(zip(sweep.points, counts))]
    metric = sweep.spec.metric.name
    aggregate.write_trials(sweep_dir, rows, sweep.swept, metric)
    aggregate.write_summary(sweep_dir, aggregate.summarize(rows, sweep.swept, metric), sweep.swept, metric)
    aggregate.write_state(sweep_dir, "completed", params_only=True)
    return sweep_dir


__all__ = ["parameter_counts", "write_params_only"]
