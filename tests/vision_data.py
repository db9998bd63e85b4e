"""Tiny files in the real vision formats (CIFAR-10 pickle batches, course PNG folders), for the vision tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar_batches(folder: Path, per_batch: int = 4, test: int = 10, seed: int = 0) -> Path:
    """`folder/cifar-10-batches-py/` with data_batch_1..5, test_batch and batches.meta, as Keras unpacks them."""
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        data = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # red plane, green plane, blue plane per row
        with open(batches / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [f"{i}.png".encode() for i in range(n)]}, f)
    with open(batches / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072}, f)
    return batches


def read_batch_images(path: Path) -> tuple[np.ndarray, list[int]]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), batch[b"labels"]


def write_course_folder(folder: Path, name: str, sizes=(6, 4), separator: str = " ", seed: int = 0) -> dict:
    """`<name>-trn/img_00001.png`... plus `<name>-trn_trg.csv` (one-hot rows), the same for -val; returns labels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    labels = {}
    for split, n in zip(("trn", "val"), sizes):
        images_dir = folder / f"{name}-{split}"
        images_dir.mkdir(parents=True)
        y = rng.integers(0, 3, size=n)
        for i, label in enumerate(y):
            pixels = np.zeros((64, 64, 4), dtype=np.uint8)  # RGBA like the course PNGs; channel 0 is read
            pixels[..., 3] = 255
            pixels[10 + 10 * label : 20 + 10 * label, 10:50, 0] = 200 + i
            Image.fromarray(pixels, mode="RGBA").save(images_dir / f"img_{i + 1:05d}.png")
        rows = [separator.join(f"{v:.1f}" for v in np.eye(3)[label]) for label in y]
        (folder / f"{name}-{split}_trg.csv").write_text("\n".join(rows) + "\n")
        labels[split] = y
    return labels
