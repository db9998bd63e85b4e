"""crt and r3: 64x64 grayscale shapes (the lab's CRT and R3 sets), from course folders or a generator.

Course layout, in `$NNLAB_DATA_DIR/<name>/` or a `data.path` folder: `<name>-trn/img_00001.png`...,
`<name>-val/img_00001.png`..., `<name>-trn_trg.csv` and `<name>-val_trg.csv` (three one-hot columns,
whitespace- or comma-separated). Without those files the generator below makes a stand-in, cached on disk.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from nnlab.datasets.base import (
    DATASETS,
    DataParams,
    Dataset,
    DatasetSpec,
    ImageFormat,
    cached_arrays,
    check_path,
    data_places,
    not_found,
    split_off,
    take_first,
)
from nnlab.datasets.images import AugmentParams, augment_spec, read_png_channel
from nnlab.errors import ConfigError

SIZE = 64
CRT_CLASSES = ("circle", "rectangle", "triangle")
R3_CLASSES = ("square", "horizontal", "vertical")
CRT_TURNED = (0, 1, 2)  # a class index -> the class of its image turned by 90 degrees
R3_TURNED = (0, 2, 1)
GENERATED_SIZES = (500, 1000)  # train, validation: what the course folders held


class ShapesParams(DataParams):
    source: Literal["auto", "files", "generate"] = Field(
        "auto", description="auto: course files when found, else the generator")
    path: str | None = Field(None, description="folder holding <name>-trn/, <name>-val/ and the _trg.csv files")
    normalize: bool = Field(True, description="scale pixels to [0, 1]")
    noise: float = Field(0.0, ge=0, le=1, description="generator: std of Gaussian pixel noise (0..1 scale)")
    augment: AugmentParams | None = Field(None, description="random flip/shift/rotate while training")
    turn: bool = Field(False, description="train on every training image twice: as it is and turned by 90 degrees "
                                          "(r3: a wide rectangle turned is tall, and is labelled so)")

    def image_format(self) -> ImageFormat:
        return ImageFormat("channel 0", (SIZE, SIZE), 255.0 if self.normalize else 1.0)


class CRTParams(ShapesParams):
    size: list[int] = Field([8, 24], description="generator: [min, max] shape radius in pixels")

    @field_validator("size")
    @classmethod
    def _size(cls, value: list[int]) -> list[int]:
        if len(value) != 2 or not 3 <= value[0] <= value[1] <= SIZE // 2 - 2:
            raise ValueError(f"expected [min, max] with 3 <= min <= max <= {SIZE // 2 - 2} (got {value})")
        return value


class R3Params(ShapesParams):
    margin: float = Field(0.25, gt=0, le=2, description="generator: rectangles' aspect ratio is at least 1 + margin "
                                                        "(small = hard)")
    max_aspect: float = Field(3.0, gt=1, le=6, description="generator: largest aspect ratio of a rectangle")
    square_tolerance: float = Field(0.0, ge=0, lt=1, description="generator: squares' aspect may differ from 1 "
                                                                 "by this factor")
    proportions: list[float] | None = Field(None, description="generator: class shares (square, horizontal, "
                                                              "vertical); default equal")
    side: list[int] = Field([8, 20], description="generator: [min, max] short side in pixels")

    @field_validator("proportions")
    @classmethod
    def _proportions(cls, value):
        if value is not None and (len(value) != 3 or any(p < 0 for p in value) or sum(value) <= 0):
            raise ValueError(f"expected three non-negative shares (got {value})")
        return value

    @field_validator("side")
    @classmethod
    def _side(cls, value: list[int]) -> list[int]:
        if len(value) != 2 or not 2 <= value[0] <= value[1] <= SIZE // 2:
            raise ValueError(f"expected [min, max] with 2 <= min <= max <= {SIZE // 2} (got {value})")
        return value


@DATASETS.register(CRTParams)
def load_crt(n_train=None, n_val=None, val_split=None, seed=0, source="auto", path=None, normalize=True, noise=0.0,
             augment=None, turn=False, size=(8, 24)) -> Dataset:
    """64x64 circles, rectangles and triangles, 3 classes (course crt-* folders or generated: 500 train, 1,000 val)."""
    generator = {"size": list(size), "noise": noise}
    return _load("crt", CRT_CLASSES, CRT_TURNED, _crt_images, generator, locals())


@DATASETS.register(R3Params)
def load_r3(n_train=None, n_val=None, val_split=None, seed=0, source="auto", path=None, normalize=True, noise=0.0,
            augment=None, turn=False, margin=0.25, max_aspect=3.0, square_tolerance=0.0, proportions=None,
            side=(8, 20)) -> Dataset:
    """64x64 squares vs horizontal vs vertical rectangles, 3 classes (course r3-* folders or generated)."""
    generator = {"margin": margin, "max_aspect": max_aspect, "square_tolerance": square_tolerance,
                 "proportions": proportions, "side": list(side), "noise": noise}
    return _load("r3", R3_CLASSES, R3_TURNED, _r3_images, generator, locals())


def _load(name: str, classes: tuple[str, ...], turned: tuple[int, ...], make_images, generator: dict[str, Any],
          opts: dict[str, Any]) -> Dataset:
    check_path(opts["path"])
    folder = None if opts["source"] == "generate" else find_course_folder(name, opts["path"])
    if folder is None and (opts["source"] == "files" or opts["path"]):
        raise not_found(name, f"{name}-trn/img_00001.png... and {name}-trn_trg.csv (same for {name}-val)",
                        data_places(name, opts["path"]))
    if folder is not None:
        x_train, y_train = read_course_split(folder, name, "trn")
        x_val, y_val = read_course_split(folder, name, "val")
        meta = {"source": "real", "path": str(folder)}
    else:
        n_train = opts["n_train"] or GENERATED_SIZES[0]
        n_val = opts["n_val"] or GENERATED_SIZES[1]
        params = {**generator, "n_train": n_train, "n_val": n_val, "seed": opts["seed"]}

        def make():
            rng = np.random.default_rng(opts["seed"])
            arrays = {}
            for split, n in (("train", n_train), ("val", n_val)):
                arrays[f"x_{split}"], arrays[f"y_{split}"] = make_images(rng, n, **generator)
            return arrays

        arrays, key = cached_arrays(name, params, make)
        x_train, y_train, x_val, y_val = (arrays[k] for k in ("x_train", "y_train", "x_val", "y_val"))
        meta = {"source": "generated", "generator": params, "cache": key}
    x_train, x_val = (_scale(x, opts["normalize"]) for x in (x_train, x_val))
    y_train, y_val = y_train.astype("int32"), y_val.astype("int32")
    if opts["val_split"] is not None:
        x_train, x_val, y_train, y_val = split_off(x_train, y_train, opts["val_split"], opts["seed"], stratify=True)
    x_train, y_train = take_first(opts["n_train"], x_train, y_train)
    x_val, y_val = take_first(opts["n_val"], x_val, y_val)
    if opts["turn"]:  # after n_train: the images drawn are the budget, their turned copies come with them
        if x_train.shape[1] != x_train.shape[2]:
            raise ConfigError(f"data.turn: needs square images (these are {x_train.shape[1]}x{x_train.shape[2]})")
        x_train = np.concatenate([x_train, np.rot90(x_train, axes=(1, 2))])
        y_train = np.concatenate([y_train, np.asarray(turned, dtype="int32")[y_train]])
        meta["turned"] = f"{len(y_train) // 2} training images, each also turned by 90 degrees"
    image_format = ShapesParams(normalize=opts["normalize"]).image_format()
    if x_train.shape[1:3] != image_format.size:  # course PNGs of another size than the generator's
        image_format = dataclasses.replace(image_format, size=x_train.shape[1:3])
    spec = DatasetSpec("multiclass", x_train.shape[1:], len(classes), class_names=classes,
                       augment=augment_spec(opts["augment"]), image_format=image_format)
    return Dataset(x_train, y_train, x_val, y_val, spec, meta=meta)


def _scale(images: np.ndarray, normalize: bool) -> np.ndarray:
    x = images.astype("float32")[..., None]
    return x / 255.0 if normalize else x


# ---------------------------------------------------------------------------------------------
# The course folders.
def find_course_folder(name: str, path: str | None) -> Path | None:
    """The first place holding `<name>-trn/` and `<name>-trn_trg.csv`."""
    for place in data_places(name, path):
        if (place / f"{name}-trn").is_dir() and (place / f"{name}-trn_trg.csv").is_file():
            return place
    return None


def read_course_split(folder: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) from `<name>-<split>/img_NNNNN.png` and class indices from `<name>-<split>_trg.csv`."""
    splits = (split, "tst") if split == "val" else (split,)  # some course copies call validation "tst"
    for s in splits:
        images_dir, labels_file = folder / f"{name}-{s}", folder / f"{name}-{s}_trg.csv"
        if images_dir.is_dir() and labels_file.is_file():
            break
    else:
        raise ConfigError(f"data.path: {folder} has {name}-trn/ but no {name}-{split}/ with {name}-{split}_trg.csv")
    files = sorted(p for p in images_dir.iterdir() if re.fullmatch(r"img_\d+\.png", p.name))
    if not files:
        raise ConfigError(f"data.path: {images_dir} holds no img_00001.png-style images")
    labels = read_one_hot(labels_file)
    if len(labels) != len(files):
        raise ConfigError(f"data.path: {labels_file.name} has {len(labels)} rows for {len(files)} images in "
                          f"{images_dir.name}/")
    images = np.stack([read_png_channel(f) for f in files])
    return images, labels


