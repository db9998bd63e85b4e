"""Task metrics against values computed by hand."""

import math

import numpy as np
import pytest

from nnlab import metrics


def test_multiclass_scores():
    labels = np.array([0, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    scores = metrics.multiclass_scores(labels, probs)
    assert scores["accuracy"] == 0.75
    assert scores["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6) + math.log(0.3) + math.log(0.8)) / 4)


def test_confusion_matrix_and_per_class_scores():
    matrix = metrics.confusion_matrix([0, 1, 2, 2], [0, 1, 0, 2], 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    scores = metrics.per_class_scores(matrix, ["a", "b", "c"])
    assert scores["a"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert scores["c"]["recall"] == 0.5 and scores["c"]["precision"] == 1.0


def test_binary_scores():
    labels = np.array([1, 1, 1, 0, 0])
    probs = np.array([0.9, 0.8, 0.3, 0.6, 0.1])
    scores = metrics.binary_scores(labels, probs)
    assert scores["accuracy"] == 0.6
    assert scores["sensitivity"] == pytest.approx(2 / 3)
    assert scores["specificity"] == 0.5
    # positives 0.9, 0.8, 0.3 vs negatives 0.6, 0.1: 5 of 6 pairs ranked right
    assert scores["roc_auc"] == pytest.approx(5 / 6)


def test_roc_auc_counts_ties_as_half():
    assert metrics.roc_auc([1, 0], [0.5, 0.5]) == 0.5
    assert math.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))


def test_seq2seq_scores():
    labels = np.array([[1, 2], [0, 0]])
    probs = np.eye(3)[[[1, 2], [0, 1]]]
    assert metrics.seq2seq_scores(labels, probs) == {"char_accuracy": 0.75, "sequence_accuracy": 0.5}


def test_regression_scores():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    scores = metrics.regression_scores(y, np.array([1.0, 2.0, 3.0, 6.0]))
    assert scores["mse"] == 1.0 and scores["mae"] == 0.5
    assert scores["nmse"] == pytest.approx(1.0 / 1.25)


@pytest.mark.parametrize("name, lower", [("val_loss", True), ("loss", True), ("test_nmse", True), ("val_mae", True),
                                         ("val_accuracy", False), ("val_roc_auc", False), ("val_precision", False),
                                         ("char_accuracy", False)])
def test_one_rule_for_which_way_a_metric_improves(name, lower):
    from nnlab.metrics import lower_is_better
    from nnlab.sweeps.spec import MetricSpec

    assert lower_is_better(name) is lower
    assert MetricSpec(name=name).goal == ("minimize" if lower else "maximize")  # a sweep's default goal follows it
