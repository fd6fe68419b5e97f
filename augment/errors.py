"""User-facing errors.

Every problem a user can fix (bad file, bad column, bad flag) is raised as an
``AugmentError`` whose message is one line naming the file, row, column and
what was expected. The CLI prints it without a traceback; the API lets it
propagate so training code can catch it.
"""

from __future__ import annotations


class AugmentError(Exception):
    """A problem with the user's input, configuration or environment."""


class DataError(AugmentError):
    """A dataset could not be read or does not have the expected shape."""


class ConfigError(AugmentError):
    """A configuration value or file is invalid."""


class RunDirError(AugmentError):
    """A run directory is missing, incomplete or from an incompatible version."""


class OutputExistsError(AugmentError):
    """An output already exists and ``overwrite`` was not requested."""


class MissingDependencyError(AugmentError):
    """An optional dependency is needed for this command."""


class LockedError(AugmentError):
    """Another process is writing the same output or run directory."""


class FetchError(AugmentError):
    """A package could not be downloaded, or is not the pinned file."""
