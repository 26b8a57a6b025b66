"""Problems found in schedule files: one error or warning at a file position.

Every check in the project reports through :class:`Problem`, so the text, JSON and GitHub renderings
of validation output are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, located at ``path:line:column`` (1-based; 0 means "the whole file")."""

    path: str
    line: int
    column: int
    severity: Severity
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity.value}: {self.message}"


def error(path: str, line: int, column: int, message: str) -> Problem:
    """An error at a position."""
    return Problem(path, line, column, Severity.ERROR, message)


def warning(path: str, line: int, column: int, message: str) -> Problem:
    """A warning at a position."""
    return Problem(path, line, column, Severity.WARNING, message)
