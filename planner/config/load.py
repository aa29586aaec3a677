"""Reads desired-state YAML files into plain values with a source position for every value.

It owns YAML syntax only: safe scalars, no custom tags, no duplicate keys, bounded aliases.
What the values mean (schema, variables, defaults) is `validate`'s business.

Values are built straight from libyaml's event stream (the C parser when present):
pyyaml's constructor is ten times slower on a 10,000-job file and drops duplicate keys.

Decisions worth knowing:

- A directory stands for the ``*.yaml``/``*.yml`` files directly in it (not its
  subdirectories, not hidden files), sorted by name. Every such entry must be readable:
  a dangling link, a link loop or an unreadable file is an error, never skipped.
- Scalars follow the YAML 1.2 core schema: only ``true``/``false`` are booleans (``yes``,
  ``on`` stay strings), ``~``/``null``/empty are null, timestamps stay strings.
- Mapping keys are always strings (``1:`` is the key ``"1"``); complex keys are errors.
- Only the standard tags (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map``, ``!!seq``) are accepted; any other tag is an error and never acted upon.
- Anchors and aliases work; merge keys (``<<``) are plain keys (use ``defaults`` instead).
  The size of the document with every alias expanded is capped, so an alias bomb fails fast.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from planner.errors import ConfigError, Diagnostic, SourceLocation, UsageError

# A value's position: (line, column, key line, key column, children), 1-based. For a mapping
# entry the key position is the key's; elsewhere it equals the value's. Children mirror the
# value: a dict of key -> Span for a mapping, a list of Span for a sequence, None for a scalar.
Span: TypeAlias = tuple[int, int, int, int, "Children"]
Children: TypeAlias = "dict[str, Span] | list[Span] | None"

MAX_DEPTH = 64
# Alias expansion may multiply the document at most this much (and always allows this many nodes).
MAX_EXPANSION_FACTOR = 10
MIN_EXPANSION_BUDGET = 100_000

_Parser: Any = getattr(yaml, "CBaseLoader", None) or yaml.BaseLoader

_STD_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(_STD_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))

_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# Plain scalars starting with anything else are strings under the core schema.
RESOLVE_FIRST = frozenset("0123456789-+.~nNtTfF")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_SPECIAL_FLOATS = {sign + inf: float(sign + "inf") for sign in ("", "+", "-") for inf in (".inf", ".Inf", ".INF")}
_SPECIAL_FLOATS.update({nan: float("nan") for nan in (".nan", ".NaN", ".NAN")})


@dataclass(frozen=True)
class Document:
    """One YAML file: its top-level mapping, and where every value in it came from."""

    file: str
    data: dict[str, Any]
    span: Span
    # Where string values contain "${" (for variables): (path, written unquoted?). Keys never count.
    templated: tuple[tuple[tuple[str | int, ...], bool], ...] = ()
    # True if the file uses aliases, so one value may appear at several paths.
    aliased: bool = False

    def location(self, span: Span, *, key: bool = False) -> SourceLocation:
        if key:
            return SourceLocation(self.file, span[2], span[3])
        return SourceLocation(self.file, span[0], span[1])

    def find(self, path: Sequence[str | int]) -> Span | None:
        """The span of the value at path (keys and list indices), or None if there is none."""
        return find_span(self.span, path)

    def plain_positions(self) -> set[tuple[int, int]]:
        """(line, column) of every unquoted string holding "${": a lone reference there takes its value's type."""
        return {(s[0], s[1]) for path, plain in self.templated if plain and (s := self.find(path)) is not None}


def resolve_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Expand directories to the YAML files directly in them (sorted); keep files as given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            # Every entry named like a config file counts, links included: one that cannot be
            # read must fail the load, since skipping it would plan its jobs' deletion.
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))
            if not found:
                raise UsageError(f"{path}: no *.yaml or *.yml files in this directory")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return files


