"""Names Keras accepts for activations, initializers, losses and metrics, known without importing Keras.

Each table holds the keys of the Keras module's ALL_OBJECTS_DICT (the lookup its `get(name)` uses) that `get`
accepts alone, so a config's typo is reported before the seconds that importing Keras and its backend take.
tests/test_keras_names.py compares the tables with the installed Keras; after a Keras upgrade that adds
or drops a name, `python -m nnlab.keras_names` writes this file again.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from nnlab.errors import ConfigError, shown

if TYPE_CHECKING:
    from nnlab.config.schema import ExperimentConfig

KERAS_VERSION = "3.15.1"  # the Keras the tables below were read from

# BEGIN TABLES (written by `python -m nnlab.keras_names`)
ACTIVATIONS = frozenset({
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "swish", "tanh", "tanh_shrink", "threshold",
})
INITIALIZERS = frozenset({
    "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "IdentityInitializer", "Initializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "OrthogonalInitializer", "RandomNormal",
    "RandomUniform", "STFT", "STFTInitializer", "TruncatedNormal", "VarianceScaling", "Zeros", "glorot_normal",
    "glorot_uniform", "he_normal", "he_uniform", "identity", "initializer", "lecun_normal", "lecun_uniform",
    "normal", "one", "ones", "orthogonal", "random_normal", "random_uniform", "stft", "truncated_normal",
    "uniform", "variance_scaling", "zero", "zeros",
})
LOSSES = frozenset({
    "BCE", "BinaryCrossentropy", "BinaryFocalCrossentropy", "CTC", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "CategoricalHinge", "Circle", "CosineSimilarity", "Dice", "Hinge", "Huber",
    "KLD", "KLDivergence", "LogCosh", "Loss", "MAE", "MAPE", "MSE", "MSLE", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson",
    "SparseCategoricalCrossentropy", "SquaredHinge", "Tversky", "bce", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "categorical_hinge", "circle", "cosine_similarity", "ctc", "dice", "hinge", "huber", "kl_divergence", "kld",
    "log_cosh", "mae", "mape", "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error", "mse", "msle", "poisson", "sparse_categorical_crossentropy",
    "squared_hinge", "tversky",
})
METRICS = frozenset({
    "AUC", "Accuracy", "BCE", "BinaryAccuracy", "BinaryCrossentropy", "BinaryIoU", "CategoricalAccuracy",
    "CategoricalCrossentropy", "CategoricalHinge", "ConcordanceCorrelation", "CosineSimilarity", "F1Score",
    "FBetaScore", "FalseNegatives", "FalsePositives", "Hinge", "KLDivergence", "LogCoshError", "MAE", "MAPE",
    "MSE", "MSLE", "Mean", "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredError",
    "MeanSquaredLogarithmicError", "Metric", "PearsonCorrelation", "Poisson", "Precision", "R2Score", "Recall",
    "RootMeanSquaredError", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy", "SquaredHinge", "Sum", "TopKCategoricalAccuracy", "TrueNegatives",
    "TruePositives", "accuracy", "auc", "bce", "binary_accuracy", "binary_crossentropy", "binary_io_u",
    "categorical_accuracy", "categorical_crossentropy", "categorical_hinge", "concordance_correlation",
    "cosine_similarity", "f1_score", "f_beta_score", "false_negatives", "false_positives", "hinge",
    "kl_divergence", "log_cosh_error", "mae", "mape", "mean", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_squared_error", "mean_squared_logarithmic_error", "metric", "mse",
    "msle", "pearson_correlation", "poisson", "precision", "r2_score", "recall", "root_mean_squared_error",
    "sparse_categorical_accuracy", "sparse_categorical_crossentropy", "sparse_top_k_categorical_accuracy",
    "squared_hinge", "sum", "top_k_categorical_accuracy", "true_negatives", "true_positives",
})
# END TABLES

TABLE_NAMES = {"activation": "ACTIVATIONS", "initializer": "INITIALIZERS", "loss": "LOSSES", "metric": "METRICS"}
KINDS = {"activation": ACTIVATIONS, "initializer": INITIALIZERS, "loss": LOSSES, "metric": METRICS}

_IDENTIFIER_SUFFIXES = ("activation", "initializer")  # model keys ending so name Keras objects
_COMPILE_METRICS = frozenset({"accuracy", "acc"})  # names compile() accepts beside keras.metrics.get's


def check_keras_names(config: ExperimentConfig) -> None:
    """ConfigError naming the key (no file: the caller knows it), with a did-you-mean, for a name Keras does not know."""
    def check(key: str, kind: str, name: Any) -> None:
        known = KINDS[kind] | (_COMPILE_METRICS if kind == "metric" else frozenset())
        if not isinstance(name, str) or name in known:
            return
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown Keras {kind} {shown(name)}{hint}", key=key)

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{key}.{k}" if isinstance(k, str) else f"{key}[{k!r}]", v)
                suffix = k.rsplit("_", 1)[-1] if isinstance(k, str) else ""
                if suffix in _IDENTIFIER_SUFFIXES:
                    for i, name in enumerate(v if isinstance(v, list) else [v]):
                        check(f"{key}.{k}" + (f"[{i}]" if isinstance(v, list) else ""), suffix, name)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(f"{key}[{i}]", item)

    walk("model", config.model.params)
    check("train.loss", "loss", config.train.loss)
    for i, name in enumerate(config.train.metrics or []):
        check(f"train.metrics[{i}]", "metric", name)


def keras_tables() -> dict[str, frozenset[str]]:
    """The same tables read from the installed Keras (imports it): the names its `get(name)` accepts."""
    from keras.src import activations, initializers, losses, metrics

    def accepted(module, name: str) -> bool:
        try:
            return module.get(name) is not None
        except (TypeError, ValueError, KeyError):  # e.g. `Constant` needs a value: Keras refuses the bare name
            return False

    modules = {"activation": activations, "initializer": initializers, "loss": losses, "metric": metrics}
    return {kind: frozenset(name for name in module.ALL_OBJECTS_DICT if accepted(module, name))
            for kind, module in modules.items()}


def _write() -> None:
    import keras

    path = __file__
    text = open(path, encoding="utf-8").read()
    head, _, rest = text.partition("# BEGIN TABLES (written by `python -m nnlab.keras_names`)\n")
    _, _, tail = rest.partition("# END TABLES\n")
    lines = []
    for kind, names in keras_tables().items():
        lines.append(f"{TABLE_NAMES[kind]} = frozenset({{")
        line = "   "
        for name in sorted(names):
            piece = f' "{name}",'
            if len(line) + len(piece) > 112:
                lines.append(line)
                line = "   "
            line += piece
        lines += [line, "})"]
    head = "\n".join(f'KERAS_VERSION = "{keras.__version__}"  # the Keras the tables below were read from'
                     if line.startswith("KERAS_VERSION = ") else line for line in head.split("\n"))
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + "# BEGIN TABLES (written by `python -m nnlab.keras_names`)\n" + "\n".join(lines) + "\n"
                + "# END TABLES\n" + tail)


if __name__ == "__main__":
    _write()
