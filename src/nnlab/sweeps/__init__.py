"""Sweeps: spec (the sweep file, pure), engine (Optuna study, workers, trials as `nnlab train` processes),
aggregate (pure readers of the sweep folder), counts (parameter counts without training), report."""
