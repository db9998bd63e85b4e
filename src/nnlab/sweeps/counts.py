"""Parameter counts of a sweep's points: each model is built, never trained (one backend import)."""

from __future__ import annotations

import json
from typing import Any

from nnlab.errors import ConfigError
from nnlab.sweeps.spec import Sweep, validate_point


def parameter_counts(sweep: Sweep, points: list[dict[str, Any]], device: str = "cpu", backend_name: str | None = None
                     ) -> list[int]:
    """The total parameter count of each point's model; datasets are loaded once per distinct data section.
    Built on `backend_name` (--backend), else the base config's `backend:`, else $KERAS_BACKEND/TensorFlow."""
    from nnlab import datasets, models
    from nnlab.experiment import parameter_counts as count
    from nnlab.training import backend

    backend.configure(device, backend=backend_name or sweep.base.get("backend"))
    specs: dict[str, Any] = {}
    out = []
    for params in points:
        config = validate_point(sweep, params)
        key = json.dumps(config.data.model_dump(mode="json"), sort_keys=True)
        try:
            if key not in specs:
                specs[key] = datasets.load(config.data).spec
            out.append(count(models.build(config.model, specs[key]))["total"])
        except ConfigError as exc:
            shown = ", ".join(f"{p}={json.dumps(v)}" for p, v in params.items())
            raise ConfigError(f"{sweep.source}: with {shown}: {exc}") from None
    return out
