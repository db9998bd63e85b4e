"""Errors nnlab raises on purpose, and the exit code each maps to (the only place that knows them)."""


class NnlabError(Exception):
    """Base class: a message meant for the user, shown as one line without a traceback."""

    exit_code = 1


class ConfigError(NnlabError):
    """Bad input: a config file, an override, a CLI argument or missing data. Exit code 2."""

    exit_code = 2


class DataNotFoundError(ConfigError):
    """Real data files were looked for and not found; the message says what to put where."""


class RunNotFoundError(ConfigError):
    """No run folder matches the id, prefix or path the user gave."""


class RunBusyError(ConfigError):
    """Another live process owns the run folder (holds its lock)."""


class RunFailedError(NnlabError):
    """The run itself failed (for example the loss became NaN). Exit code 1."""


EXIT_OK = 0
EXIT_FAILED = RunFailedError.exit_code
EXIT_BAD_INPUT = ConfigError.exit_code
EXIT_INTERRUPTED = 130
