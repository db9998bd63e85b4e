"""`nnlab predict`: images, .npy, CSV and question strings in; one row per example out, checked exactly."""

from __future__ import annotations

import csv
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from nnlab import datasets, runs
from nnlab.datasets import DATASETS
from nnlab.cli.main import app
from nnlab.config import load_config
from nnlab.datasets.addition import decode
from nnlab.trained.predict import read_image
from conftest import DATASET_EXAMPLES, copy_run


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def val_predictions(run_dir):
    with np.load(run_dir / runs.PREDICTIONS) as data:
        return data["val_y_pred"]


def run_dataset(run_dir):
    return datasets.load(load_config(run_dir / runs.CONFIG).data)


def assert_rows(stdout: str, names: list[str], probabilities: np.ndarray, top: int) -> None:
    """Each line: the input name padded, then the top classes with 4-decimal probabilities (within 1e-4 of
    the training run's own predictions: batch sizes may move the last float bits)."""
    width = max(map(len, names))
    lines = stdout.splitlines()
    assert len(lines) == len(names)
    for line, name, p in zip(lines, names, probabilities):
        order = np.argsort(-p, kind="stable")[:top]
        pattern = re.escape(f"{name:<{width}}") + "  " + "  ".join(
            rf"{k} (\d\.\d{{4}})" for k in order)
        match = re.fullmatch(pattern, line)
        assert match, (line, pattern)
        assert [float(v) for v in match.groups()] == pytest.approx(p[order].tolist(), abs=1e-4)


