"""Experiment config: YAML reading (yaml_io), the file's schema (schema), loading with key=value overrides (loading),
its keys described (keys: what `nnlab list` shows, the key path a bare name means)."""

from nnlab.config.keys import describe, key_path
from nnlab.config.loading import apply_overrides, config_error, load_config, override_for, validate_config
from nnlab.config.schema import (MAX_SEED, OPTIMIZERS, ComponentConfig, EarlyStoppingConfig, ExperimentConfig,
                                 OptimizerConfig, OutputConfig, ScheduleConfig, TBPTTConfig, TrainConfig)
from nnlab.config.yaml_io import MAX_YAML_BYTES, MAX_YAML_VALUES, dump_yaml, parse_yaml, read_yaml
from nnlab.errors import one_line, shown
from nnlab.keras_names import check_keras_names
from nnlab.registry import Params

__all__ = [
    "MAX_SEED",
    "MAX_YAML_BYTES",
    "MAX_YAML_VALUES",
    "OPTIMIZERS",
    "ComponentConfig",
    "EarlyStoppingConfig",
    "ExperimentConfig",
    "OptimizerConfig",
    "OutputConfig",
    "Params",
    "ScheduleConfig",
    "TBPTTConfig",
    "TrainConfig",
    "apply_overrides",
    "check_keras_names",
    "config_error",
    "describe",
    "dump_yaml",
    "key_path",
    "load_config",
    "one_line",
    "override_for",
    "parse_yaml",
    "read_yaml",
    "shown",
    "validate_config",
]
