"""Sweep reports that fit the search method: a bayes search read as a history with importances, a grid as
metric against each swept value; both pages rendered in headless Chromium. Fake sweep folders, no training."""

from __future__ import annotations

import math
import re

import matplotlib.image
import numpy as np
import pytest

from fake_runs import make_sweep
from nnlab.sweeps import aggregate
from nnlab.sweeps.report import (label, param_importances, plot_metric_scatter, plot_trial_curves, shown,
                                 train_best_command, write_sweep_plots, write_sweep_report)
from test_report import CHROMIUM, _chromium, images

LEARNING_RATE = "train.optimizer.learning_rate"
BAYES_PARAMETERS = {
    LEARNING_RATE: {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    "model.hidden": {"values": [[8], [16], [32]]},
    "train.batch_size": {"distribution": "int_uniform", "min": 16, "max": 128},
}


def bayes_trials(n: int = 16) -> list[dict]:
    """The metric rises with the learning rate's logarithm (what matters), a little with width, not with batch size."""
    rng = np.random.default_rng(3)
    trials = []
    for i in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        hidden = [[8], [16], [32]][i % 3]
        value = 0.5 + 0.1 * (math.log10(lr) + 4) + 0.01 * hidden[0] / 8 + float(rng.normal(0, 0.005))
        trials.append({"params": {LEARNING_RATE: lr, "model.hidden": hidden,
                                  "train.batch_size": int(rng.integers(16, 129))}, "value": round(value, 4),
                       "epochs": 1})
    return trials


def grid_trials() -> list[dict]:
    """model.hidden x learning rate, two repeats per point; the parameter count follows the width."""
    trials, point = [], 0
    for hidden in ([8], [32]):
        for lr in (0.001, 0.01):
            for seed in (0, 1):
                trials.append({"params": {"model.hidden": hidden, LEARNING_RATE: lr}, "seed": seed, "point": point,
                               "value": 0.6 + hidden[0] / 200 + lr + 0.01 * seed, "parameters": 100 * hidden[0]})
            point += 1
    return trials


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("sweeps") / "runs"
    bayes = make_sweep(runs_dir, "20260102-100000-search-bb01", method="bayes", parameters=BAYES_PARAMETERS,
                       trials=bayes_trials())
    (bayes / aggregate.BEST).write_text("# best point\nname: search-best\n")
    grid = make_sweep(runs_dir, "20260102-110000-grid-cc01", method="grid",
                      parameters={"model.hidden": {"values": [[8], [32]]}, LEARNING_RATE: {"values": [0.001, 0.01]}},
                      trials=grid_trials())
    return {"bayes": (bayes, write_sweep_report(bayes).read_text()),
            "grid": (grid, write_sweep_report(grid).read_text())}


def plots(sweep_dir) -> set[str]:
    return {p.name for p in (sweep_dir / aggregate.PLOTS).glob("*.png")}


def test_a_bayes_report_shows_history_scatter_importances_parallel_coordinates_and_contour(reports):
    sweep_dir, page = reports["bayes"]
    assert plots(sweep_dir) == {"history.png", "importances.png", "parallel_coordinates.png", "contour.png",
                                "curves.png", "metric_vs_train_optimizer_learning_rate.png",
                                "metric_vs_model_hidden.png", "metric_vs_train_batch_size.png"}
    # No parameter count against the learning rate or batch size (the count is flat): nothing to read.
    assert not any(name.startswith("parameters_vs_") for name in plots(sweep_dir))
    assert set(images(page)) == {name.removesuffix(".png").replace("_", " ") for name in plots(sweep_dir)}
    assert "default-src 'none'" in page  # self-contained: the trial links are relative files
    order = [alt for alt in re.findall(r'<img alt="([^"]*)"', page)]
    assert order[:2] == ["history", "importances"]  # how the search went, then what mattered


def test_redrawing_removes_plots_no_longer_drawn_but_not_another_writer_s_temporary(reports):
    """Two processes can finish one sweep at once (`--resume` on two hosts): each draws the same plots, and
    neither may delete the other's half-written `.name-<random>.png` (it made the other's rename fail)."""
    sweep_dir, _ = reports["grid"]
    folder = sweep_dir / aggregate.PLOTS
    drawn = plots(sweep_dir) - {"old_plot.png"}
    in_flight = folder / ".metric_vs_model_hidden-a1b2c3d4.png"
    in_flight.write_bytes(b"half a png")
    (folder / "old_plot.png").write_bytes(b"a plot an older nnlab drew")
    written = write_sweep_plots(sweep_dir)
    assert {p.name for p in written} == plots(sweep_dir) - {in_flight.name} == drawn
    assert in_flight.read_bytes() == b"half a png"
    assert in_flight.name not in write_sweep_report(sweep_dir).read_text()  # the page shows finished plots only
    in_flight.unlink()


def test_importances_are_optuna_s_and_name_the_parameter_that_matters(reports):
    sweep = aggregate.read_sweep(reports["bayes"][0])
    importances = param_importances(sweep)
    assert set(importances) == set(BAYES_PARAMETERS)
    assert sum(importances.values()) == pytest.approx(1.0)
    assert max(importances, key=importances.get) == LEARNING_RATE


def test_a_search_draws_points_not_lines_and_no_legend_of_unique_points(reports):
    sweep = aggregate.read_sweep(reports["bayes"][0])
    scatter = plot_metric_scatter(sweep, LEARNING_RATE).axes[0]
    assert len(scatter.lines) == 0 and scatter.get_xscale() == "log"  # log-spaced values on a log axis
    assert len(scatter.collections[0].get_offsets()) == 16  # every trial a dot, coloured by trial number
    curves = plot_trial_curves(sweep, sweep.sweep_dir.parent.parent).axes[0]
    assert curves.get_legend() is None
    assert all(line.get_marker() not in (None, "None", "") for line in curves.lines)  # one epoch: markers, not lines


def test_tables_say_how_to_train_the_best_point_and_scroll_inside_the_page(reports):
    sweep_dir, page = reports["bayes"]
    best = sweep_dir / aggregate.BEST
    assert train_best_command(sweep_dir) == f"nnlab train {best}"
    assert f'<code class="command">nnlab train {best}</code>' in page
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert summary.startswith('<h2>Per point</h2><div class="scroll"><table>')
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", summary)[1:]
    stds = [re.findall(r"<td[^>]*>(.*?)</td>", row)[2 + len(BAYES_PARAMETERS) + 1] for row in rows]
    assert set(stds) == {"–"}  # one repeat: no spread to show, not 0.0000
    means = [re.findall(r"<td[^>]*>(.*?)</td>", row)[len(BAYES_PARAMETERS) + 2] for row in rows]
    assert all(re.fullmatch(r"\d\.\d{4}", m) for m in means), means  # one column, one format
    assert '<section id="trials"><h2>Trials</h2><div class="scroll">' in page


def test_best_yaml_s_comment_says_how_to_train_it(tmp_path):
    path = aggregate.write_best(tmp_path, {"name": "x"}, "best point of sweep s")
    assert path.read_text().splitlines()[:2] == ["# best point of sweep s", f"# train it: nnlab train {path}"]


def test_a_grid_report_keeps_metric_against_each_value_and_counts_that_change(reports):
    sweep_dir, page = reports["grid"]
    assert plots(sweep_dir) == {"metric_vs_model_hidden.png", "metric_vs_train_optimizer_learning_rate.png",
                                "parameters_vs_model_hidden.png", "curves.png"}
    sweep = aggregate.read_sweep(sweep_dir)
    curves = plot_trial_curves(sweep, sweep_dir.parent.parent).axes[0]
    assert curves.get_legend() is not None  # points with repeats: the legend groups them
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert "–" not in summary  # two repeats per point: a real std everywhere


@pytest.mark.parametrize("method", ["bayes", "grid"])
def test_sweep_reports_render_in_headless_chromium(reports, tmp_path, method):
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)"
    sweep_dir, _ = reports[method]
    screenshot, requests = _chromium(sweep_dir / aggregate.REPORT, tmp_path / method)
    assert requests == []
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (1400, 1000)
    ink = (pixels.min(axis=-1) < 0.9).mean()
    assert 0.02 < ink < 0.9, ink
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert colours > 50  # text, tables and the plots' colour maps, not a blank or an error page


