"""Pure readers of a run folder's files into small data objects (no Keras, no matplotlib)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnlab import runs
from nnlab.errors import ConfigError


@dataclass(frozen=True)
class Curves:
    """Per-epoch values: `series[name]` for each history column except epoch and timing."""

    epochs: list[int]
    series: dict[str, list[float]]

    def metric_names(self) -> list[str]:
        """Training metrics that have values per epoch (loss first), without the val_ twins."""
        names = [k for k in self.series if not k.startswith("val_") and k not in ("learning_rate", "time_s")]
        return sorted(names, key=lambda k: (k != "loss", names.index(k)))


@dataclass(frozen=True)
class Confusion:
    class_names: list[str]
    matrix: np.ndarray  # rows: true class, columns: predicted class


def read_curves(run_dir: str | Path) -> Curves:
    rows = runs.read_history(run_dir)
    columns = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return Curves([r["epoch"] for r in rows], {k: [r.get(k, float("nan")) for r in rows] for k in columns})


def read_confusion(run_dir: str | Path) -> Confusion | None:
    path = Path(run_dir) / runs.CONFUSION
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return Confusion(rows[0][1:], np.array([[int(v) for v in row[1:]] for row in rows[1:]]))


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    return runs.read_json(Path(run_dir) / runs.META)


# The standard plots under plots/ and the file each is drawn from; a plot is redrawn when it is missing
# or older than its source, so a report never shows a stale picture and rarely has to draw.
PREDICTION_PLOT_TASKS = ("binary", "regression", "sequence_regression")


def standard_plots(run_dir: str | Path, task: str | None = None) -> dict[str, str]:
    """plots/ file name -> source file name, for every standard plot this run's files allow."""
    run_dir = Path(run_dir)
    out = {}
    if (run_dir / runs.HISTORY).is_file():
        out["curves.png"] = runs.HISTORY
    if (run_dir / runs.CONFUSION).is_file():
        out["confusion_matrix.png"] = runs.CONFUSION
        out["confusion_matrix_normalized.png"] = runs.CONFUSION
    if task is None and (run_dir / runs.META).is_file():
        task = read_meta(run_dir).get("task")
    if task in PREDICTION_PLOT_TASKS and (run_dir / runs.PREDICTIONS).is_file():
        roc = task == "binary" and _reports_roc_auc(run_dir)
        with np.load(run_dir / runs.PREDICTIONS, allow_pickle=False) as data:
            for split in ("train", "val", "test"):  # a run keeps val and test; an evaluation any one split
                if f"{split}_y_true" in data.files and f"{split}_y_pred" in data.files:
                    out[f"predictions_{split}.png"] = runs.PREDICTIONS
                    if roc:
                        out[f"roc_{split}.png"] = runs.PREDICTIONS
    return out


def _reports_roc_auc(run_dir: Path) -> bool:
    """metrics.json has a ROC AUC: the curve it sums up is drawn beside it."""
    try:
        metrics = runs.read_json(run_dir / runs.METRICS)
    except (OSError, ValueError, ConfigError):
        return False
    return isinstance(metrics, dict) and any(isinstance(s, dict) and "roc_auc" in s for s in metrics.values())


def stale_plots(run_dir: str | Path, task: str | None = None) -> list[str]:
    """Standard plots that are missing or older than the file they are drawn from."""
    folder = Path(run_dir) / runs.PLOTS
    stale = []
    for name, source in standard_plots(run_dir, task).items():
        png = folder / name
        if not png.is_file() or png.stat().st_mtime < (Path(run_dir) / source).stat().st_mtime:
            stale.append(name)
    return stale


# ---------------------------------------------------------------------------------------------
# One run as a whole: what the terminal summary, report.html and compare pages are built from.
@dataclass(frozen=True)
class LayerTable:
    """The layer table of summary.txt: column names and one row of cell texts per layer."""

    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class RunSummary:
    """Everything a report says about one run, read from its files (missing files give empty values)."""

    run_id: str
    run_dir: Path
    name: str
    task: str | None
    status: str
    reason: str | None
    created: str | None
    duration_s: float | None
    seed: int | None
    config: dict[str, Any]
    overrides: list[str]
    config_file: str | None
    data: dict[str, Any]  # meta.json "data": source, name, sizes, ...
    parameters: dict[str, int]  # total, trainable, non_trainable
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    epochs_done: int | None
    epochs_planned: int | None
    best_epoch: int | None
    main_metric: dict[str, Any] | None
    curves: Curves
    confusion: Confusion | None
    class_report: dict[str, dict[str, float]] | None
    examples: list[str]  # examples.txt's lines
    decoded: list[dict[str, Any]] | None  # the same examples as records (examples.json), when the run has them
    model_summary: str
    layers: LayerTable | None
    versions: dict[str, str]
    device: dict[str, Any]
    evaluations: list[EvaluationSummary] = field(default_factory=list)  # `nnlab evaluate` results, oldest first

    @property
    def data_source(self) -> str:
        """real, generated or synthetic, as the loader recorded it."""
        return str(self.data.get("source", "unknown"))

    @property
    def sizes(self) -> dict[str, int]:
        return dict(self.data.get("sizes") or {})

    @property
    def splits(self) -> list[str]:
        order = ["train", "val", "test"]
        return sorted(self.metrics, key=lambda s: (order.index(s) if s in order else len(order), s))

    def metric_names(self) -> list[str]:
        """Every metric any split has, loss first, in the order metrics.json lists them."""
        names = list(dict.fromkeys(k for split in self.splits for k in self.metrics[split]))
        return sorted(names, key=lambda k: (k != "loss", names.index(k)))

    def best_row(self) -> dict[str, float] | None:
        """The history row of the best epoch, if both are known."""
        if self.best_epoch is None or self.best_epoch not in self.curves.epochs:
            return None
        i = self.curves.epochs.index(self.best_epoch)
        return {k: v[i] for k, v in self.curves.series.items()}


