"""nnlab: from a short YAML file to a trained Keras model and a run folder full of evidence.

What each part owns (tests/test_imports.py checks that this list names every part, and that imports have no cycle):

  errors.py       the NnlabError family and their exit codes; ConfigError carries the file, key path and problem
  registry.py     Registry: the one name -> function table (datasets, models)
  runs.py         run folders: file names, atomic writes, meta.json status, history, checkpoint state, lookup by id
  config/         experiment files: YAML (yaml_io), the schema (schema), overrides (loading), its keys described (keys)
  keras_names.py  the names Keras accepts (activations, initializers, losses, metrics), checked without Keras
  metrics.py      task metrics as numpy functions, each task's main metric, which way a metric improves
  datasets/       loaders by name: arrays, task, class names (DatasetSpec); how images are prepared, known from params
  models/         model builders by name, from a DatasetSpec
  training/       backends (backend), compiling (compile), fitting (fit, fused, tbptt, callbacks), scoring (scoring)
  experiment.py   one training run, from a config file (or a stopped run) to a finished run folder; prepare (no folder)
  trained/        using a trained run: opening it (run), then evaluate, predict, export and inspect/
  reports/        reading run files (summary, compare), plots, the terminal view, HTML pages (html, *_page)
  sweeps/         sweep files (spec), the Optuna study, workers, trial hosts, aggregation, reports; nnlab sweep's steps
  run_table.py    the runs nnlab runs lists: a row per run folder, trials folded into sweeps, filters, sorting, removal
  cli/            the Typer app (main) and one thin module per command
"""

__version__ = "0.1.0"
