"""addition: 'a+b' question strings -> answer strings, one-hot characters, for seq2seq models."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from nnlab.datasets.base import DATASETS, DataParams, Dataset, DatasetSpec, cached_arrays, split_off, take_first
from nnlab.errors import ConfigError

VOCABULARY = "0123456789+ "
_GENERATOR_VERSION = 1  # bump when the generated data changes, so old caches are not reused


class AdditionParams(DataParams):
    digits: int = Field(3, ge=1, le=9, description="digits per number")
    n: int = Field(50000, ge=10, description="distinct questions generated")
    val_split: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation")
    reverse_question: bool = Field(False, description="feed the question characters in reverse order")


def encode(strings: list[str]) -> np.ndarray:
    """Strings of equal length -> integer character indices (n, length)."""
    lookup = {c: i for i, c in enumerate(VOCABULARY)}
    return np.array([[lookup[c] for c in s] for s in strings], dtype="int32")


def decode(y: np.ndarray) -> list[str]:
    """Character indices (n, length) or per-character probabilities (n, length, vocab) -> strings."""
    y = np.asarray(y)
    if y.ndim == 3:
        y = y.argmax(axis=-1)
    return ["".join(VOCABULARY[i] for i in row) for row in y]


def make_questions(digits: int, n: int, seed: int, reverse_question: bool) -> tuple[list[str], list[str]]:
    """`n` distinct questions like ' 12+345' (left-padded to 2*digits+1) and answers '357 '."""
    top = 10**digits
    if n > top * top:
        raise ConfigError(f"data.n: only {top * top} distinct questions have {digits} digits (got {n})")
    rng = np.random.default_rng(seed)
    pairs = rng.choice(top * top, size=n, replace=False)  # no question is asked twice
    a, b = np.divmod(pairs, top)
    questions = [format_question(f"{x}+{y}", digits, reverse_question) for x, y in zip(a, b)]
    answers = [str(s).ljust(digits + 1) for s in a + b]
    return questions, answers


def format_question(text: str, digits: int, reverse_question: bool) -> str:
    """'12+345' as the model reads it: left-padded to 2*digits+1 characters, reversed if asked."""
    question = text.rjust(2 * digits + 1)
    return question[::-1] if reverse_question else question


@DATASETS.register(AdditionParams)
def load_addition(digits=3, n=50000, val_split=0.2, reverse_question=False, seed=0, n_train=None, n_val=None) -> Dataset:
    """Generated 'a+b' -> 'sum' strings (keras-io addition_rnn); x one-hot, y character indices."""
    params = {"digits": digits, "n": n, "seed": seed, "reverse_question": reverse_question, "v": _GENERATOR_VERSION}

    def make():
        questions, answers = make_questions(digits, n, seed, reverse_question)
        return {"x": encode(questions).astype("int8"), "y": encode(answers)}

    arrays, key = cached_arrays("addition", params, make)
    x = np.eye(len(VOCABULARY), dtype="float32")[arrays["x"]]
    x_train, x_val, y_train, y_val = split_off(x, arrays["y"], val_split, seed, stratify=False)
    x_train, y_train = take_first(n_train, x_train, y_train)
    x_val, y_val = take_first(n_val, x_val, y_val)
    spec = DatasetSpec("seq2seq", x.shape[1:], len(VOCABULARY), output_length=digits + 1)
    meta = {"source": "generated", "generator": params, "cache": key}
    return Dataset(x_train, y_train, x_val, y_val, spec, meta=meta, decode=decode)