def read_run(run_dir: str | Path) -> RunSummary:
    """Read a run folder into a RunSummary; only meta.json is required."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    config = _read_yaml(run_dir / runs.CONFIG) or {}
    overrides = _read_yaml(run_dir / runs.OVERRIDES) or {}
    metrics_path = run_dir / runs.METRICS
    summary_path = run_dir / runs.SUMMARY
    examples_path = run_dir / runs.EXAMPLES
    class_report_path = run_dir / runs.CLASS_REPORT
    model_summary = summary_path.read_text() if summary_path.is_file() else ""
    return RunSummary(
        run_id=run_dir.name,
        run_dir=run_dir,
        name=meta.get("name") or config.get("name") or run_dir.name,
        task=meta.get("task"),
        status=runs.effective_status(meta, run_dir),
        reason=meta.get("reason"),
        created=meta.get("created"),
        duration_s=meta.get("duration_s"),
        seed=meta.get("seed", config.get("seed")),
        config=config,
        overrides=list(overrides.get("overrides") or []),
        config_file=meta.get("config_file") or overrides.get("config_file"),
        data=dict(meta.get("data") or {}),
        parameters=dict(meta.get("parameters") or {}),
        metrics=runs.read_json(metrics_path) if metrics_path.is_file() else {},
        epochs_done=meta.get("epochs_done"),
        epochs_planned=meta.get("epochs_planned"),
        best_epoch=meta.get("best_epoch"),
        main_metric=meta.get("main_metric"),
        curves=read_curves(run_dir),
        confusion=read_confusion(run_dir),
        class_report=runs.read_json(class_report_path) if class_report_path.is_file() else None,
        examples=examples_path.read_text().splitlines() if examples_path.is_file() else [],
        decoded=runs.read_examples(run_dir),
        model_summary=model_summary,
        layers=parse_layer_table(model_summary),
        versions=dict(meta.get("versions") or {}),
        device=dict(meta.get("device") or {}),
        evaluations=read_evaluations(run_dir),
    )


@dataclass(frozen=True)
class EvaluationSummary:
    """One `nnlab evaluate` folder: what was evaluated (split, data, overrides, model file) and its scores."""

    id: str
    folder: Path
    split: str
    overrides: list[str]
    model: str
    note: str | None
    created: str | None
    data: dict[str, Any]  # the loader's meta: source, name, sizes, path...
    metrics: dict[str, float]
    confusion: Confusion | None
    class_report: dict[str, dict[str, float]] | None
    examples: list[str]
    decoded: list[dict[str, Any]] | None


def read_evaluations(run_dir: str | Path) -> list[EvaluationSummary]:
    """Every finished evaluation under the run's evaluations/ folder, oldest first."""
    parent = Path(run_dir) / runs.EVALUATIONS
    if not parent.is_dir():
        return []
    found = []
    folders = [p for p in parent.iterdir() if not p.name.startswith(".") and (p / runs.EVALUATION).is_file()]
    # Names are <stamp to the second>-<split>-<random hex>: within one second, the record's write time orders them.
    for folder in sorted(folders, key=lambda p: (p.name[:15], (p / runs.EVALUATION).stat().st_mtime_ns)):
        record = runs.read_json(folder / runs.EVALUATION)
        split = record.get("split", "val")
        metrics_path, report_path, examples_path = (folder / n for n in (runs.METRICS, runs.CLASS_REPORT, runs.EXAMPLES))
        found.append(EvaluationSummary(
            id=folder.name,
            folder=folder,
            split=split,
            overrides=list(record.get("overrides") or []),
            model=record.get("model", runs.MODEL),
            note=record.get("note"),
            created=record.get("created"),
            data=dict(record.get("data") or {}),
            metrics=dict((runs.read_json(metrics_path) if metrics_path.is_file() else {}).get(split) or {}),
            confusion=read_confusion(folder),
            class_report=runs.read_json(report_path) if report_path.is_file() else None,
            examples=examples_path.read_text().splitlines() if examples_path.is_file() else [],
            decoded=runs.read_examples(folder),
        ))
    return found


