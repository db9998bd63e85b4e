"""Using a trained run: opening it (run.py: status, config, model, data as recorded), then evaluating it on a split
(evaluate.py), predicting on new inputs (predict.py), exporting its model (export.py) and looking inside it (inspect/)."""

from nnlab.trained.run import TrainedRun, load_data, load_model, open_run

__all__ = ["TrainedRun", "load_data", "load_model", "open_run"]
