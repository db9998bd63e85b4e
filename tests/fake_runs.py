"""Finished run folders written by hand in the real formats, one per task kind (fakes, not mocks)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import yaml

from nnlab import runs

TASKS = ("binary", "multiclass", "regression", "sequence_regression", "seq2seq")
EPOCHS = 4
VOCABULARY = "0123456789+ "

SUMMARY_TXT = """Model: "mlp"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┓
┃ Layer (type)              ┃ Output Shape       ┃   Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━┩
│ dense (Dense)             │ (None, 16)         │       272 │
├───────────────────────────┼────────────────────┼───────────┤
│ output (Dense)            │ (None, 3)          │        51 │
└───────────────────────────┴────────────────────┴───────────┘
 Total params: 323 (1.26 KB)
 Trainable params: 323 (1.26 KB)
 Non-trainable params: 0 (0.00 B)

Total params: 323
Trainable params: 323
Non-trainable params: 0
"""

METRICS = {
    "binary": {"loss": 0.41, "accuracy": 0.8125, "sensitivity": 0.75, "specificity": 0.875, "roc_auc": 0.9},
    "multiclass": {"loss": 0.52, "accuracy": 0.75, "log_loss": 0.52},
    "regression": {"loss": 0.04, "mae": 0.16, "mse": 0.04, "nmse": 0.12},
    "sequence_regression": {"loss": 0.02, "mae": 0.11, "mse": 0.02, "nmse": 0.05},
    "seq2seq": {"loss": 0.3, "accuracy": 0.9, "char_accuracy": 0.875, "sequence_accuracy": 0.5},
}
MAIN = {"binary": "accuracy", "multiclass": "accuracy", "regression": "nmse", "sequence_regression": "nmse",
        "seq2seq": "char_accuracy"}
CLASS_NAMES = {"binary": ["cat", "dog"], "multiclass": ["circle", "square", "triangle"]}


def base_config(task: str, name: str) -> dict:
    """A resolved config.yaml as nnlab writes it (every key present)."""
    return {
        "name": name,
        "description": "",
        "seed": 0,
        "data": {"name": f"fake_{task}", "n_train": None, "n_val": None, "seed": 0},
        "model": {"name": "mlp", "hidden": [16], "activation": "relu", "dropout": 0.0},
        "train": {"epochs": EPOCHS, "batch_size": 32, "shuffle": True,
                  "optimizer": {"name": "adam", "learning_rate": 0.001, "momentum": None},
                  "lr_schedule": None, "loss": None, "metrics": None, "early_stopping": None,
                  "deterministic": False, "tensorboard": False},
        "output": {"runs_dir": None, "save_model": True, "plots": True, "examples": 20},
    }


def make_run(runs_dir: Path, run_id: str, task: str, *, config: dict | None = None, status: str = "completed",
             n_val: int = 16, seed: int = 0, metric_shift: float = 0.0) -> Path:
    """Write a finished run of `task` into `runs_dir/run_id` and return its folder."""
    rng = np.random.default_rng(seed)
    run_dir = Path(runs_dir) / run_id
    run_dir.mkdir(parents=True)
    config = config or base_config(task, run_id.split("-")[2] if run_id.count("-") >= 3 else "fake")
    runs.write_text(run_dir / runs.CONFIG, yaml.safe_dump(config, sort_keys=False))
    runs.write_text(run_dir / runs.OVERRIDES, yaml.safe_dump({"config_file": f"configs/{config['name']}.yaml",
                                                               "overrides": ["train.epochs=4"]}))
    runs.write_text(run_dir / runs.SUMMARY, SUMMARY_TXT)
    main = MAIN[task]
    scores = {split: {k: round(v + metric_shift + (0.05 if split == "train" else 0.0), 6)
                      for k, v in METRICS[task].items()} for split in ("train", "val")}
    runs.write_json(run_dir / runs.METRICS, scores)
    metric = "accuracy" if task in ("binary", "multiclass", "seq2seq") else "mae"
    history = [{"epoch": e, "loss": 1.0 / e, metric: 0.5 + 0.1 * e,
                "val_loss": 1.1 / e, f"val_{metric}": 0.45 + 0.1 * e,
                "learning_rate": 0.001, "time_s": 0.1} for e in range(1, EPOCHS + 1)]
    runs.write_history(run_dir, history)
    sizes = {"train": 64, "val": n_val}
    runs.write_json(run_dir / runs.META, {
        "status": status, "name": config["name"], "seed": 0, "created": "2026-01-02T03:04:05+00:00",
        "started_at": 1.0, "finished_at": 13.5, "duration_s": 12.5, "pid": 1, "host": "elsewhere",
        "command": ["nnlab", "train", "x.yaml"], "config_file": f"configs/{config['name']}.yaml", "task": task,
        "data": {"source": "generated", "name": f"fake_{task}", "sizes": sizes},
        "parameters": {"total": 1234, "trainable": 1200, "non_trainable": 34},
        "device": {"used": "cpu"}, "versions": {"nnlab": "0.1.0", "python": "3.11.7"},
        "epochs_planned": EPOCHS, "epochs_done": EPOCHS, "best_epoch": 3,
        "main_metric": {"name": f"val_{main}", "value": scores["val"][main]},
        **({"reason": "the loss became NaN or infinite in epoch 3"} if status == "failed" else {}),
    })
    y_true, y_pred = _predictions(task, n_val, rng)
    with runs.atomic_path(run_dir / runs.PREDICTIONS) as tmp:
        np.savez_compressed(tmp, val_y_true=y_true, val_y_pred=y_pred)
    if task in CLASS_NAMES:
        names = CLASS_NAMES[task]
        predicted = (y_pred.ravel() > 0.5).astype(int) if task == "binary" else y_pred.argmax(axis=-1)
        matrix = np.zeros((len(names), len(names)), dtype=int)
        np.add.at(matrix, (y_true.ravel().astype(int), predicted), 1)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["true \\ predicted", *names])
        writer.writerows([name, *row] for name, row in zip(names, matrix.tolist()))
        runs.write_text(run_dir / runs.CONFUSION, text.getvalue())
        report = {name: {"precision": 0.8, "recall": 0.7, "f1": 0.7467, "support": int(matrix[i].sum())}
                  for i, name in enumerate(names)}
        runs.write_json(run_dir / runs.CLASS_REPORT, report)
    if task == "seq2seq":
        runs.write_examples(run_dir, [{"input": " 12+345", "predicted": "357 ", "true": "357 ", "right": True},
                                      {"input": "  9+99 ", "predicted": "107 ", "true": "108 ", "right": False}])
    return run_dir


def _predictions(task: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if task == "binary":
        y = np.arange(n) % 2
        return y.astype("int32"), np.clip(y * 0.6 + rng.random(n) * 0.4, 0, 1).reshape(-1, 1).astype("float32")
    if task == "multiclass":
        y = np.arange(n) % 3
        probabilities = rng.random((n, 3)) + 2.0 * np.eye(3)[y]
        return y.astype("int32"), (probabilities / probabilities.sum(axis=1, keepdims=True)).astype("float32")
    if task == "regression":
        y = rng.normal(size=(n, 1))
        return y.astype("float32"), (y + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    if task == "sequence_regression":
        t = np.linspace(0, 6, 10)
        y = np.sin(t[None, :] + rng.random((n, 1)))
        return y.astype("float32"), (y + 0.1 * rng.normal(size=y.shape)).astype("float32")
    y = rng.integers(0, len(VOCABULARY), size=(n, 4))
    probabilities = rng.random((n, 4, len(VOCABULARY))) + 3.0 * np.eye(len(VOCABULARY))[y]
    return y.astype("int32"), probabilities.astype("float32")


def write_png(path: Path, seed: int = 0) -> Path:
    """A small real PNG, as an inspection tool would leave under plots/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.hist(np.random.default_rng(seed).normal(size=100))
    fig.savefig(path, dpi=40)
    plt.close(fig)
    return path


