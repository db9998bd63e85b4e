"""Comparing runs: config differences by flattened key and metrics side by side (pure, no drawing)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from nnlab.reports.summary import RunSummary, flatten

MISSING = object()  # a key one run's config lacks
# meta.json entries that are not what the numbers depend on (where the compiled-program cache lives,
# what --device asked for: `device.used` says what ran).
_NOT_ENVIRONMENT = {"device.requested", "device.compilation_cache"}


@dataclass(frozen=True)
class Comparison:
    """Runs in the order given, their flattened configs, and which keys differ."""

    runs: list[RunSummary]
    configs: list[dict[str, Any]]  # flattened config per run
    keys: list[str]  # every config key of any run, in first-seen order
    differing: list[str]  # keys whose value is not the same in every run
    environments: list[dict[str, Any]]  # per run, what its numbers depend on besides the config (flattened meta)
    environment_differing: list[str]  # environment entries whose value is not the same in every run

    @property
    def labels(self) -> list[str]:
        """A, B, C, ... (AA, AB, ... past Z): short column names for the runs."""
        return [_label(i) for i in range(len(self.runs))]

    def values(self, key: str) -> list[Any]:
        """The key's value in each run (MISSING where a run has no such key)."""
        return [config.get(key, MISSING) for config in self.configs]

    def environment_values(self, key: str) -> list[Any]:
        """An environment entry's value in each run (MISSING where a run's meta.json lacks it)."""
        return [environment.get(key, MISSING) for environment in self.environments]

    def reproducibility_note(self) -> str | None:
        """For runs of one config and seed whose numbers differ: which recorded entry explains it, or that none does."""
        if self.differing or not all(run.metrics for run in self.runs):
            return None
        if not any(len(set(map(repr, values))) > 1 for _, _, values in self.metric_rows()):
            return None
        if self.environment_differing:
            return "same config and seed, different numbers: they ran with different " + ", ".join(
                self.environment_differing)
        return ("same config, seed and recorded environment, different numbers: something not recorded differs "
                "(ops that are not deterministic: set train.deterministic: true; or the data files changed)")

    def metric_rows(self) -> list[tuple[str, str, list[float | None]]]:
        """(split, metric, value per run) for every metric any run has, split by split."""
        order = ["train", "val", "test"]
        splits = list(dict.fromkeys(s for run in self.runs for s in run.splits))
        splits.sort(key=lambda s: (order.index(s) if s in order else len(order), s))
        rows = []
        for split in splits:
            names = list(dict.fromkeys(k for run in self.runs for k in run.metrics.get(split, {})))
            for name in sorted(names, key=lambda k: (k != "loss", names.index(k))):
                rows.append((split, name, [run.metrics.get(split, {}).get(name) for run in self.runs]))
        return rows


def compare_runs(summaries: list[RunSummary]) -> Comparison:
    """Line up the runs' flattened configs and find the keys whose values differ."""
    configs = [flatten(run.config) for run in summaries]
    environments = [environment(run) for run in summaries]
    return Comparison(list(summaries), configs, _keys(configs), _differing(configs), environments,
                      _differing(environments))


def environment(run: RunSummary) -> dict[str, Any]:
    """What a run's numbers depend on besides its config and seed, from meta.json: the backend, device,
    deterministic ops, threads and CPUs, library versions, the environment variables that change numerics,
    and the data it read (flattened, `device.threads`)."""
    flat = flatten({"device": run.device, "versions": run.versions, "data": run.data})
    return {k: v for k, v in flat.items() if k not in _NOT_ENVIRONMENT}


def _keys(mappings: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for mapping in mappings for k in mapping))


def _differing(mappings: list[dict[str, Any]]) -> list[str]:
    return [k for k in _keys(mappings) if len({_canonical(m.get(k, MISSING)) for m in mappings}) > 1]


def comparison_file_name(run_ids: list[str]) -> str:
    """`compare-<id>_<id>....html`, shortened with a hash when the ids would make a very long name."""
    joined = "_".join(run_ids)
    if len(joined) > 150:
        digest = hashlib.sha1(joined.encode()).hexdigest()[:8]
        joined = f"{run_ids[0]}_and_{len(run_ids) - 1}_more-{digest}"
    return f"compare-{joined}.html"


def _canonical(value: Any) -> str:
    return "<missing>" if value is MISSING else repr(value)


def _label(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


__all__ = ["MISSING", "Comparison", "compare_runs", "comparison_file_name", "environment"]
