"""Predictions of a trained run for inputs in the forms users have: images, .npy arrays, CSV rows, strings.

Inputs are read in two steps. `read_inputs` parses every file before Keras is imported (a pickled .npy, an
unreadable image or a character the vocabulary lacks stops here, having run nothing); `fit_inputs` then
checks each example against the model's input shape. Images are prepared the way the run's loader
prepares its training images: its ImageFormat, which the run's meta.json records.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from nnlab import runs
from nnlab.config import ComponentConfig
from nnlab.datasets.base import ImageFormat
from nnlab.datasets.images import to_uint8
from nnlab.errors import ConfigError, first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OUT_SUFFIXES = (".csv", ".npy")
MAX_CSV_BYTES = 64 * 2**20  # a feature-row file larger than this is refused rather than read into memory


@dataclass
class Example:
    """One input as the model will see it (or a batch from one file), named as the user gave it."""

    name: str
    x: np.ndarray  # one example, or a batch (told apart by the model's input shape in `fit_inputs`)
    shown: str | None = None  # how an image was converted
    warning: str | None = None  # something about the input the user should know (e.g. dark ink on light paper)


# ---------------------------------------------------------------------------------------------
# Reading (no Keras).
def read_inputs(items: list[str], data: ComponentConfig, task: str | None, *, image_format: ImageFormat | None = None,
                invert: bool = False, problems: list[str] | None = None) -> list[Example]:
    """Parse every input: image files, .npy files, CSV files, or (seq2seq runs) question strings.

    An input that cannot be read raises ConfigError, or, when a `problems` list is given, is left out and
    its one-line reason appended there. Images are prepared by `image_format` (None: the run has no image
inputs); `invert` turns their pixel values round (255 - value).
    """
    if not items:
        raise ConfigError("nnlab predict: give at least one input (an image, .npy or .csv file, or a string)")
    examples: list[Example] = []
    for item in items:
        try:
            examples.extend(_read_one(item, data, task, image_format, invert))
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return examples


def _read_one(item: str, data: ComponentConfig, task: str | None, image_format: ImageFormat | None,
              invert: bool) -> list[Example]:
    """One input: one example, or a CSV file's rows."""
    path = Path(item)
    suffix = path.suffix.lower()
    if task == "seq2seq" and not (suffix in (".npy", ".csv") and path.is_file()):
        return [read_question(item, data)]
    if suffix not in (*IMAGE_SUFFIXES, ".npy", ".csv"):
        raise ConfigError(f"{item}: unsupported input (give .png, .jpg, .npy or .csv files"
                          + (")" if task != "seq2seq" else ", or question strings)"))
    if not path.is_file():
        raise ConfigError(f"{item}: no such file")
    if suffix == ".npy":
        return [Example(item, read_npy(path))]
    if suffix == ".csv":
        return read_csv_rows(path)
    return [read_image(path, image_format, data.name, invert=invert)]


