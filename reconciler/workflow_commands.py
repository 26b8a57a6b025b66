"""GitHub workflow commands (`::warning file=…::message`) and terminal-safe text: the one escaping rule.

GitHub reads every line of a step's output that starts with `::` as a command. A file name or a
`workflow_name` holding a newline would otherwise end our annotation and start one of its own
(`::warning title=…::`, `::add-mask::`, …). GitHub's own toolkit escapes the message (data) part as
`%` → `%25`, CR → `%0D`, LF → `%0A`, and property values also `:` → `%3A`, `,` → `%2C`; we do the same,
here only. For plain text output, control characters are shown escaped (`\\n`, `\\x1b`), so no value
from a file or a database can start a line of its own or paint the terminal.
"""

from __future__ import annotations

import re

_DATA = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A"})
_PROPERTY = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A", ":": "%3A", ",": "%2C"})
# C0 and C1 controls and DEL, plus the Unicode line and paragraph separators (some viewers break lines there).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_data(message: str) -> str:
    """The message part of a workflow command."""
    return message.translate(_DATA)


def escape_property(value: str) -> str:
    """A property value of a workflow command (`file=`, `title=`, …)."""
    return value.translate(_PROPERTY)


def command(name: str, message: str, **properties: str | int | None) -> str:
    """One workflow-command line, e.g. `command("warning", "x", file="a.yaml", line=3)`.

    Properties whose value is None are left out; every value and the message are escaped.
    """
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def visible(text: str) -> str:
    """`text` with its control characters written out (`\\n`, `\\x1b`): safe on one line of a terminal or log."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(
        lambda m: _NAMED.get(
            m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )
