"""Sweeps: spec (the sweep file, pure), study (the Optuna study: the only module that touches it), worker (the
claim loop; trials as `nnlab train` processes), driver (the parent: workers, progress, signals), aggregate
(pure readers of the sweep folder), counts (parameter counts without training), report."""
