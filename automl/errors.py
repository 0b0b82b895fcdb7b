"""One error hierarchy for everything the engine reports to a user.

The CLI turns any :class:`AutoMLError` into one clear message and exit code 2; a
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

__all__ = [
    "AutoMLError",
    "DataError",
    "PluginError",
    "SpecError",
    "StoreError",
    "TrialError",
]


class AutoMLError(Exception):
    """Base class of every error the engine reports to a user."""

    exit_code = 2


class SpecError(AutoMLError):
    """A spec file that cannot be read or does not validate.

    Args:
        message: What is wrong, what was expected and how to fix it.
        file: The spec file, when known.
        line: 1-based line in ``file``, when known.
        column: 1-based column in ``file``, when known.
        field: Dotted path of the offending field (``space.C.low``), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}" if where else f"{field}{self.message}"


class PluginError(AutoMLError):
    """A plugin that is missing, clashes with another or misbehaves."""


class DataError(AutoMLError):
    """A data source that cannot be read or does not fit the task."""


class StoreError(AutoMLError):
    """A results store that cannot be opened or written."""


class TrialError(AutoMLError):
    """Raised inside a trial; the trial is recorded as failed and the search goes on."""