def read_predictions(run_dir: str | Path) -> dict[str, np.ndarray]:
    """predictions.npz as a dict (`val_y_true`, `val_y_pred`, maybe `test_...`); empty when missing."""
    path = Path(run_dir) / runs.PREDICTIONS
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def parse_layer_table(text: str) -> LayerTable | None:
    """The box-drawn layer table Keras writes into summary.txt; cells wrapped over lines are joined."""
    columns: list[str] = []
    rows: list[list[str]] = []
    pending: list[list[str]] = []

    def flush() -> None:
        if pending:
            rows.append([" ".join(p for p in parts if p) for parts in zip(*pending)])
            pending.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("┃"):
            cells = [c.strip() for c in stripped.strip("┃").split("┃")]
            columns = [" ".join(p for p in parts if p) for parts in zip(columns, cells)] if columns else cells
        elif stripped.startswith("│"):
            pending.append([c.strip() for c in stripped.strip("│").split("│")])
        elif stripped[:1] in ("├", "└", "┡"):
            flush()
    flush()
    if not columns or not rows:
        return None
    keep = [i for i, name in enumerate(columns) if name or any(i < len(r) and r[i] for r in rows)]
    return LayerTable([columns[i] for i in keep], [[r[i] if i < len(r) else "" for i in keep] for r in rows])


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys (`train.optimizer.learning_rate`); lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def config_essentials(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """The config keys a reader looks for first: data and model with their set parameters, training basics."""
    out: list[tuple[str, Any]] = []
    for section in ("data", "model"):
        part = dict(config.get(section) or {})
        if part:
            defaults = _defaults(section, part.get("name"))
            params = ", ".join(f"{k}={_short(v)}" for k, v in part.items()
                               if k != "name" and v is not None and (k not in defaults or defaults[k] != v))
            out.append((section, f"{part.get('name', '?')}({params})"))
    train = dict(config.get("train") or {})
    for key in ("epochs", "batch_size"):
        if key in train:
            out.append((f"train.{key}", train[key]))
    optimizer = train.get("optimizer")
    if isinstance(optimizer, dict):
        args = ", ".join(f"{k}={_short(v)}" for k, v in optimizer.items() if k != "name" and v is not None)
        out.append(("train.optimizer", f"{optimizer.get('name', '?')}({args})" if args else optimizer.get("name", "?")))
    elif optimizer:
        out.append(("train.optimizer", optimizer))
    for key in ("loss", "metrics"):
        if train.get(key):
            out.append((f"train.{key}", _short(train[key])))
    shown = {"epochs", "batch_size", "optimizer", "loss", "metrics", "shuffle"}
    for key, value in train.items():  # schedules, early stopping, truncated BPTT, switches that are on
        if key in shown or value is None or value is False:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_short(v)}" for k, v in value.items() if v is not None)
        out.append((f"train.{key}", value))
    if "seed" in config:
        out.append(("seed", config["seed"]))
    return out


def _defaults(section: str, name: Any) -> dict[str, Any]:
    """The registered loader's or builder's defaults (as JSON values), so a report shows what was set."""
    from pydantic_core import PydanticUndefined

    from nnlab.datasets import DATASETS
    from nnlab.models import MODELS

    registry = DATASETS if section == "data" else MODELS
    if not isinstance(name, str) or name not in registry:
        return {}
    fields = registry.get(name).params.model_fields
    out = {}
    for key, field in fields.items():
        if field.default is not PydanticUndefined:
            default = field.default
            out[key] = default.model_dump(mode="json") if hasattr(default, "model_dump") else \
                list(default) if isinstance(default, tuple) else default
    return out


def format_value(value: Any) -> str:
    """Numbers for tables: 4 decimals in the usual range, scientific outside it; other values as text."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4f}"
        return f"{value:.3e}"
    return _short(value)


def column_texts(values: list[object], missing: str = "–") -> list[str]:
    """One column's numbers in one format: 4 decimals when every one reads well so, else all scientific;
    whole numbers as they are, None as `missing`."""
    floats = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    plain = all(v == 0 or 1e-3 <= abs(v) < 1e5 for v in floats)
    out = []
    for v in values:
        if v is None:
            out.append(missing)
        elif isinstance(v, float) and math.isfinite(v):
            out.append(f"{v:.4f}" if plain else f"{v:.3e}")
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(f"{v:,}")
        else:
            out.append(format_value(v) if not isinstance(v, str) else v)
    return out


def format_config_value(value: Any) -> str:
    """A config value as the user wrote it: 0.001 stays 0.001, lists and mappings in YAML flow style."""
    return _short(value)


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    from nnlab.config import read_yaml  # the one YAML reader: size-capped, alias-bounded, duplicate keys refused

    return read_yaml(path)