def read_config_file(path: Path) -> bytes:
    """A config file's bytes; a UsageError naming the file if it cannot be read (never a skip)."""
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise UsageError(f"{path}: cannot read: it is a directory, not a YAML file") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            if exc.errno == errno.ELOOP:
                reason = f"symbolic link loop ({path} -> {target})"
            elif isinstance(exc, FileNotFoundError):
                reason = f"dangling symbolic link ({path} -> {target}, which does not exist)"
        raise UsageError(f"{path}: cannot read: {reason}") from None


def load_documents(paths: Sequence[str | Path]) -> list[Document]:
    """Parse every file (directories expand to their YAML files); raise ConfigError with all problems."""
    documents, diagnostics = load_each(paths)
    if diagnostics:
        raise ConfigError(diagnostics)
    return documents


def load_each(paths: Sequence[str | Path]) -> tuple[list[Document], list[Diagnostic]]:
    """The documents of the files that parse, and the problems of those that do not."""
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    for path in resolve_paths(paths):
        name = str(path)
        raw = read_config_file(path)
        document, problems = parse_document(raw, name)
        diagnostics.extend(problems)
        if document is not None:
            documents.append(document)
    return documents, diagnostics


def parse_document(raw: bytes | str, file: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one file's contents; a document only if there were no problems at all."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            loc = SourceLocation(file, line, column)
            return None, [Diagnostic(loc, "", "file is not valid UTF-8 text")]
    else:
        text = raw
    if text.startswith("\ufeff"):
        text = text[1:]
    builder = _Builder(file)
    try:
        result = builder.build(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = SourceLocation(file, mark.line + 1, mark.column + 1) if mark else SourceLocation(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            ctx = exc.context_mark
            started = f" started at line {ctx.line + 1}" if ctx is not None and mark and ctx.line != mark.line else ""
            problem = f"{problem} ({exc.context}{started})"
        if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            problem += "; tabs are not allowed for indentation, use spaces"
        return None, [Diagnostic(loc, "", f"YAML syntax error: {problem}")]
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (NUL, other control characters): at its real place.
        pos = max(0, min(int(exc.position), len(text)))
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = exc.character
        code = ord(char) if isinstance(char, str) and char else int(char) if isinstance(char, int) else 0
        message = f"YAML syntax error: character #x{code:04x} is not allowed ({exc.reason})"
        return None, [Diagnostic(SourceLocation(file, line, column), "", message)]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(SourceLocation(file, 1, 1), "", f"YAML syntax error: {exc}")]
    except _Abort:
        return None, builder.diagnostics
    if builder.diagnostics:
        return None, builder.diagnostics
    if result is None:
        return None, [Diagnostic(SourceLocation(file, 1, 1), "", "file is empty (expected a mapping)")]
    value, span = result
    if not isinstance(value, dict):
        got = _kind(value)
        loc = SourceLocation(file, span[0], span[1])
        return None, [Diagnostic(loc, "", f"the top level must be a mapping, got {got}")]
    return Document(file, value, span, tuple(builder.templated), builder.aliased), []


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n", line + 1)
    if line < len(lines) and column < len(lines[line]):
        return lines[line][column]
    return ""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


class _Abort(Exception):
    """Stop building; the reason is in the builder's diagnostics."""


def resolve_plain_scalar(text: str) -> Any:
    """The value of an unquoted scalar under the YAML 1.2 core schema (null, bool, int, float or str)."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    first = text[0]
    if first.isdigit() or first in "-+.":
        if _INT_RE.fullmatch(text):
            if text.startswith("0o"):
                return int(text[2:], 8)
            if text.startswith("0x"):
                return int(text[2:], 16)
            return int(text)
        if _FLOAT_RE.fullmatch(text):
            return float(text)
        special = _SPECIAL_FLOATS.get(text)
        if special is not None:
            return special
    return text


def _untagged_value(text: str, style: str | None) -> Any:
    """An untagged scalar: quoted and block scalars are strings; plain ones are resolved."""
    if style:
        return text
    if not text:
        return None
    if text[0] in RESOLVE_FIRST:
        return resolve_plain_scalar(text)
    return text


def _resolve_tagged(tag: str, text: str) -> Any:
    kind = tag[len(_STD_TAG) :]
    if kind == "str":
        return text
    value = resolve_plain_scalar(text)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "null" and value is None:
        return None
    raise ValueError(f"{text!r} is not a valid !!{kind}")


class _Builder:
    """Turns one file's event stream into (value, span), iteratively (deep nesting cannot overflow)."""

    def __init__(self, file: str):
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.templated: list[tuple[tuple[str | int, ...], bool]] = []
        self.aliased = False

    def _too_large(self, line: int, column: int, text: str) -> str:
        self._problem(line, column, f"a number of {len(text)} digits is too large; no field takes more than 20")
        return text

    def _problem(self, line: int, column: int, message: str, *, fatal: bool = False) -> None:
        self.diagnostics.append(Diagnostic(SourceLocation(self.file, line, column), "", message))
        if fatal:
            raise _Abort

    def build(self, text: str) -> tuple[Any, Span] | None:
        parser = _Parser(text)
        # (The collector's policy for large trees is one place's: planner.operations.backend.long_lived.)
        try:
            return self._run(parser)
        finally:
            dispose = getattr(parser, "dispose", None)
            if dispose is not None:
                dispose()

    def _run(self, parser: Any) -> tuple[Any, Span] | None:
        get_event = parser.get_event
        scalar_ev = yaml.ScalarEvent
        map_start = yaml.MappingStartEvent
        seq_start = yaml.SequenceStartEvent
        map_end = yaml.MappingEndEvent
        seq_end = yaml.SequenceEndEvent
        alias_ev = yaml.AliasEvent
        doc_start = yaml.DocumentStartEvent
        stream_end = yaml.StreamEndEvent
        untagged = _untagged_value
        templated = self.templated
        anchors: dict[str, tuple[Any, Span, int]] = {}

        # A frame: [is_map, container, children, pending_key or None, key_line, key_col,
        #           line, col, size, anchor]
        stack: list[list[Any]] = []
        result: tuple[Any, Span] | None = None
        documents = 0
        nodes = 0
        expanded = 0

        while True:
            event = get_event()
            cls = type(event)
            # The common case first, in full: an untagged, unanchored scalar inside a collection
            # (most events of a config). It does exactly what the general code below would.
            if cls is scalar_ev and stack and event.tag is None and event.anchor is None:
                parent = stack[-1]
                mark = event.start_mark
                line = mark.line + 1
                col = mark.column + 1
                text = event.value
                nodes += 1
                parent[8] += 1
                if parent[0]:
                    key = parent[3]
                    if key is None:  # a mapping key: its text as written
                        parent[3] = text
                        parent[4] = line
                        parent[5] = col
                        if text in parent[1]:
                            first = parent[2][text]
                            self._problem(line, col, f'duplicate key "{text}" (first defined at line {first[2]})')
                        continue
                style = event.style
                try:
                    value: Any = untagged(text, style)
                except ValueError:  # an integer beyond Python's digit limit for int()
                    value = self._too_large(line, col, text)
                if "${" in text:
                    templated.append((tuple(f[3] if f[0] else len(f[1]) for f in stack), not style))
                if parent[0]:
                    if key not in parent[1]:
                        parent[1][key] = value
                        parent[2][key] = (line, col, parent[4], parent[5], None)
                    parent[3] = None
                else:
                    parent[1].append(value)
                    parent[2].append((line, col, line, col, None))
                continue
            if cls is scalar_ev or cls is alias_ev:
                mark = event.start_mark
                line = mark.line + 1
                col = mark.column + 1
                if cls is scalar_ev:
                    nodes += 1
                    size = 1
                    tag = event.tag
                    text = event.value
                    if tag is None or tag == "!":
                        try:
                            value = untagged(text, event.style)
                        except ValueError:
                            value = self._too_large(line, col, text)
                        if "${" in text and stack and not (stack[-1][0] and stack[-1][3] is None):
                            path = tuple(f[3] if f[0] else len(f[1]) for f in stack)
                            templated.append((path, not event.style))
                    elif tag in _ALLOWED_TAGS:
                        try:
                            value = _resolve_tagged(tag, text)
                        except ValueError as exc:
                            self._problem(line, col, str(exc))
                            value = text
                    else:
                        self._problem(line, col, f"tag {tag!r} is not allowed (only standard YAML tags)")
                        value = text
                    span: Span = (line, col, line, col, None)
                    if event.anchor is not None:
                        anchors[event.anchor] = (value, span, 1)
                else:
                    self.aliased = True
                    anchored = anchors.get(event.anchor)
                    if anchored is None:
                        self._problem(line, col, f"undefined alias *{event.anchor}", fatal=True)
                        raise AssertionError  # unreachable
                    value, target, size = anchored
                    span = (line, col, line, col, target[4])
                    expanded += size
                    if expanded > max(MIN_EXPANSION_BUDGET, MAX_EXPANSION_FACTOR * nodes):
                        self._problem(
                            line,
                            col,
                            "aliases expand to too many values (an alias bomb?); write the values out",
                            fatal=True,
                        )
            elif cls is map_start or cls is seq_start:
                nodes += 1
                mark = event.start_mark
                tag = event.tag
                line = mark.line + 1
                col = mark.column + 1
                if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
                    self._problem(line, col, f"tag {tag!r} is not allowed (only standard YAML tags)")
                if len(stack) >= MAX_DEPTH:
                    self._problem(line, col, f"nesting deeper than {MAX_DEPTH} levels", fatal=True)
                if cls is map_start:
                    stack.append([True, {}, {}, None, 0, 0, line, col, 1, event.anchor])
                else:
                    stack.append([False, [], [], None, 0, 0, line, col, 1, event.anchor])
                continue
            elif cls is map_end or cls is seq_end:
                frame = stack.pop()
                value = frame[1]
                line = frame[6]
                col = frame[7]
                size = frame[8]
                span = (line, col, line, col, frame[2])
                if frame[9] is not None:
                    anchors[frame[9]] = (value, span, size)
            elif cls is doc_start:
                documents += 1
                if documents > 1:
                    mark = event.start_mark
                    message = "only one YAML document per file is allowed"
                    self._problem(mark.line + 1, mark.column + 1, message, fatal=True)
                continue
            elif cls is stream_end:
                return result
            else:
                continue

            # Attach (value, span, size) to the enclosing collection.
            if not stack:
                result = (value, span)
                continue
            parent = stack[-1]
            parent[8] += size
            if parent[0]:
                key = parent[3]
                if key is None:
                    if isinstance(value, (dict, list)):
                        self._problem(span[0], span[1], "a mapping key must be a plain scalar", fatal=True)
                    key_text = event.value if cls is scalar_ev else str(value)
                    parent[3] = key_text
                    parent[4] = span[0]
                    parent[5] = span[1]
                    if key_text in parent[1]:
                        first = parent[2][key_text]
                        message = f'duplicate key "{key_text}" (first defined at line {first[2]})'
                        self._problem(span[0], span[1], message)
                else:
                    if key not in parent[1]:
                        parent[1][key] = value
                        parent[2][key] = (span[0], span[1], parent[4], parent[5], span[4])
                    parent[3] = None
            else:
                parent[1].append(value)
                parent[2].append(span)


def find_span(span: Span, path: Sequence[str | int]) -> Span | None:
    """The span below `span` at path (keys and list indices), or None if there is none."""
    for part in path:
        children = span[4]
        if isinstance(children, dict) and isinstance(part, str):
            found = children.get(part)
        elif isinstance(children, list) and isinstance(part, int) and 0 <= part < len(children):
            found = children[part]
        else:
            return None
        if found is None:
            return None
        span = found
    return span
