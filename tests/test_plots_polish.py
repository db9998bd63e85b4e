"""Figures and report rows a reader looks at: integer epochs, class names, colour scales, what was set."""

from __future__ import annotations

import numpy as np

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