def test_the_terminal_table_shows_no_spread_for_one_repeat(reports):
    from io import StringIO

    from rich.console import Console

    from nnlab.sweeps.report import print_sweep

    sweep = aggregate.read_sweep(reports["bayes"][0])
    out = StringIO()
    print_sweep(sweep, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "0.0000" not in text and " – " in text
    best = next(line for line in text.splitlines() if line.startswith("best point: "))
    assert "±" not in best and best.endswith(f"(n=1); best.yaml: {sweep.sweep_dir / aggregate.BEST}")


def test_parameter_counts_are_not_split_by_training_settings(reports):
    """The count follows model.hidden alone: one line, not one per learning rate lying on top of each other."""
    from nnlab.sweeps.report import plot_metric_against

    sweep = aggregate.read_sweep(reports["grid"][0])
    ax = plot_metric_against(sweep, "model.hidden", y="parameters").axes[0]
    assert len(ax.lines) == 1 and ax.get_legend() is None
    assert list(ax.lines[0].get_ydata()) == [800.0, 3200.0]


def test_long_swept_values_are_shown_compact_and_wrapped_in_figures():
    model = label({"name": "cnn", "blocks": [{"filters": 2, "pool": 2}], "dense": [], "global_pool": "avg"})
    assert shown(model) == "{name:cnn, blocks:[{filters:2, pool:2}],\ndense:[], global_pool:avg}"
    assert shown("0.001") == "0.001" and shown("a, b: c") == "a, b: c"  # only JSON is compacted
    assert [label(v) for v in (None, True, 0.5, "relu")] == ["null", "true", "0.5", "relu"]  # as YAML spells them


@pytest.mark.parametrize("width", [40, 80])
def test_a_narrow_terminal_gets_every_column_whole(reports, width):
    """rich squeezes a table to the terminal: it dropped the point, swept and n columns and cut the numbers."""
    from io import StringIO

    from rich.console import Console

    from nnlab.sweeps.report import print_sweep

    sweep = aggregate.read_sweep(reports["grid"][0])
    out = StringIO()
    print_sweep(sweep, Console(file=out, width=width, color_system=None))
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("point")), None)
    assert start is not None, out.getvalue()  # the point column was dropped
    assert lines[start].split()[:4] == ["point", "model.hidden", "train.optimizer.learning_rate", "n"], lines
    assert "…" not in out.getvalue()
    table = lines[start + 2:lines.index(next(line for line in lines if line.startswith("sweep id: ")))]
    assert [row.split()[0] for row in table] == [str(p.point) for p in sweep.points]
