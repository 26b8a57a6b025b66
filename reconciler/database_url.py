"""Database URLs and one-line messages about databases, without SQLAlchemy.

Every command resolves `--db` before it knows whether it needs SQLAlchemy at all (a dry run reads through
`reads.open_read_only` without it), so these few rules live apart from the store.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_DB_NAME = "schedules.db"
DEFAULT_DB_URL = f"sqlite:///{DEFAULT_DB_NAME}"  # relative: only for library callers that pass none


def default_db_path(directory: Path | None = None) -> Path:
    """Where the embedded database lives: never a function of the current directory alone.

    `schedules.db` at the root of the git repository holding the schedules directory; outside git,
    beside the schedules directory. Commands without one (`run`, `force`) start from the current
    directory's repository. So every command on one schedules directory, from anywhere, plans against
    the same file.
    """
    start = (directory if directory is not None else Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate / DEFAULT_DB_NAME
    return (start.parent if directory is not None else start) / DEFAULT_DB_NAME


def absolute_db_url(url: str) -> str:
    """A SQLite URL with its file made absolute (against the current directory, as the user typed it);
    every other URL unchanged. Headers then name the file actually opened."""
    scheme, sep, rest = url.partition("://")
    if not scheme.startswith("sqlite") or not sep:
        return url
    location, question, query = rest.partition("?")
    database = location.removeprefix("/")  # sqlite:///NAME: NAME relative, sqlite:////NAME absolute
    if not database or database == ":memory:" or database.startswith("file:") or Path(database).is_absolute():
        return url
    return f"{scheme}:///{Path(database).resolve()}{question}{query}"


def resolve_db_url(option: str | None, directory: Path | None = None) -> str:
    """--db, else $DATABASE_URI, else the embedded SQLite database of `directory` (see `default_db_path`)."""
    url = option or os.environ.get("DATABASE_URI")
    if not url:
        return f"sqlite:///{default_db_path(directory)}"
    return absolute_db_url(url)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def redact(message: str, *secrets: str | None) -> str:
    """Remove every password-bearing URL and the given secrets from a message."""
    cleaned = re.sub(r"(\w+://[^:/@\s]*):[^@\s]*@", r"\1:***@", message)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, "***")
    return cleaned


# Set on a database error by whoever raised it (store's labelled engines, reads' readers), for the message.
TARGET_ATTRIBUTE = "reconciler_target"  # the database as the user named it, password masked
CONNECTING_ATTRIBUTE = "reconciler_connecting"  # whether it happened while connecting


def label_error(exc: BaseException, target: str, connecting: bool) -> None:
    """Remember on `exc` which database it came from, so `describe_db_error` can name it and the fix."""
    try:
        setattr(exc, TARGET_ATTRIBUTE, target)
        setattr(exc, CONNECTING_ATTRIBUTE, connecting)
    except (AttributeError, TypeError):  # an exception type without attributes: the plain message stays
        pass


def describe_db_error(exc: Exception) -> str:
    """One line for a database error, with credentials removed: which database, what happened, the fix."""
    original = getattr(exc, "orig", None) or exc
    first = redact((str(original).strip().splitlines() or [type(original).__name__])[0])
    target = getattr(exc, TARGET_ATTRIBUTE, None)
    if target is None:
        return first
    if target.startswith("sqlite:"):
        path = target.removeprefix("sqlite:///")
        if "unable to open database file" in first:
            return (
                f"cannot open the SQLite file {path}: its directory does not exist or is not writable "
                "(create it or make it writable, or pass --db URL)"
            )
        if "readonly database" in first:
            return f"{path} is read-only here: make the file and its directory writable, or use --dry-run"
        return f"{path}: {first}"
    if getattr(exc, CONNECTING_ATTRIBUTE, False):
        return (
            f"cannot connect to {target}: {first} (is the server running and reachable from here? "
            "check --db / $DATABASE_URI)"
        )
    return f"{target}: {first}"
