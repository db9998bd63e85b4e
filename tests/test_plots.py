"""Figures and report rows a reader looks at: integer epochs, class names, colour scales, what was set."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.reports.summary import Curves, config_essentials


def test_curves_have_integer_epoch_ticks():
    from nnlab.reports.plots import plot_curves

    fig = plot_curves(Curves([1, 2, 3], {"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.4]}))
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_binary_histogram_names_the_classes():
    from nnlab.reports.plots import plot_predictions

    fig = plot_predictions(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]), "binary", class_names=["5", "6"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true 5", "true 6"]
    assert ax.get_xlabel() == "predicted probability of 6"


def test_feature_map_grid_shares_one_colour_scale():
    from nnlab.reports.plots import plot_image_grid

    fig = plot_image_grid([np.zeros((4, 4)), np.full((4, 4), 3.0)], colorbar=True)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2 and {im.get_clim() for im in images} == {(0.0, 3.0)}
    assert len(fig.axes) == 2 + 1  # the 1x2 grid and the colour bar


def test_report_rows_show_the_model_parameters_that_were_set_not_every_default():
    rows = dict(config_essentials({"data": {"name": "digits", "val_split": 0.2, "n_train": 200},
                                   "model": {"name": "mlp", "hidden": [16], "activation": "relu", "dropout": 0.0}}))
    assert rows["model"] == "mlp(hidden=[16])"
    assert rows["data"] == "digits(n_train=200)"


def _legends_off_the_data(fig) -> list:
    """Every legend of the figure (per axes and figure-level) with its box, and the boxes of the plotting areas."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    areas = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_label() != "<colorbar>"]
    return [(legend, [area for area in areas if legend.get_window_extent(renderer).overlaps(area)])
            for legend in legends]


def test_legends_do_not_cover_data():
    from nnlab.reports.plots import plot_curves, plot_predictions, plot_roc

    rng = np.random.default_rng(0)
    figures = {
        "curves": plot_curves(Curves([1, 2, 3], {"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.4],
                                                 "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.4, 0.6, 0.8]})),
        "binary": plot_predictions(np.arange(40) % 2, rng.random(40), "binary"),
        "regression": plot_predictions(rng.normal(size=(40, 1)), rng.normal(size=(40, 1)), "regression"),
        "sequence": plot_predictions(rng.normal(size=(5, 10)), rng.normal(size=(5, 10)), "sequence_regression"),
        "roc": plot_roc(np.arange(40) % 2, rng.random(40)),
    }
    for name, fig in figures.items():
        found = _legends_off_the_data(fig)
        assert found, name
        assert all(not overlapping for _, overlapping in found), name


def test_a_learning_rate_schedule_gets_its_own_panel():
    from nnlab.reports.plots import plot_curves

    series = {"loss": [1.0, 0.5, 0.2, 0.1], "val_loss": [1.1, 0.7, 0.4, 0.3]}
    decayed = plot_curves(Curves([1, 2, 3, 4], {**series, "learning_rate": [0.1, 0.01, 0.001, 0.0001]}))
    constant = plot_curves(Curves([1, 2, 3, 4], {**series, "learning_rate": [0.001] * 4}))
    assert [ax.get_title() for ax in decayed.axes] == ["loss", "learning rate (the schedule)"]
    assert decayed.axes[1].get_yscale() == "log"
    assert list(decayed.axes[1].lines[0].get_ydata()) == [0.1, 0.01, 0.001, 0.0001]
    assert [ax.get_title() for ax in constant.axes] == ["loss"]  # no schedule: nothing to show


def test_a_binary_run_that_reports_roc_auc_gets_its_roc_curve(tmp_path):
    from sklearn.metrics import roc_auc_score

    from fake_runs import make_run
    from nnlab import runs
    from nnlab.reports.plots import roc_points, write_run_plots

    run_dir = make_run(tmp_path, "20260102-030400-binary-ab00", "binary")
    written = {p.name for p in write_run_plots(run_dir)}
    assert "roc_val.png" in written
    with np.load(run_dir / runs.PREDICTIONS) as data:
        y_true, y_pred = data["val_y_true"], data["val_y_pred"]
    fpr, tpr = roc_points(y_true, y_pred)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(roc_auc_score(y_true, y_pred.ravel()))
    multiclass = make_run(tmp_path, "20260102-030400-multi-ab01", "multiclass")
    assert not any(p.name.startswith("roc_") for p in write_run_plots(multiclass))  # no ROC AUC reported: no curve