def read_npy(path: Path) -> np.ndarray:
    """A numeric .npy array; object (pickled) arrays are refused: loading them could run code."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ConfigError(f"{path}: holds a pickled (object) array; nnlab never unpickles inputs "
                              "(save a numeric array with np.save)") from None
        raise ConfigError(f"{path}: not a .npy array ({first_line(exc)})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({first_line(exc)})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ConfigError(f"{path}: expected numbers, got an array of {getattr(array, 'dtype', type(array))}")
    return array.astype("float32")


def read_csv_rows(path: Path) -> list[Example]:
    """Feature rows, one example per line (a header line of names is skipped), named `file:line`."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CSV_BYTES // 2**20} MiB; give the rows as a .npy batch")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: not a CSV text file ({type(exc).__name__})") from None
    examples = []
    for number, row in enumerate(lines, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        try:
            values = np.array([float(c) for c in cells], dtype="float32")
        except ValueError:
            if number == 1 and not examples:  # a header line
                continue
            bad = next(c for c in cells if not _is_number(c))
            raise ConfigError(f"{path}:{number}: {bad[:40]!r} is not a number") from None
        examples.append(Example(f"{path}:{number}", values))
    if not examples:
        raise ConfigError(f"{path}: no rows of numbers")
    return examples


def read_image(path: Path, fmt: ImageFormat | None, data_name: str, *, invert: bool = False) -> Example:
    """A picture prepared as the run's loader (`data_name`) prepares its training images (`fmt`), its values
    turned round first with `invert`; a warning when it looks like dark ink on light paper and the training
    images are the other way round."""
    if fmt is None:
        raise ConfigError(f"{path}: the run's {data_name} data are not images (give .npy or .csv inputs)")
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            original = f"{image.width}x{image.height} {image.mode}"
            if fmt.mode == "channel 0":
                array = np.asarray(image)
                if array.ndim == 3:
                    array = array[..., 0]
                converted = Image.fromarray(to_uint8(array))  # as read_png_channel
            else:
                converted = image.convert(fmt.mode)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read as an image ({type(exc).__name__})") from None
    height, width = fmt.size
    resized = converted.size != (width, height)
    if resized:
        converted = converted.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(converted, dtype="float32")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    warning = None
    if invert:
        pixels = 255.0 - pixels
    elif fmt.light_ink and _light_background(pixels):
        warning = (f"{path}: dark ink on a light background, but the run's {data_name} images are light ink on a "
                   "dark one; --invert turns it round")
    x = pixels / fmt.divide if fmt.divide != 1 else pixels
    if fmt.flatten:
        x = x.reshape(-1)
    steps = [original, fmt.mode, f"resized to {width}x{height} (Lanczos)" if resized else f"{width}x{height} as is",
             *(["inverted (255 - value)"] if invert else []),
             f"pixels /{fmt.divide:g}" if fmt.divide != 1 else "pixels as is (0..255)", f"shape {x.shape}",
             f"values {x.min():.3f}..{x.max():.3f} (mean {x.mean():.3f})"]
    return Example(str(path), x, shown=f"{path}: " + " -> ".join(steps), warning=warning)


def _light_background(pixels: np.ndarray) -> bool:
    """The picture's border (where the background is) is mostly light: more than half its pixels above 127."""
    border = np.concatenate([pixels[0].ravel(), pixels[-1].ravel(), pixels[:, 0].ravel(), pixels[:, -1].ravel()])
    return float(np.median(border)) > 127


def read_question(text: str, data: ComponentConfig) -> Example:
    """A seq2seq question string ('12+345'), encoded as the run's addition data encodes its questions."""
    if data.name != "addition":
        raise ConfigError(f"{text!r}: string inputs need an addition run (this run's data is {data.name})")
    from nnlab.datasets.addition import VOCABULARY, format_question

    digits = int(data.params.get("digits", 3))
    bad = sorted({c for c in text if c not in VOCABULARY})
    if bad:
        raise ConfigError(f"{text[:40]!r}: the vocabulary {VOCABULARY!r} has no {''.join(bad)[:20]!r}")
    if len(text.strip()) > 2 * digits + 1:
        raise ConfigError(f"{text[:40]!r}: longer than the {2 * digits + 1} characters the model reads "
                          f"({digits}-digit numbers)")
    question = format_question(text.strip(), digits, bool(data.params.get("reverse_question", False)))
    indices = [VOCABULARY.index(c) for c in question]
    return Example(text, np.eye(len(VOCABULARY), dtype="float32")[indices])


# ---------------------------------------------------------------------------------------------
# Fitting to the model.
def fit_inputs(examples: list[Example], input_shape: tuple, *,
               problems: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Names and one stacked batch; every example must match `input_shape` (None: any size).

    One that does not raises ConfigError, or, when a `problems` list is given, is left out and said there.
    """
    names, arrays = [], []
    for example in examples:
        x = example.x
        if _matches(x.shape, input_shape):
            names.append(example.name)
            arrays.append(x[None])
        elif x.ndim == len(input_shape) + 1 and _matches(x.shape[1:], input_shape):
            names.extend(f"{example.name}[{i}]" for i in range(len(x)))
            arrays.append(x)
        elif x.ndim == 1 and None not in input_shape and x.size == int(np.prod(input_shape)):
            names.append(example.name)  # a flat row of features for an image-shaped input
            arrays.append(x.reshape(1, *input_shape))
        else:
            shape = tuple("?" if d is None else d for d in input_shape)
            message = (f"{example.name}: shaped {tuple(x.shape)}, the model takes {shape} "
                       f"(one example) or (N, {', '.join(map(str, shape))}) (a batch)")
            if problems is None:
                raise ConfigError(message)
            problems.append(message)
    batch = np.concatenate(arrays) if arrays else np.zeros((0, *input_shape), dtype="float32")
    return names, batch


def _matches(shape: tuple, expected: tuple) -> bool:
    return len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))


# ---------------------------------------------------------------------------------------------
# Turning outputs into rows.
def output_rows(task: str, y_pred: np.ndarray, class_names: list[str] | None, top: int) -> tuple[list[str], list[list]]:
    """A header and one row of cells per example: top-K classes with probabilities, values, or answers."""
    if task in ("multiclass", "binary"):
        probabilities = np.concatenate([1 - y_pred, y_pred], axis=-1) if task == "binary" else y_pred
        probabilities = probabilities.reshape(len(y_pred), -1)
        names = class_names or [str(i) for i in range(probabilities.shape[1])]
        k = max(1, min(top, probabilities.shape[1]))
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        header = [h for i in range(1, k + 1) for h in (f"class_{i}", f"probability_{i}")]
        rows = [[cell for j in row for cell in (names[j], float(p[j]))] for row, p in zip(order, probabilities)]
        return header, rows
    if task == "seq2seq":
        from nnlab.datasets.addition import decode

        return ["answer"], [[answer.strip()] for answer in decode(y_pred)]
    values = y_pred.reshape(len(y_pred), -1)
    header = ["value"] if values.shape[1] == 1 else [f"value_{i}" for i in range(1, values.shape[1] + 1)]
    return header, [[float(v) for v in row] for row in values]


def format_row(task: str, row: list) -> str:
    """A row for the terminal: `7 0.9312  1 0.0401` (class, probability), values, or the answer."""
    classification = task in ("multiclass", "binary")
    cells = [str(v) if not isinstance(v, float) else f"{v:.4f}" if classification else f"{v:.6g}" for v in row]
    if task == "seq2seq" and not cells[0]:
        cells = ["(blank)"]  # the model answered only padding
    if classification:
        cells = [f"{name} {p}" for name, p in zip(cells[::2], cells[1::2])]
    return "  ".join(cells)


def write_output(path: Path, names: list[str], header: list[str], rows: list[list], y_pred: np.ndarray) -> None:
    """CSV of the rows (input name first), or .npy of the raw model outputs, written atomically."""
    if path.suffix.lower() == ".npy":
        with runs.atomic_path(path) as tmp:
            np.save(tmp, np.asarray(y_pred), allow_pickle=False)
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["input", *header])
    writer.writerows([name, *(repr(v) if isinstance(v, float) else v for v in row)] for name, row in zip(names, rows))
    runs.write_text(path, text.getvalue())


def predict_run(ref: str, items: list[str], *, out: str | None = None, top: int = 1, show: bool = False,
                invert: bool = False, runs_dir: str | Path | None = None, allow_incomplete: bool = False,
                device: str = "auto", stream: TextIO | None = None, errors: TextIO | None = None) -> list[list]:
    """Predict with run `ref` for every input; print one row per example; return the rows.

    Inputs that cannot be used are left out: the others are predicted, then each one left out is one line
    on `errors` (stderr), the last as the ConfigError raised (exit code 2).
    """
    from nnlab.trained.run import open_run, recorded_inputs

    stream = stream or sys.stdout
    if top < 1:
        raise ConfigError(f"--top: expected 1 or more (got {top})")
    if out is not None and Path(out).suffix.lower() not in OUT_SUFFIXES:
        raise ConfigError(f"--out {out}: expected a .csv or .npy file name")
    errors = errors or sys.stderr
    run = open_run(ref, runs_dir, allow_incomplete=allow_incomplete)
    task = run.task
    image_format, class_names = recorded_inputs(run)
    problems: list[str] = []
    examples = read_inputs(items, run.config.data, task, image_format=image_format, invert=invert, problems=problems)
    if not examples:
        _refuse(problems, errors)  # nothing to predict: before Keras is imported
    if run.note:
        print(run.note, file=stream)
    for example in examples:
        if example.warning:
            print(f"warning: {example.warning}", file=errors, flush=True)
    if show:
        for example in examples:
            print(example.shown or f"{example.name}: used as is, shape {tuple(example.x.shape)}", file=stream)

    from nnlab.trained.run import load_model

    model = load_model(run, device)
    names, batch = fit_inputs(examples, tuple(model.inputs[0].shape[1:]), problems=problems)
    if not names:
        _refuse(problems, errors)
    y_pred = model.predict(batch, batch_size=256, verbose=0)
    if isinstance(y_pred, dict):  # an auxiliary per-frame head: the answer is the main output
        y_pred = y_pred["output"]
    header, rows = output_rows(task, np.asarray(y_pred), class_names, top)
    width = max(len(n) for n in names)
    for name, row in zip(names, rows):
        print(f"{name:<{width}}  {format_row(task, row)}", file=stream)
    if out is not None:
        write_output(Path(out), names, header, rows, np.asarray(y_pred))
        print(f"wrote {out}", file=stream)
    if problems:
        stream.flush()
        _refuse(problems, errors)
    return rows


def _refuse(problems: list[str], errors: TextIO) -> None:
    """One line per input left out: all but the last here, the last as the error the command ends with."""
    for problem in problems[:-1]:
        print(f"error: {problem}", file=errors)
    errors.flush()
    raise ConfigError(problems[-1])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["fit_inputs", "output_rows", "predict_run", "read_image", "read_inputs"]
