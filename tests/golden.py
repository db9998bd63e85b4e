"""Golden runs: tiny but real configurations whose numbers must not move by accident.

`python tests/golden.py WORKDIR` trains every configuration below in one process on the backend
$KERAS_BACKEND names (one thread, deterministic ops) and prints one JSON object: for each name, the
history rows (epoch times left out) and metrics.json. tests/test_golden_runs.py compares that with
tests/golden_runs.json exactly; `make golden` rewrites this machine's entry (say why in the commit message).

The numbers are stored per backend and per CPU class (`cpu_class()`: the machine's architecture and the widest
vector instructions it has). Neither backend promises the same last bits on CPUs with different instruction
sets: TensorFlow's oneDNN and JAX's XLA pick their kernels by what the CPU offers, and a sum taken in other
groups rounds differently (an AVX2 machine gave 2.2813425 where an earlier one gave 2.2813427 for the same
seeded run). On a class that has no entry the numbers are compared within a relative 1e-6 of a stored class,
which still catches a moved random stream, and the test says so; `make golden` there adds the class.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
from pathlib import Path

GOLDEN_FILE = Path(__file__).with_name("golden_runs.json")
# Vector instruction sets that change which kernels the backends run, widest first (/proc/cpuinfo names).
VECTOR_LEVELS = ("amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx_vnni", "avx2", "avx", "sse4_2")
_FIXED = {"deterministic": True, "checkpoint_every": 0}
_OUTPUT = {"plots": False, "save_model": False}

# The order is the training order in the one process: the MLP comes last, so the test that trains it
# alone in a fresh `nnlab train` shows that what ran before it in the process did not move its numbers.
CONFIGS: dict[str, dict] = {
    "cnn_augment": {
        "name": "golden_cnn_augment", "seed": 3,
        "data": {"name": "crt", "source": "generate", "n_train": 40, "n_val": 20, "augment": {"shift": 0.1, "rotate": 10}},
        "model": {"name": "cnn", "blocks": [{"filters": 4, "kernel": 3, "pool": 4}], "dense": [8]},
        "train": {"epochs": 2, "batch_size": 16, **_FIXED}, "output": _OUTPUT,
    },
    "gru_tbptt": {
        "name": "golden_gru_tbptt", "seed": 1,
        "data": {"name": "pulse", "n_train": 20, "n_val": 10, "length": 40},
        "model": {"name": "rnn", "cell": "gru", "units": [4]},
        "train": {"epochs": 2, "batch_size": 10, "tbptt": {"window": 15}, **_FIXED}, "output": _OUTPUT,
    },
    "seq2seq_lstm": {
        "name": "golden_seq2seq_lstm", "seed": 0,
        "data": {"name": "addition", "digits": 2, "n": 300},
        "model": {"name": "seq2seq", "cell": "lstm", "units": 8},
        "train": {"epochs": 2, "batch_size": 32, **_FIXED}, "output": _OUTPUT,
    },
    "cnn_lstm": {  # digit sums over the small IDX files `write_mnist` makes
        "name": "golden_cnn_lstm", "seed": 0,
        "data": {"name": "digitsum", "length": 4, "val_images": 60},
        "model": {"name": "cnn_rnn", "filters": [4], "frame_dense": 8, "cell": "lstm", "units": [8], "output_bias": 18.0},
        "train": {"epochs": 2, "batch_size": 16, **_FIXED}, "output": _OUTPUT,
    },
    "mlp": {
        "name": "golden_mlp", "seed": 0,
        "data": {"name": "digits", "n_train": 200, "n_val": 100},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "learning_rate": 0.002}, **_FIXED},
        "output": _OUTPUT,
    },
}


def cpu_class() -> str:
    """`x86_64-avx2`: the architecture and the widest vector instruction set this CPU has (Linux reads
    /proc/cpuinfo; elsewhere the architecture alone)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("flags", "Features"))), [])
    except OSError:
        flags = []
    level = next((name for name in VECTOR_LEVELS if name in flags), None)
    return platform.machine() + (f"-{level}" if level else "")


def numbers(run_dir: Path) -> dict:
    """What a golden run is compared on: every history row (without its wall time) and metrics.json."""
    with open(run_dir / "history.csv", newline="") as f:
        history = [{k: float(v) for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]
    return {"history": history, "metrics": json.loads((run_dir / "metrics.json").read_text())}


def write_mnist(folder: Path) -> None:
    """300 training and 100 test images in the real IDX format, bars whose position is the label."""
    import gzip
    import struct

    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * int(label) : 4 + 2 * int(label), 4:24] = 255
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
                f.write(header + array.tobytes())


def write_configs(folder: Path) -> dict[str, Path]:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, config in CONFIGS.items():
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def main(workdir: str) -> None:
    """Train every golden config in this process (NNLAB_DATA_DIR must hold mnist/ from `write_mnist`)."""
    from nnlab import experiment

    work = Path(workdir)
    results = {}
    for name, path in write_configs(work / "configs").items():
        run_dir = experiment.train(path, runs_dir=work / "runs", threads=1, stream=io.StringIO())
        results[name] = numbers(run_dir)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
