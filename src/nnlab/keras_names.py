"""Names Keras accepts for activations, initializers, losses and metrics, known without importing Keras.

Each table holds the keys of the Keras module's ALL_OBJECTS_DICT (the lookup its `get(name)` uses) that `get`
accepts alone, so a config's typo is reported before the seconds that importing Keras and its backend take.
tests/test_everyday_errors.py compares the tables with the installed Keras; after a Keras upgrade that adds
or drops a name, `python -m nnlab.keras_names` writes this file again.
"""

from __future__ import annotations

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
