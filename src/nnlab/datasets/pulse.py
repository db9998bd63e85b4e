"""pulse: rectangular pulses in, triangles out (seed 002's RNN pulse converter), per time step."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from nnlab.datasets.base import (
    DATASETS,
    DataParams,
    Dataset,
    DatasetSpec,
    cached_arrays,
    check_path,
    data_places,
    read_npy,
    take_first,
)
from nnlab.errors import ConfigError

COURSE_FILES = ("pulsedata1-trn.npy", "pulsedata1-val.npy")
_GENERATOR_VERSION = 1  # bump when the generated data changes, so old caches are not reused


class PulseParams(DataParams):
    n_train: int | None = Field(500, ge=1, description="training sequences (the lab: 500)")
    n_val: int | None = Field(500, ge=1, description="validation sequences (the lab: 500)")
    length: int = Field(100, ge=10, description="time steps per sequence (generator)")
    min_width: int = Field(2, ge=1, description="shortest pulse (generator)")
    max_width: int = Field(10, ge=1, description="longest pulse (generator)")
    min_height: float = Field(0.2, gt=0, description="lowest pulse (generator)")
    max_height: float = Field(1.0, gt=0, description="highest pulse (generator)")
    max_extra_gap: int = Field(15, ge=0, description="the gap after a pulse is 2*width plus up to this (generator)")
    reverse: bool = Field(False, description="the reverse problem: triangles in, pulses out, time reversed")
    path: str | None = Field(None, description="folder with the course files pulsedata1-trn.npy / -val.npy")
    allow_pickle: bool = Field(False, description="read course files saved as pickled object arrays (trusted files only)")

    @model_validator(mode="after")
    def _ranges(self) -> "PulseParams":
        if self.min_width > self.max_width:
            raise ValueError(f"min_width {self.min_width} is above max_width {self.max_width}")
        if self.min_height > self.max_height:
            raise ValueError(f"min_height {self.min_height} is above max_height {self.max_height}")
        return self


def make_pulses(n: int, length: int, rng: np.random.Generator, min_width=2, max_width=10, min_height=0.2,
                max_height=1.0, max_extra_gap=15) -> tuple[np.ndarray, np.ndarray]:
    """`n` pairs (pulse train, triangle train) of `length` steps.

    A pulse of width w and height h is followed by a triangle that starts where the pulse ends,
    rises for w steps to h and falls for w steps (base 2w); the next pulse starts at least 2w steps
    after the pulse ends, so triangles never overlap pulses.
    """
    x = np.zeros((n, length), dtype="float32")
    d = np.zeros((n, length), dtype="float32")
    for i in range(n):
        t = int(rng.integers(0, max_width + 1))
        while True:
            width = int(rng.integers(min_width, max_width + 1))
            height = float(rng.uniform(min_height, max_height))
            if t + width > length:
                break
            x[i, t : t + width] = height
            ramp = height * (1.0 - np.abs(np.arange(1, 2 * width + 1) - width) / width)  # up to h at step w, down to 0
            end = min(length, t + width + 2 * width)
            d[i, t + width : end] = ramp[: end - t - width]
            t += width + 2 * width + int(rng.integers(0, max_extra_gap + 1))
    return x, d


def read_course_files(path: str | None, allow_pickle: bool = False
                      ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], str] | None:
    """The course's pulsedata1-trn.npy / -val.npy (each `x, d = np.load(...)`), if found."""
    check_path(path)
    for folder in data_places("pulse", path):
        folder = folder.parent if folder.is_file() else folder
        files = [folder / name for name in COURSE_FILES]
        if all(f.is_file() for f in files):
            pairs = [read_npy(f, allow_pickle) for f in files]
            try:
                (x_train, d_train), (x_val, d_val) = pairs
                arrays = tuple(np.asarray(a, dtype="float32") for a in (x_train, d_train, x_val, d_val))
            except (ValueError, TypeError):
                arrays = ()
            if len(arrays) != 4 or any(a.ndim != 2 for a in arrays) or arrays[0].shape != arrays[1].shape \
                    or arrays[2].shape != arrays[3].shape:
                raise ConfigError(f"{folder}: each pulse file must hold two (sequences, time) arrays, inputs and targets")
            return arrays, str(folder)
    if path:
        raise ConfigError(f"data.path: {path} holds no {' and '.join(COURSE_FILES)}")
    return None


@DATASETS.register(PulseParams)
def load_pulse(n_train=500, n_val=500, val_split=None, seed=0, length=100, min_width=2, max_width=10, min_height=0.2,
               max_height=1.0, max_extra_gap=15, reverse=False, path=None, allow_pickle=False) -> Dataset:
    """Pulse trains -> triangle trains (or the reverse), one target per time step; normalised error."""
    if val_split is not None:
        raise ConfigError("data.val_split: pulse has its own validation sequences (use n_val)")
    found = read_course_files(path, allow_pickle)
    if found is not None:
        (x_train, d_train, x_val, d_val), source = found
        meta = {"source": "real", "path": source}
    else:
        params = {"n": n_train + n_val, "length": length, "min_width": min_width, "max_width": max_width,
                  "min_height": min_height, "max_height": max_height, "max_extra_gap": max_extra_gap, "seed": seed,
                  "v": _GENERATOR_VERSION}

        def make():
            x, d = make_pulses(n_train + n_val, length, np.random.default_rng(seed), min_width, max_width,
                               min_height, max_height, max_extra_gap)
            return {"x": x, "d": d}

        arrays, key = cached_arrays("pulse", params, make)
        x_train, d_train = arrays["x"][:n_train], arrays["d"][:n_train]
        x_val, d_val = arrays["x"][n_train:], arrays["d"][n_train:]
        meta = {"source": "generated", "generator": params, "cache": key}
    if reverse:  # as the lab does it: swap roles and reverse time
        x_train, d_train = d_train[:, ::-1], x_train[:, ::-1]
        x_val, d_val = d_val[:, ::-1], x_val[:, ::-1]
    meta["reverse"] = reverse
    x_train, d_train = take_first(n_train, x_train, d_train)
    x_val, d_val = take_first(n_val, x_val, d_val)
    x_train, d_train, x_val, d_val = (np.ascontiguousarray(a[..., None], dtype="float32")
                                      for a in (x_train, d_train, x_val, d_val))
    spec = DatasetSpec("sequence_regression", x_train.shape[1:], 1, output_length=x_train.shape[1])
    return Dataset(x_train, d_train, x_val, d_val, spec, meta=meta)


__all__ = ["load_pulse", "make_pulses", "read_course_files"]
