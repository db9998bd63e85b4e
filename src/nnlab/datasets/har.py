"""har: human activity from a 3-axis accelerometer, windows of 150 steps, 6 activities (seed 001)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from nnlab.datasets.base import (
    DATASETS,
    DataParams,
    Dataset,
    DatasetSpec,
    cached_arrays,
    check_path,
    data_places,
    not_found,
    read_h5,
    split_off,
    take_first,
)
from nnlab.errors import ConfigError

# The course's label order (one-hot columns 1..6), which is also the alphabetical order of WISDM's names.
ACTIVITIES = ("downstairs", "jogging", "sitting", "standing", "upstairs", "walking")
COURSE_FILE = "assign3_data3.h5"
WISDM_FILES = ("WISDM_ar_v1.1_raw.txt", "WISDM_raw.txt")
_GENERATOR_VERSION = 1


class HarParams(DataParams):
    val_split: float | None = Field(0.1, gt=0, lt=1, description="fraction of the training windows for validation")
    path: str | None = Field(None, description="the course .h5 (trX, trY, tstX, tstY) or WISDM raw .txt, or their folder")
    synthetic: bool | None = Field(None, description="true: the generator; false: real files only; default: real if found")
    window: int = Field(150, ge=2, description="steps per window (WISDM text and generator)")
    stride: int | None = Field(None, ge=1, description="steps between WISDM window starts (default: window, no overlap)")
    test_split: float = Field(600 / 3600, gt=0, lt=1, description="WISDM: fraction of windows kept for testing")
    n_train_generated: int = Field(3000, ge=6, description="generator: training windows (the course: 3,000)")
    n_test_generated: int = Field(600, ge=6, description="generator: test windows (the course: 600)")
    normalize: bool = Field(False, description="standardise each axis with the training mean and std")


def read_course_h5(path: Path) -> dict[str, np.ndarray]:
    """The course file: trX (N,150,3), trY (N,6) one-hot, tstX, tstY -> float windows, integer labels."""
    arrays = read_h5(path, ("trX", "trY", "tstX", "tstY"))
    for x, y in (("trX", "trY"), ("tstX", "tstY")):
        xs, ys = arrays[x].shape, arrays[y].shape
        if len(xs) != 3 or xs[2] != 3 or ys[:1] != xs[:1] or not (len(ys) == 1 or (len(ys) == 2 and ys[1] == 6)):
            raise ConfigError(f"{path}: {x} {xs} and {y} {ys}: expected (N, steps, 3) windows and (N, 6) one-hot "
                              "or (N,) labels 1..6")
    labels = {k: (v.argmax(axis=1) if v.ndim == 2 else v.astype(int) - 1) for k, v in arrays.items() if k.endswith("Y")}
    if any(len(v) and (v.min() < 0 or v.max() >= len(ACTIVITIES)) for v in labels.values()):
        raise ConfigError(f"{path}: labels outside 1..{len(ACTIVITIES)}")
    return {"x_train": arrays["trX"].astype("float32"), "y_train": labels["trY"].astype("int32"),
            "x_test": arrays["tstX"].astype("float32"), "y_test": labels["tstY"].astype("int32")}


def read_wisdm(path: Path, window: int = 150, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """WISDM raw text (`user,activity,timestamp,x,y,z;` records) -> windows (n, window, 3) and labels.

    Windows never cross a change of user or activity; malformed records (WISDM has a few) are skipped.
    """
    names = {name: i for i, name in enumerate(ACTIVITIES)}
    records = Path(path).read_text(errors="replace").replace("\n", ";").split(";")
    segments: list[tuple[int, list[list[float]]]] = []
    current = None
    for record in records:
        fields = [f.strip() for f in record.strip().strip(",").split(",")]
        if len(fields) != 6:
            continue
        activity = names.get(fields[1].lower())
        try:
            xyz = [float(v) for v in fields[3:6]]
        except ValueError:
            continue
        if activity is None:
            raise ConfigError(f"data.path: {path}: unknown activity {fields[1]!r} (expected: {', '.join(ACTIVITIES)})")
        key = (fields[0], activity)
        if key != current:
            segments.append((activity, []))
            current = key
        segments[-1][1].append(xyz)
    stride = stride or window
    x, y = [], []
    for activity, rows in segments:
        rows = np.asarray(rows, dtype="float32")
        for start in range(0, len(rows) - window + 1, stride):
            x.append(rows[start : start + window])
            y.append(activity)
    if not x:
        raise ConfigError(f"data.path: {path}: no run of {window} records of one user and activity")
    return np.stack(x), np.asarray(y, dtype="int32")


def make_activity_windows(n: int, window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic accelerometer windows (20 Hz, m/s^2), balanced over the six activities.

    Moving activities are periodic gait signals (fundamental + harmonic, per-axis phase and
    gain) with activity-typical step rates, intensities and phone tilt; sitting and standing
    are gravity on different axes plus sway and sensor noise. Random per-window jitter makes
    neighbouring activities (walking, upstairs, downstairs) overlap.
    """
    # (step rate Hz, vertical amplitude, harmonic share, gravity direction (x, y, z))
    styles = {
        "downstairs": (1.9, 4.5, 0.6, (0.5, 9.2, 2.0)),
        "jogging": (2.7, 9.0, 0.4, (1.0, 9.0, 2.5)),
        "sitting": (0.0, 0.0, 0.0, (1.0, 3.0, 9.2)),
        "standing": (0.0, 0.0, 0.0, (0.8, 9.6, 1.2)),
        "upstairs": (1.6, 3.5, 0.3, (0.3, 9.0, 3.0)),
        "walking": (1.8, 4.0, 0.4, (0.6, 9.4, 1.8)),
    }
    t = np.arange(window) / 20.0
    x = np.empty((n, window, 3), dtype="float32")
    y = np.arange(n) % len(ACTIVITIES)
    rng.shuffle(y)
    for i, label in enumerate(y):
        rate, amplitude, harmonic, gravity = styles[ACTIVITIES[label]]
        g = np.asarray(gravity) + rng.normal(0, 1.0, 3)  # the phone sits differently each time
        signal = np.tile(g, (window, 1))
        if rate:
            f = rate * rng.uniform(0.85, 1.15)
            a = amplitude * rng.uniform(0.7, 1.3)
            phase = rng.uniform(0, 2 * np.pi)
            gait = np.sin(2 * np.pi * f * t + phase) + harmonic * np.sin(4 * np.pi * f * t + 2 * phase + rng.uniform(0, 1))
            gains = np.array([0.35, 1.0, 0.5]) * rng.uniform(0.6, 1.4, 3)
            signal += a * gait[:, None] * gains
        else:
            signal += 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * t + rng.uniform(0, 6))[:, None] * rng.normal(0, 1, 3)
        x[i] = signal + rng.normal(0, 0.6, (window, 3))
    return x, y.astype("int32")


