"""Render schedule files (DESIGN.md §2) as YAML text, deterministically and readably.

Generated files are committed and compared byte for byte (`load-initial-schedule --check` in CI), so
the same input must always give the same bytes: fields come in one fixed order, values are written by
the small emitter below rather than by ``yaml.dump`` (whose quoting and line wrapping depend on the
value and on PyYAML's version), and every scalar is checked to read back as itself.

The input is plain data — a schedule as a ``dict`` of the file's fields plus the comments to put
around it — so `load-initial-schedule` (from legacy decorators) and `import` (from the database) share
one writer.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILENAME = "schedules.schema.json"
SCHEMA_DIR = "schema"

# The order of ScheduleSpec's fields in DESIGN.md §2: identity first, then what runs and when, then options.
FIELD_ORDER = (
    "key",
    "schedule_id",  # written by `import` only: which existing job the key adopts
    "replaces",  # written by `load-initial-schedule`: the decorator's stored job this schedule takes over
    "workflow_name",
    "name",
    "trigger",
    "trigger_kwargs",
    "timezone",
    "user_inputs",
    "enabled",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "protect",
    "moved_from",
)

_INDENT = "  "
# Plain (unquoted) scalars are limited to a boring character set: no ':', '#', ',', brackets or quotes,
# so a value can never change meaning in block or flow context. Anything else is double-quoted.
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./+ -]*")
# Characters YAML would not keep literally inside a double-quoted scalar (line breaks it folds, controls).
_NEEDS_ESCAPE = {"\x85", "\u2028", "\u2029", "\ufeff"}


@dataclass(frozen=True)
class Entry:
    """One schedule to write, with the comments that explain where it came from.

    `schedule` holds the file's fields (``key``, ``workflow_name``, ...) as plain values; fields set to
    None are left out (absent means default). `comments` are full lines written above the entry,
    `field_comments` short notes written after a field's value on the same line. A `commented_out`
    entry is written entirely as comments: a stub the user finishes by hand (it is not a schedule yet).
    """

    schedule: Mapping[str, Any]
    comments: Sequence[str] = ()
    field_comments: Mapping[str, str] = field(default_factory=dict)
    commented_out: bool = False


def schema_reference(out_dir: Path) -> str:
    """The `$schema` reference for files written into `out_dir`.

    The relative path to ``schema/schedules.schema.json`` in `out_dir` or the nearest ancestor that
    has one (the repository's committed schema, so editors validate offline). Without one: where
    `schedules schema --write schema` run at the repository root (outside git: beside `out_dir`)
    creates it, so the reference never names a file nobody can make.
    """
    start = Path(os.path.abspath(out_dir))
    for directory in (start, *start.parents):
        candidate = directory / SCHEMA_DIR / SCHEMA_FILENAME
        if candidate.is_file():
            return Path(os.path.relpath(candidate, start)).as_posix()
    root = next((d for d in (start, *start.parents) if (d / ".git").exists()), start.parent)
    return Path(os.path.relpath(root / SCHEMA_DIR / SCHEMA_FILENAME, start)).as_posix()


def modeline(schema_ref: str) -> str:
    """The yaml-language-server modeline that ties a file to the JSON schema."""
    return f"# yaml-language-server: $schema={schema_ref}"


def render_file(entries: Sequence[Entry], *, schema_ref: str, header: Sequence[str] = ()) -> str:
    """A whole schedule file: modeline, `header` comment lines, then ``schedules:`` with `entries`.

    When no entry is an actual schedule (only stubs, or none), the list is written as ``[]`` so the
    file still validates; the stubs follow as comments.
    """
    lines = [modeline(schema_ref)]
    lines.extend(_comment(text) for text in header)
    active = [e for e in entries if not e.commented_out]
    if active:
        lines.append("schedules:")
    else:
        lines.append("schedules: []  # nothing to schedule yet; replace [] with the entries below once finished")
    for index, entry in enumerate(entries):
        if index:
            lines.append("")  # a blank line between schedules keeps diffs and reviews readable
        lines.extend(render_entry(entry, indent=_INDENT))
    return "\n".join(lines) + "\n"


def render_entry(entry: Entry, *, indent: str = _INDENT) -> list[str]:
    """The lines of one schedule as an item of the ``schedules:`` list (comments included)."""
    lines = [indent + _comment(text) for text in entry.comments]
    body: list[str] = []
    for name, value in _ordered_fields(entry.schedule):
        text = f"{name}: {render_value(value)}"
        note = entry.field_comments.get(name)
        if note:
            text += "  " + _comment(note)
        body.append(text)
    unknown = set(entry.field_comments) - {name for name, _ in _ordered_fields(entry.schedule)}
    if unknown:
        raise ValueError(f"comments for fields that are not written: {', '.join(sorted(unknown))}")
    for i, text in enumerate(body):
        item = ("- " if i == 0 else "  ") + text
        lines.append(indent + ("# " + item if entry.commented_out else item))
    return lines


def render_value(value: Any) -> str:
    """A value in YAML flow style, e.g. ``{hour: 1, minute: 30}`` or ``[{}]``; it reads back equal."""
    if isinstance(value, Mapping):
        inner = ", ".join(f"{render_scalar(k)}: {render_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return render_scalar(value)


def render_scalar(value: Any) -> str:
    """One scalar as YAML: plain when that is unambiguous, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _render_float(value)
    if isinstance(value, datetime | date):
        # ISO text; the trigger classes parse it back. Quoted, or YAML would make a timestamp of it.
        return _quoted(value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat())
    if isinstance(value, str):
        if _PLAIN_SAFE.fullmatch(value) and not value.endswith(" ") and _reads_back(value):
            return value
        return _quoted(value)
    raise TypeError(f"cannot write a {type(value).__name__} into a schedule file: {value!r}")


def _render_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    # YAML 1.1 (PyYAML) only reads a float with a '.', so "1e-05" would come back as a string.
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _reads_back(text: str) -> bool:
    # Words like yes/no/on/null, numbers, dates and sexagesimals resolve to other types: quote those.
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def _quoted(text: str) -> str:
    # JSON's escapes (\" \\ \n \t \uXXXX) are all valid in a YAML double-quoted scalar.
    out = json.dumps(text, ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if c in _NEEDS_ESCAPE or _is_control(c) else c for c in out)


def _is_control(char: str) -> bool:
    # json.dumps already escaped the C0 controls; C1 controls and other non-printables remain.
    return ord(char) >= 0x7F and not char.isprintable()


def _comment(text: str) -> str:
    # One comment line per call: a newline in the text would end the comment and inject YAML.
    flat = " ".join(text.splitlines())
    return "#" if not flat else f"# {flat}"


def _ordered_fields(schedule: Mapping[str, Any]) -> list[tuple[str, Any]]:
    known = [(name, schedule[name]) for name in FIELD_ORDER if schedule.get(name) is not None]
    extra = sorted((k, v) for k, v in schedule.items() if k not in FIELD_ORDER and v is not None)
    return known + extra
