"""Exceptions raised by the OMASGAN core.

Every error that comes from bad user input is a subclass of :class:`OMASGANError` and carries a
single line naming the bad value and what is allowed, so the CLI can print it without a traceback.
"""


class OMASGANError(Exception):
    """Base class of every error the library raises on purpose."""

    exit_status = 2
    """The command line's exit status for it (2: the input was refused)."""


class ConfigError(OMASGANError, ValueError):
    """A configuration value is unknown or out of its allowed range."""


class DataError(OMASGANError, ValueError):
    """A data set is missing, truncated, malformed or empty for the requested protocol."""


class DataMissingError(DataError):
    """A data file is not where the config says (not there at all, as opposed to damaged).  In a study
    on a cluster that is the node's fault, not the config's: the study checked the data before it
    started, so a worker that lacks it is retried (elsewhere) instead of recording the config as failed."""


class TrainingDivergedError(OMASGANError, RuntimeError):
    """A loss became NaN or infinite; the message names the stage and the step."""