def test_npy_batch_and_csv_rows_give_the_training_run_s_predictions(trained_run, tmp_path):
    run_dir = trained_run("mlp")
    x_val, expected = run_dataset(run_dir).x_val, val_predictions(run_dir)
    np.save(tmp_path / "batch.npy", x_val[:3])
    np.save(tmp_path / "one.npy", x_val[3])
    with open(tmp_path / "rows.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"pixel_{i}" for i in range(64)])
        writer.writerows(x.reshape(-1).tolist() for x in x_val[4:6])
    batch, one, rows = (str(tmp_path / n) for n in ("batch.npy", "one.npy", "rows.csv"))

    result = invoke("predict", str(run_dir), batch, one, rows, "--top", "2", "--out", str(tmp_path / "out.csv"))

    assert result.exit_code == 0, result.output
    names = [f"{batch}[0]", f"{batch}[1]", f"{batch}[2]", one, f"{rows}:2", f"{rows}:3"]
    *table, wrote = result.stdout.splitlines()
    assert wrote == f"wrote {tmp_path / 'out.csv'}"
    assert_rows("\n".join(table), names, expected[:6], top=2)
    with open(tmp_path / "out.csv", newline="") as f:
        written = list(csv.reader(f))
    assert written[0] == ["input", "class_1", "probability_1", "class_2", "probability_2"]
    assert [r[0] for r in written[1:]] == names
    assert [int(r[1]) for r in written[1:]] == expected[:6].argmax(axis=1).tolist()
    assert [float(r[2]) for r in written[1:]] == pytest.approx(expected[:6].max(axis=1), abs=1e-6)


def test_a_png_drawn_at_another_size_is_converted_like_the_loader_s_images(trained_run, tmp_path):
    run_dir = trained_run("mlp")
    picture = Image.new("RGB", (40, 40), "black")  # digits are light on dark, like the training images
    ImageDraw.Draw(picture).line([(12, 6), (28, 6), (18, 34)], fill="white", width=5)  # a 7
    picture.save(tmp_path / "seven.png")
    # The same conversion done here by hand: grayscale, 8x8 (the digits size), /255 as the loader scales.
    by_hand = np.asarray(picture.convert("L").resize((8, 8), Image.Resampling.LANCZOS), dtype="float32")[..., None] / 255.0
    np.save(tmp_path / "by_hand.npy", by_hand)
    png, npy = str(tmp_path / "seven.png"), str(tmp_path / "by_hand.npy")

    result = invoke("predict", str(run_dir), png, npy, "--show", "--top", "3")

    assert result.exit_code == 0, result.output
    shown, _, png_row, npy_row = result.stdout.splitlines()
    assert shown == (f"{png}: 40x40 RGB -> L -> resized to 8x8 (Lanczos) -> pixels /255 -> shape (8, 8, 1) -> "
                     f"values {by_hand.min():.3f}..{by_hand.max():.3f} (mean {by_hand.mean():.3f})")
    width = max(len(png), len(npy))
    assert png_row[width:] == npy_row[width:]  # the same classes and probabilities by both routes
    assert re.fullmatch(r" {2}\d \d\.\d{4} {2}\d \d\.\d{4} {2}\d \d\.\d{4}", png_row[width:])


IMAGE_DATASETS = [name for name in DATASETS.names() if datasets.image_format(name) is not None]


def test_the_image_datasets_are_known_without_loading_data():
    assert {"cifar10", "crt", "digits", "mnist", "mnist56", "r3"} <= set(IMAGE_DATASETS)
    assert not {"addition", "har", "pulse"} & set(IMAGE_DATASETS)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_image_files_become_the_loader_s_arrays_for_every_image_dataset(tmp_path, name, request):
    """Each registered dataset whose params declare an ImageFormat: its loader's spec says the same, and its
    validation images saved as picture files and read back through predict's route are the loader's arrays
    (exactly, where the loader's values are whole grey levels; within half a level for digits, whose 0..16 values
    a picture cannot hold)."""
    fixtures, params = DATASET_EXAMPLES[name]
    for fixture in fixtures:
        request.getfixturevalue(fixture)
    dataset = DATASETS.get(name).fn(**params)
    fmt = dataset.spec.image_format
    assert fmt == datasets.image_format(name, params)
    height, width = fmt.size
    for i, x in enumerate(dataset.x_val[:4]):
        levels = (x * fmt.divide).reshape(height, width, -1)
        pixels = levels.round().astype(np.uint8)
        mode = "RGB" if pixels.shape[-1] == 3 else "L"
        Image.fromarray(pixels if mode == "RGB" else pixels[..., 0], mode=mode).save(tmp_path / f"{i}.png")
        got = read_image(tmp_path / f"{i}.png", fmt, name).x
        assert got.shape == x.shape and got.dtype == x.dtype
        np.testing.assert_allclose(got, x, rtol=0, atol=0.5 / fmt.divide + 1e-6)
        if np.array_equal(levels, levels.round()):
            np.testing.assert_array_equal(got, x)


def test_predict_reads_the_image_format_the_run_recorded_and_asks_the_loader_for_older_runs(trained_run, tmp_path):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    meta = runs.read_json(run_dir / runs.META)
    assert meta["image_format"] == {"mode": "L", "size": [8, 8], "divide": 255.0, "flatten": False}
    assert meta["class_names"] == [str(d) for d in range(10)]
    picture = Image.new("L", (16, 16), "black")
    ImageDraw.Draw(picture).line([(4, 2), (12, 2), (7, 14)], fill="white", width=2)
    picture.save(tmp_path / "seven.png")
    recorded = invoke("predict", str(run_dir), str(tmp_path / "seven.png"), "--show", "--top", "3")
    assert recorded.exit_code == 0, recorded.output
    del meta["image_format"], meta["class_names"]  # as a run trained before they were recorded
    runs.write_json(run_dir / runs.META, meta)
    older = invoke("predict", str(run_dir), str(tmp_path / "seven.png"), "--show", "--top", "3")
    assert older.exit_code == 0, older.output
    assert older.stdout == recorded.stdout


def test_an_addition_string_gives_the_decoded_answer(trained_run):
    run_dir = trained_run("addition")
    dataset = run_dataset(run_dir)
    questions = [q.strip() for q in decode(dataset.x_val[:3])]
    answers = [a.strip() or "(blank)" for a in decode(val_predictions(run_dir)[:3])]

    result = invoke("predict", str(run_dir), *questions, "12+34")

    assert result.exit_code == 0, result.output
    width = max(len(q) for q in [*questions, "12+34"])
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"{q:<{width}}  {a}" for q, a in zip(questions, answers)]
    assert re.fullmatch(r"12\+34 {2}([0-9+]([0-9+ ]{0,2}[0-9+])?|\(blank\))", lines[3])  # a barely trained model's answer


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "wrong.npy", np.zeros((3, 7))),
     "error: {p}/wrong.npy: shaped (3, 7), the model takes (8, 8, 1) (one example) or (N, 8, 8, 1) (a batch)"),
    (lambda p: (p / "text.csv").write_text("a,b\n1,x\n"), "error: {p}/text.csv:2: 'x' is not a number"),
    (lambda p: (p / "notes.txt").write_text("hi"),
     "error: {p}/notes.txt: unsupported input (give .png, .jpg, .npy or .csv files)"),
    (lambda p: (p / "broken.png").write_bytes(b"not a png"), "error: {p}/broken.png: cannot read as an image "
                                                             "(UnidentifiedImageError)"),
], ids=["npy shape", "csv text", "suffix", "broken png"])
def test_inputs_that_do_not_fit_are_one_line_naming_the_input(trained_run, tmp_path, make, message):
    make(tmp_path)
    name = next(p for p in tmp_path.iterdir() if p.is_file())
    result = invoke("predict", str(trained_run("mlp")), str(name))
    assert result.exit_code == 2
    assert result.stderr == message.format(p=tmp_path) + "\n"


