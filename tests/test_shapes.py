"""crt and r3 (datasets/shapes.py): the course PNG folders, the shape generators and their cache."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.datasets.base import cache_dir
from nnlab.datasets.shapes import load_crt, load_r3
from nnlab.errors import ConfigError, DataNotFoundError
from vision_data import write_course_folder


# ---------------------------------------------------------------------------------------------
# crt / r3 course folders
@pytest.mark.parametrize("separator", [" ", ","])
def test_crt_reads_the_course_folder_from_the_data_dir(tmp_path, separator):
    labels = write_course_folder(tmp_path / "data" / "crt", "crt", separator=separator)
    dataset = load_crt()
    assert dataset.meta["source"] == "real"
    assert dataset.x_train.shape == (6, 64, 64, 1) and dataset.x_val.shape == (4, 64, 64, 1)
    np.testing.assert_array_equal(dataset.y_train, labels["trn"])
    np.testing.assert_array_equal(dataset.y_val, labels["val"])
    # channel 0 / 255: image i has a bar of value 200 + i at a row given by its label
    label, first = labels["trn"][0], dataset.x_train[0, :, :, 0]
    assert first[15 + 10 * label, 30] == pytest.approx(200 / 255)
    assert first.max() <= 1.0 and dataset.class_names == ("circle", "rectangle", "triangle")


def test_r3_reads_a_folder_given_as_data_path_with_tst_for_validation(tmp_path):
    folder = tmp_path / "course"
    write_course_folder(folder, "r3")
    (folder / "r3-val").rename(folder / "r3-tst")
    (folder / "r3-val_trg.csv").rename(folder / "r3-tst_trg.csv")
    dataset = load_r3(path=str(folder))
    assert dataset.meta == {"source": "real", "path": str(folder)}
    assert len(dataset.x_val) == 4 and dataset.class_names == ("square", "horizontal", "vertical")


def test_course_folder_errors_name_the_problem(tmp_path):
    folder = tmp_path / "course"
    write_course_folder(folder, "crt")
    (folder / "crt-trn_trg.csv").write_text("1 0 0\n")
    with pytest.raises(ConfigError, match="crt-trn_trg.csv has 1 rows for 6 images"):
        load_crt(path=str(folder))
    with pytest.raises(DataNotFoundError, match=r"crt-trn/img_00001.png"):
        load_crt(source="files")
    with pytest.raises(ConfigError, match="data.path: .* does not exist"):
        load_crt(path=str(tmp_path / "nowhere"))


# ---------------------------------------------------------------------------------------------
# generators
def test_crt_generator_is_cached_and_deterministic():
    first = load_crt(n_train=30, n_val=12, seed=3)
    assert first.meta["source"] == "generated" and first.meta["generator"]["seed"] == 3
    cached = list(cache_dir().glob("crt-*.npz"))
    assert len(cached) == 1
    again = load_crt(n_train=30, n_val=12, seed=3)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert len(list(cache_dir().glob("crt-*.npz"))) == 1  # read back, not regenerated
    other = load_crt(n_train=30, n_val=12, seed=4)
    assert not np.array_equal(first.x_train, other.x_train)
    assert first.x_train.shape == (30, 64, 64, 1) and 0 <= first.x_train.min() and first.x_train.max() <= 1
    assert set(np.unique(first.y_train)) == {0, 1, 2}
    # every image holds one shape of reasonable size: between a radius-8 circle's area and the whole image
    area = first.x_train.sum(axis=(1, 2, 3))
    assert (area > 50).all() and (area < 64 * 64 / 2).all()


def test_r3_generator_keeps_the_aspect_margin_and_proportions():
    dataset = load_r3(n_train=300, n_val=10, margin=0.5, proportions=[0.6, 0.2, 0.2])
    masks = dataset.x_train[..., 0] > 0.5
    heights = masks.any(axis=2).sum(axis=1)
    widths = masks.any(axis=1).sum(axis=1)
    ratio = widths / heights
    y = dataset.y_train
    assert np.all(ratio[y == 0] == 1)
    assert np.all(ratio[y == 1] >= 1.5) and np.all(1 / ratio[y == 2] >= 1.5)
    shares = np.bincount(y, minlength=3) / len(y)
    assert 0.5 < shares[0] < 0.7 and shares[1] < 0.3 and shares[2] < 0.3


def test_turn_adds_each_training_image_turned_with_the_label_its_shape_then_has():
    plain = load_r3(n_train=60, n_val=10, margin=0.5)
    dataset = load_r3(n_train=60, n_val=10, margin=0.5, turn=True)
    assert dataset.x_train.shape == (120, 64, 64, 1) and len(dataset.y_train) == 120
    np.testing.assert_array_equal(dataset.x_train[:60], plain.x_train)  # the drawn images first, as they were
    np.testing.assert_array_equal(dataset.x_val, plain.x_val)  # validation is never turned
    masks = dataset.x_train[60:, ..., 0] > 0.5
    ratio = masks.any(axis=1).sum(axis=1) / masks.any(axis=2).sum(axis=1)  # width / height of the turned copies
    turned = dataset.y_train[60:]
    assert set(turned) == {0, 1, 2} and np.array_equal(turned, np.array([0, 2, 1])[plain.y_train])
    assert np.all(ratio[turned == 0] == 1) and np.all(ratio[turned == 1] >= 1.5) and np.all(1 / ratio[turned == 2] >= 1.5)
    assert dataset.meta["turned"] == "60 training images, each also turned by 90 degrees"
    crt = load_crt(n_train=20, n_val=4, turn=True)
    np.testing.assert_array_equal(crt.y_train[20:], crt.y_train[:20])  # circles, rectangles, triangles stay what they are


def test_turn_needs_square_images(tmp_path):
    from PIL import Image

    folder = tmp_path / "course"
    write_course_folder(folder, "r3")
    for png in (folder / "r3-trn").iterdir():
        Image.new("L", (64, 48)).save(png)
    with pytest.raises(ConfigError, match=r"data.turn: needs square images \(these are 48x64\)"):
        load_r3(path=str(folder), turn=True)


def test_generator_options_are_validated(tmp_path):
    from conftest import write_config
    from nnlab.config import load_config

    path = write_config(tmp_path / "r3.yaml", {"data": {"name": "r3", "proportions": [1, 1]}, "model": {"name": "mlp"}})
    with pytest.raises(ConfigError, match=r"data.proportions: expected three non-negative shares"):
        load_config(path)
