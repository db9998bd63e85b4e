"""Errors nnlab raises on purpose, and the exit code each maps to (the only place that knows them).

Messages are one line: user input they repeat goes through `shown` (escaped, length-capped).
"""

import contextlib
from typing import Any, Iterator

SHOWN_CHARS = 60  # the longest piece of user input an error message repeats


class NnlabError(Exception):
    """Base class: a message meant for the user, shown as one line without a traceback."""

    exit_code = 1


class ConfigError(NnlabError):
    """Bad input: a config file, an override, a CLI argument or missing data. Exit code 2.

    Structured when it can be: `file` (the input it is about), `key` (its key path in that file, e.g.
    `train.optimizer.learning_rate`), `problem` (what is wrong), `override` (the `key=value` that set it)
    and `more` (how many further problems validation found); one line `file: key: problem` when shown.
    """

    exit_code = 2

    def __init__(self, problem: str = "", *, file: str | None = None, key: str | None = None,
                 override: str | None = None, more: int = 0):
        super().__init__(problem)
        self.problem, self.file, self.key, self.override, self.more = problem, file, key, override, more

    @property
    def detail(self) -> str:
        """The message without the file and the override note: `key: problem`."""
        tail = f" [and {self.more} more problem{'s' * (self.more > 1)}]" if self.more else ""
        return (f"{self.key}: " if self.key else "") + self.problem + tail

    def __str__(self) -> str:
        via = f" (from override {shown(self.override)})" if self.override else ""
        tail = f" [and {self.more} more problem{'s' * (self.more > 1)}]" if self.more else ""
        return (f"{self.file}: " if self.file else "") + (f"{self.key}: " if self.key else "") + self.problem + via + tail


class DataNotFoundError(ConfigError):
    """Real data files were looked for and not found; the message says what to put where."""


class RunNotFoundError(ConfigError):
    """No run folder matches the id, prefix or path the user gave."""


class RunBusyError(ConfigError):
    """Another live process owns the run folder (holds its lock)."""


class RunDamagedError(ConfigError):
    """A file of a run folder cannot be read (truncated by a kill, edited, half-copied)."""


class RunFailedError(NnlabError):
    """The run itself failed (for example the loss became NaN). Exit code 1."""


class OverBudget(ConfigError):
    """The model has more parameters than the config's `max_params`: exit code 2 before a run folder exists; a
    sweep's trial host records the trial as pruned (the sampler learns to avoid such points)."""

    def __init__(self, parameters: int, max_params: int, *, file: str | None = None):
        super().__init__(f"the model has {parameters:,} parameters, more than max_params {max_params:,}", file=file,
                         key="max_params")
        self.parameters = parameters


class RunPruned(NnlabError):
    """A sweep's pruner stopped the run after an epoch: recorded as `pruned`, neither failed nor resumable."""


@contextlib.contextmanager
def in_file(source: str) -> Iterator[None]:
    """Name `source` as the file of a ConfigError raised inside (loading data, building a model) that names none."""
    try:
        yield
    except ConfigError as exc:
        if exc.file is None and not str(exc).startswith(source):
            exc.file = source
        raise


def one_line(text: str, limit: int = 200) -> str:
    """`text` with line breaks and other control characters escaped, cut to `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text)[: 2 * limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message for a one-line error: its first line (its type's name if it has no text)."""
    text = str(exc).strip()
    return one_line(text.splitlines()[0] if text else type(exc).__name__, limit)


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A piece of user input for an error message: repr'd, on one line, never longer than `limit`."""
    if isinstance(value, (dict, list, tuple)) and len(value) > 20:
        return f"<a {type(value).__name__} of {len(value):,} items>"
    try:
        text = repr(value)
    except RecursionError:
        text = f"<a recursive {type(value).__name__}>"
    return one_line(text, limit)


EXIT_OK = 0
EXIT_FAILED = RunFailedError.exit_code
EXIT_BAD_INPUT = ConfigError.exit_code
EXIT_INTERRUPTED = 130