def read_one_hot(path: Path) -> np.ndarray:
    """Class indices from a file of three one-hot columns per row (spaces, tabs or commas between)."""
    rows = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()]
    try:
        values = np.array([[float(v) for v in row[:3]] for row in rows])
    except ValueError:
        raise ConfigError(f"data.path: {path}: expected numbers in three one-hot columns") from None
    if values.ndim != 2 or values.shape[1] != 3:
        raise ConfigError(f"data.path: {path}: expected three one-hot columns per row")
    return values.argmax(axis=1)


# ---------------------------------------------------------------------------------------------
# Generators: one filled shape per image, white on black, drawn at 4x and averaged down (soft edges).
_SUPER = 4


def _grid() -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(SIZE * _SUPER) + 0.5) / _SUPER
    return np.meshgrid(coords, coords, indexing="xy")


def _downsample(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(SIZE, _SUPER, SIZE, _SUPER).mean(axis=(1, 3))


def _polygon(xs: np.ndarray, ys: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Inside mask of a convex polygon with corners in counter-clockwise or clockwise order."""
    signs = []
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0)):
        signs.append((x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0))
    signs = np.stack(signs)
    return (signs >= 0).all(axis=0) | (signs <= 0).all(axis=0)


def _finish(images: list[np.ndarray], rng: np.random.Generator, noise: float) -> np.ndarray:
    x = np.stack(images)
    if noise:
        x = np.clip(x + rng.normal(0, noise, x.shape), 0, 1)
    return (x * 255).round().astype(np.uint8)


def _crt_images(rng: np.random.Generator, n: int, size=(8, 24), noise=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Circles, rectangles (aspect 1..2) and equilateral triangles: random size, position and rotation."""
    xs, ys = _grid()
    labels = rng.integers(0, 3, size=n)
    images = []
    for label in labels:
        radius = rng.uniform(size[0], size[1])
        cx, cy = rng.uniform(radius + 1, SIZE - radius - 1, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        if label == 0:
            mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
        elif label == 1:
            aspect = rng.uniform(1.0, 2.0)
            short_half = radius / np.sqrt(1 + aspect**2)  # the corners lie on the circle of `radius`
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [aspect * short_half, short_half]
            mask = _polygon(xs, ys, _place(corners, angle, cx, cy))
        else:
            turns = angle + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
            corners = np.stack([np.cos(turns), np.sin(turns)], axis=1) * radius
            mask = _polygon(xs, ys, corners + [cx, cy])
        images.append(_downsample(mask.astype("float32")))
    return _finish(images, rng, noise), labels


def _place(corners: np.ndarray, angle: float, cx: float, cy: float) -> np.ndarray:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return corners @ rotation.T + [cx, cy]


def _r3_images(rng: np.random.Generator, n: int, margin=0.25, max_aspect=3.0, square_tolerance=0.0,
               proportions=None, side=(8, 20), noise=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned filled squares, wide and tall rectangles; aspect ratios keep `margin` away from 1."""
    shares = np.asarray(proportions or [1, 1, 1], dtype="float64")
    labels = rng.choice(3, size=n, p=shares / shares.sum())
    images = []
    for label in labels:
        while True:  # draw until the whole-pixel sides still fall in the class's aspect range
            short = int(rng.integers(side[0], side[1] + 1))
            if label == 0:
                aspect = np.exp(rng.uniform(-np.log1p(square_tolerance), np.log1p(square_tolerance)))
            else:
                aspect = np.exp(rng.uniform(np.log1p(margin), np.log(max_aspect)))
            width, height = round(short * aspect), short
            if label == 0 and aspect < 1:
                width, height = short, round(short / aspect)
            if label == 2:
                width, height = height, width
            ratio = width / height
            if max(width, height) > SIZE - 4:
                continue
            if label == 0 and max(ratio, 1 / ratio) <= 1 + square_tolerance + 1e-9:
                break
            if label == 1 and ratio >= 1 + margin:
                break
            if label == 2 and 1 / ratio >= 1 + margin:
                break
        left = int(rng.integers(2, SIZE - 2 - width + 1))
        top = int(rng.integers(2, SIZE - 2 - height + 1))
        image = np.zeros((SIZE, SIZE), dtype="float32")
        image[top : top + height, left : left + width] = 1.0
        images.append(image)
    return _finish(images, rng, noise), labels
