"""Read one YAML file safely into plain values, remembering where every key and value stood.

PyYAML's constructors silently keep the last of two duplicate keys and expand aliases without limit,
and they forget positions. So the file is only *composed* (libyaml's C parser when present), and the
node graph is walked here: duplicate keys are errors, alias expansion is bounded, and each value's
path (``("schedules", 3, "trigger")``) maps to its 1-based line and column.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.problems import Problem, error

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIAS_NODES = 10_000  # nodes reachable through aliases in one file; a billion-laughs file needs far more
MAX_DEPTH = 64

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"

PathKey = tuple[str | int, ...]


class Positions:
    """Finds the 1-based (line, column) of a value or mapping key by its path, from the node tree.

    Positions are looked up only when a problem is reported, so a clean file pays nothing for them.
    """

    def __init__(self, root: yaml.Node | None = None) -> None:
        self.root = root

    def locate(self, path: Iterable[str | int], *, prefer_key: bool = False) -> tuple[int, int]:
        """Position of `path`, or of its nearest ancestor that was written in the file."""
        node = self.root
        if node is None:
            return (1, 1)
        best = _pos(node.start_mark)
        key_node: yaml.Node | None = None
        for step in path:
            if isinstance(node, yaml.MappingNode):
                found = _find_key(node, step)
                if found is None:
                    return best
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                key_node, node = None, node.value[step]
            else:
                return best
            best = _pos(node.start_mark)
        if prefer_key and key_node is not None:
            return _pos(key_node.start_mark)
        return best


def _find_key(node: yaml.MappingNode, step: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    # The first occurrence: the walker keeps the first of two duplicate keys too.
    wanted = str(step)
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG and key_node.value == wanted:
            return key_node, value_node
    return None


@dataclass
class LoadedFile:
    """A parsed file: its plain value (None when empty or broken) and positions."""

    path: str
    value: Any
    positions: Positions
    problems: list[Problem]


class _TooBig(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.mark = mark


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


class _Walker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.seen: set[int] = set()
        self.alias_nodes = 0

    def walk(self, node: yaml.Node, depth: int = 0, via_alias: bool = False) -> Any:
        if depth > MAX_DEPTH:
            raise _TooBig(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            # A collection met twice is an alias: what it expands to counts against the budget.
            if id(node) in self.seen:
                via_alias = True
            self.seen.add(id(node))
        if via_alias:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise _TooBig(
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes (YAML alias bomb?)", node.start_mark
                )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:  # the common case, without a constructor call
                return node.value
            # Call the tag's constructor directly: construct_object() caches every node it builds.
            build = _constructor.yaml_constructors.get(node.tag) or _constructor.yaml_constructors[None]
            return build(_constructor, node)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, depth + 1, via_alias) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, depth, via_alias)
        raise _TooBig(f"unsupported YAML node {type(node).__name__}", node.start_mark)

    def walk_plain(self, node: yaml.Node, depth: int = 0) -> Any:
        """`walk` for a file without anchors or merge keys (most files): no alias bookkeeping needed."""
        if depth > MAX_DEPTH:
            raise _TooBig(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        kind = type(node)
        if kind is yaml.ScalarNode:
            if node.tag == _STR_TAG:
                return node.value
            build = _constructor.yaml_constructors.get(node.tag) or _constructor.yaml_constructors[None]
            return build(_constructor, node)
        if kind is yaml.SequenceNode:
            return [self.walk_plain(item, depth + 1) for item in node.value]
        if not isinstance(node, yaml.MappingNode):
            raise _TooBig(f"unsupported YAML node {kind.__name__}", node.start_mark)
        pairs = node.value
        if all(type(k) is yaml.ScalarNode and k.tag == _STR_TAG for k, _ in pairs):
            result = {k.value: self.walk_plain(v, depth + 1) for k, v in pairs}
            if len(result) == len(pairs):
                return result
        # A duplicate or a non-text key: the general walk reports it where it stands.
        return self._mapping(node, depth, False)

    def _mapping(self, node: yaml.MappingNode, depth: int, via_alias: bool) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                source = self.walk(value_node, depth + 1, True)
                for part in source if isinstance(source, list) else [source]:
                    if isinstance(part, dict):
                        for k, v in part.items():
                            merged.setdefault(k, v)
                continue
            key = self.walk(key_node, depth + 1, via_alias)
            if isinstance(key, list | dict):
                line, col = _pos(key_node.start_mark)
                self.problems.append(error(self.path, line, col, "a mapping key must be a plain scalar"))
                continue
            if key in first_seen:
                line, col = _pos(key_node.start_mark)
                self.problems.append(
                    error(
                        self.path,
                        line,
                        col,
                        f"duplicate key '{key}' (first defined at line {first_seen[key]})",
                    )
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            result[key] = self.walk(value_node, depth + 1, via_alias)
        for k, v in merged.items():
            result.setdefault(k, v)
        return result


def load_text(path: str, raw: bytes) -> LoadedFile:
    """Parse `raw` (the bytes of `path`); every problem is reported with its position."""
    positions = Positions()
    if len(raw) > MAX_FILE_BYTES:
        return LoadedFile(
            path, None, positions, [error(path, 1, 1, f"file is larger than {MAX_FILE_BYTES // 1024} KiB")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return LoadedFile(path, None, positions, [error(path, line, column, "file is not valid UTF-8")])
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        tab = _first_indenting_tab(text)
        if tab is not None:  # PyYAML's sentence for it never says "tab"
            line, col = tab
            message = "a tab in the indentation: YAML indents with spaces only (replace the tab by spaces)"
            return LoadedFile(path, None, positions, [error(path, line, col, message)])
        reason = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        return LoadedFile(path, None, positions, [error(path, line, col, f"YAML syntax error: {reason}")])
    except yaml.YAMLError as exc:
        return LoadedFile(path, None, positions, [error(path, 1, 1, f"YAML error: {exc}")])
    if node is None:
        return LoadedFile(path, None, positions, [error(path, 1, 1, "file is empty")])
    walker = _Walker(path)
    positions = Positions(node)
    try:
        # Without an anchor there is no alias, and without "<<" no merge key: the lean walk suffices.
        value = walker.walk_plain(node) if "&" not in text and "<<" not in text else walker.walk(node)
    except _TooBig as exc:
        line, col = _pos(exc.mark) if exc.mark else (1, 1)
        return LoadedFile(path, None, positions, [error(path, line, col, str(exc))])
    except yaml.YAMLError as exc:  # a scalar that its tag cannot construct, e.g. a bad timestamp
        mark = getattr(exc, "problem_mark", None)
        line, col = _pos(mark) if mark else (1, 1)
        return LoadedFile(path, None, positions, [error(path, line, col, f"YAML error: {exc}")])
    return LoadedFile(path, value, positions, walker.problems)


def _first_indenting_tab(text: str) -> tuple[int, int] | None:
    """(line, column) of the first tab in a line's leading whitespace, if any (asked only after a YAML error)."""
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            return number, indent.index("\t") + 1
    return None


