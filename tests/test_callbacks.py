"""nnlab's own Keras callbacks as a reader sees them: the progress bar and the per-epoch lines."""

from __future__ import annotations

import io


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_in_place_on_a_terminal_only():
    from nnlab.training.callbacks import ProgressBar

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar(stream)
        bar.set_params({"epochs": 3, "steps": 10})
        bar.on_epoch_begin(0)
        bar.on_train_batch_end(4, {"loss": 0.5})
        bar.on_epoch_end(0)
    assert terminal.getvalue().startswith("\repoch 1/3 [==========          ] 5/10  loss 0.5000  ")
    assert terminal.getvalue().endswith("\r\x1b[K") and log.getvalue() == ""


def test_progress_bar_counts_no_step_past_the_epoch():
    """With several steps per call Keras reports the call's last step, which may lie past a short last call."""
    from nnlab.training.callbacks import ProgressBar

    terminal = Terminal()
    bar = ProgressBar(terminal)
    bar.set_params({"epochs": 1, "steps": 13})
    bar.on_epoch_begin(0)
    bar.on_train_batch_end(14, {"loss": 0.5})
    assert terminal.getvalue().startswith("\repoch 1/1 [====================] 13/13  loss 0.5000  ")


def test_epoch_lines_fit_80_columns_and_the_eta_leaves_out_the_first_epoch():
    from nnlab.training.callbacks import EpochLogger

    history, out = [], io.StringIO()
    logger = EpochLogger(history, out)
    logger.set_params({"epochs": 10})
    for epoch, seconds in enumerate([30.0, 1.0, 1.0]):  # the first epoch compiles
        history.append({"epoch": epoch + 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.6, "val_accuracy": 0.8,
                        "learning_rate": 0.001, "time_s": seconds})
        logger.on_epoch_end(epoch)
    lines = out.getvalue().splitlines()
    assert lines[2] == "epoch  3/10 loss 0.5000 acc 0.9000 val_loss 0.6000 val_acc 0.8000 1.0s eta 7s"
    assert all(len(line) <= 80 for line in lines)
