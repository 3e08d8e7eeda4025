"""The exception classes that decide the ``gpukpm`` command's exit code.

=========  ==============================================================================
exit code  meaning
=========  ==============================================================================
0          success
1          runtime failure (:class:`RunFailure`): backend unavailable, a task failed
2          usage or input error (:class:`UsageError`): command line, configuration
           (:class:`ConfigError`), input files (:class:`InputFileError`), environment flags
=========  ==============================================================================

Any other exception is an internal error and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["UsageError", "ConfigError", "InputFileError", "RunFailure"]


class UsageError(ValueError):
    """The user's input is wrong (command line, configuration, input file, environment): exit 2."""


class ConfigError(UsageError):
    """A configuration value is missing, of the wrong type or out of range (the message names the key)."""


class InputFileError(UsageError):
    """An input file is missing, unreadable, not HDF5 or not the gpukpm kind the command reads."""


class RunFailure(RuntimeError):
    """The run could not be carried out on this machine (backend unavailable, a task failed): exit 1."""