def load_file(path: Path, display: str | None = None) -> LoadedFile:
    """Read and parse one file; `display` is the path shown in problems (default: `path`)."""
    shown = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return LoadedFile(
                shown,
                None,
                Positions(),
                [error(shown, 1, 1, f"file is larger than {MAX_FILE_BYTES // 1024} KiB")],
            )
        raw = path.read_bytes()
    except OSError as exc:
        return LoadedFile(shown, None, Positions(), [error(shown, 1, 1, f"cannot read file: {exc.strerror}")])
    return load_text(shown, raw)


YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class FoundFiles:
    """The schedule files below a directory, and the entries that make the run fail."""

    paths: list[Path]
    problems: list[Problem]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def find_schedule_files(
    directory: Path,
    *,
    follow_symlinks_outside: bool = False,
    display: Callable[[Path], str] = str,
) -> FoundFiles:
    """Every *.yaml / *.yml below `directory`, or a problem for each one that cannot be read as a file.

    Names starting with '_' or '.' are skipped. One rule for symlinks, to files and to directories alike:
    followed when the target is inside `directory`, an error when it is outside (unless
    `follow_symlinks_outside`), dangling or looping. A YAML name on anything but a regular file (a FIFO,
    a device, a directory) is an error too. Skipping any of these would make their schedules look
    removed, and the next apply would delete them.
    """
    root = directory.resolve()
    found: list[Path] = []
    problems: list[Problem] = []
    read_targets: set[Path] = set()

    def fail(path: Path, message: str) -> None:
        problems.append(error(display(path), 1, 1, message))

    def walk(folder: Path, ancestors: frozenset[Path]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            fail(folder, f"cannot read directory: {exc.strerror}; nothing is applied until it can be read")
            return
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue
            path = folder / entry.name
            is_yaml = entry.name.endswith(YAML_SUFFIXES)
            try:
                is_link = entry.is_symlink()
                target = path.resolve(strict=True) if is_link else path
                mode = os.stat(path).st_mode  # follows the link
            except FileNotFoundError:
                if is_yaml:
                    fail(path, f"dangling symlink (to {os.readlink(path)}): its target does not exist")
                continue
            except (RuntimeError, OSError) as exc:
                # Python raises RuntimeError (3.11-3.12) or OSError ELOOP (3.13+) for a symlink loop.
                if is_link and (isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP):
                    fail(path, "symlink loop: it never reaches a file")
                elif is_yaml:
                    fail(path, f"cannot read file: {getattr(exc, 'strerror', None) or exc}")
                continue
            is_dir = stat.S_ISDIR(mode)
            if not is_dir and not is_yaml:
                continue
            if is_link and not target.is_relative_to(root) and not follow_symlinks_outside:
                fail(
                    path,
                    f"symlink to {target}, outside the schedules directory; pass --follow-symlinks-outside to read it",
                )
                continue
            if is_dir:
                if is_yaml:
                    fail(path, "is a directory with a YAML file name; rename it or move its files")
                    continue
                real = target.resolve() if is_link else path.resolve()
                if real in ancestors or real == root:
                    fail(path, f"symlink loop: {real} contains this link")
                    continue
                walk(path, ancestors | {real})
                continue
            if not stat.S_ISREG(mode):
                fail(path, f"is {_kind(mode)}, not a regular file; a schedule file must be one")
                continue
            real_file = path.resolve()
            if real_file in read_targets:  # a second link to a file already read
                continue
            read_targets.add(real_file)
            found.append(path)

    walk(directory, frozenset({root}))
    return FoundFiles(sorted(found), problems)


def schedule_files(directory: Path) -> list[Path]:
    """Every readable *.yaml / *.yml below `directory`, sorted (see `find_schedule_files` for the rule)."""
    return find_schedule_files(directory).paths
