"""datasets/ itself (base.py and __init__.py): splitting, the generated-data cache, what a failed download
says, the data a trial host reuses; and the two small loaders without a file of their own, digits and addition.
Each other loader has its test module (test_mnist, test_cifar10, test_shapes, test_har, test_digitsum,
test_rnn_pulse, test_autoencoder_patches)."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.datasets import DATASETS, addition, base
from nnlab.datasets.mnist import load_mnist
from nnlab.datasets.pulse import load_pulse
from nnlab.errors import ConfigError, DataNotFoundError


@pytest.mark.parametrize("error, ending", [
    (Exception("URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz: None -- "
               "[Errno -3] Temporary failure in name resolution"),
     "; downloading https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz failed too "
     "([Errno -3] Temporary failure in name resolution: is this machine offline?)"),
    (OSError("No space left on device"), "; Keras's download failed too (OSError: No space left on device)"),
], ids=["offline", "other"])
def test_a_failed_download_is_a_sentence_not_an_exception_name(monkeypatch, error, ending):
    """What keras.utils.get_file raises offline (a bare Exception) ended the message as 'download failed: Exception'."""
    import keras

    def offline():
        raise error

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataNotFoundError) as caught:
        load_mnist(download=True)
    assert str(caught.value).endswith(ending)


def test_addition_questions_answers_and_decode():
    questions, answers = addition.make_questions(digits=2, n=50, seed=1, reverse_question=False)
    assert len(set(questions)) == 50
    for q, a in zip(questions, answers):
        assert len(q) == 5 and len(a) == 3
        left, right = q.split("+")
        assert int(left) + int(right) == int(a)
    assert addition.decode(addition.encode(answers)) == answers


def test_generated_data_is_cached_by_its_parameters(monkeypatch):
    first = DATASETS.get("addition").fn(digits=2, n=100)
    cached = list(base.cache_dir().glob("addition-*.npz"))
    assert len(cached) == 1
    original = addition.make_questions
    monkeypatch.setattr(addition, "make_questions", lambda *a, **k: pytest.fail("regenerated"))
    again = DATASETS.get("addition").fn(digits=2, n=100)
    assert np.array_equal(first.x_train, again.x_train) and again.meta["cache"] == first.meta["cache"]
    monkeypatch.setattr(addition, "make_questions", original)
    DATASETS.get("addition").fn(digits=2, n=120)
    assert len(list(base.cache_dir().glob("addition-*.npz"))) == 2


def test_digits_split_is_stratified_and_seeded():
    a, b = DATASETS.get("digits").fn(seed=3), DATASETS.get("digits").fn(seed=3)
    assert np.array_equal(a.y_val, b.y_val)
    assert np.bincount(a.y_val).min() >= 30 and a.x_train.shape[1:] == (8, 8, 1)


# Uneven classes, ties between remainders, shares that round up and down, two-member classes.
SPLIT_LABELS = {
    "digits": None,
    "uneven": np.repeat(np.arange(5), [2, 3, 7, 11, 40]),
    "ties": np.repeat(np.array([4, 9, 1]), [5, 5, 5]),
    "strings": np.array(list("abcab" * 9 + "cc")),
}


@pytest.mark.parametrize("labels", SPLIT_LABELS)
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.37, 0.5])
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("stratify", [True, False])
def test_split_off_is_scikit_learns_train_test_split(labels, fraction, seed, stratify):
    """nnlab splits in numpy (importing scikit-learn costs a run ~0.9 s) and keeps its exact splits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target if labels == "digits" else SPLIT_LABELS[labels]
    x = np.arange(len(y) * 3, dtype="float32").reshape(len(y), 3)
    try:
        expected = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y if stratify else None)
    except ValueError:  # too few examples for a class on one side: nnlab says so in one line
        with pytest.raises(ConfigError, match=r"^data.val_split: a stratified split"):
            base.split_off(x, y, fraction, seed, stratify)
        return
    got = base.split_off(x, y, fraction, seed, stratify)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


def test_digits_are_scikit_learns_load_digits_split_as_before():
    """The loader reads scikit-learn's bundled file itself: the same images, labels and split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x, y = (bunch.images / 16.0).astype("float32")[..., None], bunch.target.astype("int32")
    expected = train_test_split(x, y, test_size=0.2, random_state=5, stratify=y)
    data = DATASETS.get("digits").fn(seed=5)
    for mine, theirs in zip((data.x_train, data.x_val, data.y_train, data.y_val), expected, strict=True):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


def test_a_trial_host_reuses_data_only_when_loading_it_drew_no_random_numbers(monkeypatch):
    """datasets.load(config, cache): the next trial with the same data section gets the same arrays (read-only,
    so no trial changes what the next trains on); a loader that draws from the global generator is never
    reused, or skipping it would shift the next trial's random stream."""
    import random

    import dataclasses

    from nnlab import datasets
    from nnlab.config import validate_config

    cache: dict = {}
    config = validate_config({"name": "t", "data": {"name": "digits", "n_train": 100, "n_val": 50},
                              "model": {"name": "mlp"}}, "t.yaml").data
    first = datasets.load(config, cache)
    again = datasets.load(config, cache)
    assert again.x_train is first.x_train and not again.x_train.flags.writeable
    assert again.meta == first.meta and again.meta is not first.meta
    with pytest.raises(ValueError):
        again.x_train[0, 0] = 1.0
    other = validate_config({"name": "t", "data": {"name": "digits", "n_train": 80, "n_val": 50},
                             "model": {"name": "mlp"}}, "t.yaml").data
    assert datasets.load(other, cache).x_train.shape[0] == 80 and cache["dataset"].x_train.shape[0] == 80

    entry = DATASETS.get("digits")
    drawing = dataclasses.replace(entry, fn=lambda **kw: (random.random(), entry.fn(**kw))[1])
    monkeypatch.setattr(DATASETS, "get", lambda name: drawing)
    cache.clear()
    drawn = datasets.load(config, cache)
    assert cache == {} and drawn.x_train.flags.writeable and datasets.load(config, cache) is not drawn


def test_a_corrupt_generated_cache_is_made_again(tmp_path):
    first = load_pulse(n_train=4, n_val=2, length=20, max_width=3, max_extra_gap=2)
    (cache,) = (tmp_path / "cache").rglob("pulse-*.npz")
    cache.write_bytes(cache.read_bytes()[:100])  # a kill while it was written, a full disk, an edit
    again = load_pulse(n_train=4, n_val=2, length=20, max_width=3, max_extra_gap=2)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert np.load(cache)["x"].shape == (6, 20)  # rewritten whole