def _can_stratify(labels: np.ndarray) -> bool:
    """Stratified splits need at least two windows of every class (tiny WISDM extracts may lack them)."""
    return np.bincount(labels).max() > 1 and (np.bincount(labels)[np.unique(labels)] > 1).all()


def _find_real(path: str | None) -> tuple[str, Path] | None:
    check_path(path)
    for place in data_places("har", path):
        if place.is_file():
            return ("h5" if place.suffix in (".h5", ".hdf5") else "wisdm"), place
        for kind, names in (("h5", (COURSE_FILE,)), ("wisdm", WISDM_FILES)):
            for name in names:
                if (place / name).is_file():
                    return kind, place / name
    return None


@DATASETS.register(HarParams)
def load_har(n_train=None, n_val=None, val_split=0.1, seed=0, path=None, synthetic=None, window=150, stride=None,
             test_split=600 / 3600, n_train_generated=3000, n_test_generated=600, normalize=False) -> Dataset:
    """Accelerometer windows -> 6 activities: the course .h5, WISDM raw text, or a labelled synthetic generator."""
    found = None if synthetic else _find_real(path)
    if found is None and synthetic is False:
        raise not_found("har", f"{COURSE_FILE} or {WISDM_FILES[0]}", data_places("har", path))
    if found and found[0] == "h5":
        arrays = read_course_h5(found[1])
        meta = {"source": "real", "format": "course h5", "path": str(found[1])}
    elif found:
        x, y = read_wisdm(found[1], window, stride)
        x_train, x_test, y_train, y_test = split_off(x, y, test_split, seed, stratify=_can_stratify(y),
                                                      key="data.test_split")
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        meta = {"source": "real", "format": "WISDM raw text", "path": str(found[1]), "window": window,
                "stride": stride or window}
    else:
        params = {"n_train": n_train_generated, "n_test": n_test_generated, "window": window, "seed": seed,
                  "v": _GENERATOR_VERSION}

        def make():
            rng = np.random.default_rng(seed)
            x_train, y_train = make_activity_windows(n_train_generated, window, rng)
            x_test, y_test = make_activity_windows(n_test_generated, window, rng)
            return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}

        arrays, key = cached_arrays("har", params, make)
        meta = {"source": "synthetic", "generator": params, "cache": key,
                "note": "synthetic gait-like signals, not real sensor data: numbers are not comparable to the seed"}
    x_train, x_val, y_train, y_val = split_off(arrays["x_train"], arrays["y_train"], val_split, seed,
                                                stratify=_can_stratify(arrays["y_train"]))
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    if normalize:
        mean, std = x_train.mean(axis=(0, 1)), x_train.std(axis=(0, 1)) + 1e-7
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    x_train, y_train = take_first(n_train, x_train, y_train)
    x_val, y_val = take_first(n_val, x_val, y_val)
    spec = DatasetSpec("multiclass", x_train.shape[1:], len(ACTIVITIES), class_names=ACTIVITIES)
    return Dataset(x_train.astype("float32"), y_train, x_val.astype("float32"), y_val, spec,
                   x_test.astype("float32"), y_test, meta=meta)
