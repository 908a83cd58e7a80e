"""User-facing errors: a message that says what was wrong and what to do.

The CLI turns any :class:`UserError` into one line on stderr and exit code 2.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad name, missing file, bad flag value)."""


class UnknownNameError(UserError, KeyError):
    """A name that is not in a registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(UserError):
    """A dataset whose files are missing or malformed."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded safely."""