def make_sweep(runs_dir: Path, sweep_id: str, *, method: str = "grid", parameters: dict | None = None,
               metric: str = "val_accuracy", goal: str = "maximize", trials: list[dict] | None = None,
               status: str = "completed") -> Path:
    """A sweep folder as nnlab sweep leaves it (sweep.yaml, trials.csv, summary.csv, state.json) whose trials
    are fake finished runs of runs_dir; each trial: {"params": {...}, "value": float, "seed": 0, "status": ...}."""
    from nnlab.sweeps import aggregate

    parameters = parameters or {"model.hidden": {"values": [[8], [16]]}}
    swept = list(parameters)
    sweep_dir = aggregate.sweeps_dir(runs_dir) / sweep_id
    sweep_dir.mkdir(parents=True)
    name = sweep_id.split("-")[2] if sweep_id.count("-") >= 3 else "sweep"
    runs.write_text(sweep_dir / aggregate.SWEEP, yaml.safe_dump({
        "name": name, "method": method, "metric": {"name": metric, "goal": goal}, "parameters": parameters,
        "source": f"configs/sweeps/{name}.yaml"}, sort_keys=False))
    stamp = sweep_id.split("-")[0] + "-" + sweep_id.split("-")[1]
    rows = []
    for index, trial in enumerate(trials or []):
        run_id = f"{stamp}-{name}-{index:03d}-{index:04x}"
        run_dir = make_run(runs_dir, run_id, "multiclass",
                           metric_shift=trial["value"] - METRICS["multiclass"]["accuracy"])
        if "epochs" in trial:  # a shorter history (e.g. one epoch)
            runs.write_history(run_dir, runs.read_history(run_dir)[: trial["epochs"]])
        rows.append({"trial": index, "status": trial.get("status", "completed"), "seed": trial.get("seed", 0),
                     "run_id": run_id, **trial["params"], metric: trial["value"], "duration_s": 12.5,
                     "point": trial.get("point", index), "attempt": 1, "parameters": trial.get("parameters", 1234),
                     "threads": 1,
                     "worker": "w0"})
    aggregate.write_trials(sweep_dir, rows, swept, metric)
    aggregate.write_summary(sweep_dir, aggregate.summarize(aggregate.read_trials(sweep_dir), swept, metric), swept,
                            metric)
    runs.write_json(sweep_dir / aggregate.STATE, {"status": status, "updated_at": 1.0})
    return sweep_dir
