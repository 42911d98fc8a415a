"""Exceptions raised by the OMASGAN core.

Every error that comes from bad user input is a subclass of :class:`OMASGANError` and carries a
single line naming the bad value and what is allowed, so the CLI can print it without a traceback.
"""


class OMASGANError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(OMASGANError, ValueError):
    """A configuration value is unknown or out of its allowed range."""


class DataError(OMASGANError, ValueError):
    """A data set is missing, truncated, malformed or empty for the requested protocol."""


class TrainingDivergedError(OMASGANError, RuntimeError):
    """A loss became NaN or infinite; the message names the stage and the step."""