def test_a_character_outside_the_vocabulary_is_refused(trained_run):
    result = invoke("predict", str(trained_run("addition")), "12*3")
    assert result.exit_code == 2
    assert result.stderr == "error: '12*3': the vocabulary '0123456789+ ' has no '*'\n"


PROBE = """
import sys
from nnlab.cli.main import app
sys.argv = ["nnlab", "predict", {run!r}, {npy!r}]
try:
    app()
except SystemExit as exc:
    print("EXIT", exc.code)
print("LOADED:" + ",".join(sorted(m for m in ("tensorflow", "keras") if m in sys.modules)))
"""


def test_a_pickled_npy_is_refused_without_running_anything(trained_run, tmp_path):
    """An object array (a pickle inside .npy) stops before TensorFlow or Keras is even imported."""
    marker = tmp_path / "ran"
    np.save(tmp_path / "evil.npy", np.array([marker, 1], dtype=object), allow_pickle=True)
    script = PROBE.format(run=str(trained_run("mlp")), npy=str(tmp_path / "evil.npy"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[-2:] == ["EXIT 2", "LOADED:"]
    assert result.stderr == (f"error: {tmp_path}/evil.npy: holds a pickled (object) array; nnlab never unpickles "
                             "inputs (save a numeric array with np.save)\n")


def test_a_sequence_regression_gives_values_per_step_and_npy_out(trained_run, tmp_path):
    run_dir = trained_run("pulse")
    x_val, expected = run_dataset(run_dir).x_val, val_predictions(run_dir)
    np.save(tmp_path / "two.npy", x_val[:2])

    result = invoke("predict", str(run_dir), str(tmp_path / "two.npy"), "--out", str(tmp_path / "y.npy"))

    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[:2]
    for i, row in enumerate(rows):
        name, values = row.split("  ", 1)
        assert name == f"{tmp_path / 'two.npy'}[{i}]"
        assert [float(v) for v in values.split("  ")] == pytest.approx(expected[i].ravel().tolist(), abs=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy", allow_pickle=False), expected[:2], atol=1e-5)


def test_one_bad_input_among_many_the_good_ones_are_predicted_and_the_bad_one_named(trained_run, tmp_path):
    run_dir = trained_run("mlp")
    x = run_dataset(run_dir).x_val[:2]
    np.save(tmp_path / "a.npy", x[0])
    np.save(tmp_path / "b.npy", x[1])
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7)))
    good = [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]

    result = invoke("predict", str(run_dir), good[0], str(tmp_path / "wrong.npy"), str(tmp_path / "missing.png"),
                    good[1])

    assert result.exit_code == 2
    assert [line.split()[0] for line in result.stdout.splitlines()] == good
    assert result.stdout == invoke("predict", str(run_dir), *good).stdout  # the same rows as without the bad ones
    assert result.stderr.splitlines() == [
        f"error: {tmp_path}/missing.png: no such file",
        f"error: {tmp_path}/wrong.npy: shaped (3, 7), the model takes (8, 8, 1) (one example) or (N, 8, 8, 1) (a batch)",
    ]


def test_dark_ink_on_light_paper_is_warned_about_and_invert_turns_it_round(trained_run, tmp_path):
    run_dir = trained_run("mlp")
    for name, paper, ink in (("light.png", "white", "black"), ("dark.png", "black", "white")):
        picture = Image.new("L", (40, 40), paper)
        ImageDraw.Draw(picture).line([(12, 6), (28, 6), (18, 34)], fill=ink, width=5)  # a 7
        picture.save(tmp_path / name)
    light, dark = str(tmp_path / "light.png"), str(tmp_path / "dark.png")

    warned = invoke("predict", str(run_dir), light, dark, "--top", "3")
    inverted = invoke("predict", str(run_dir), light, "--invert", "--top", "3", "--show")

    assert warned.exit_code == 0 and inverted.exit_code == 0, (warned.output, inverted.output)
    assert warned.stderr == (f"warning: {light}: dark ink on a light background, but the run's digits images are "
                             "light ink on a dark one; --invert turns it round\n")
    assert inverted.stderr == ""
    assert "-> inverted (255 - value) ->" in inverted.stdout.splitlines()[0]
    dark_row = warned.stdout.splitlines()[1]
    assert inverted.stdout.splitlines()[1].split(None, 1)[1] == dark_row.split(None, 1)[1]  # as the dark drawing
