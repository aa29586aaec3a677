"""Owns declared variables: the `variables:` blocks of desired-state files, the values given for
them (--var, --var-file, PLANNER_VAR_*), their types, and which of them are sensitive.

`validate` replaces ``${var.NAME}`` with the `Values` made here; this module decides what a
name's value is, or why it has none. Var files are read with planner's own YAML loader
(`load.parse_document`: YAML 1.2, duplicate keys rejected, positions kept).

Decisions:

- Declarations are configuration-wide, as in a Terraform module: a variable declared in one file
  may be used in every file loaded with it; declaring one name twice is an error.
- A configuration with no `variables:` block at all is in *legacy* mode: any ``${var.NAME}`` is
  looked up in what was given, and values nobody declared are accepted (deprecated, see README).
- Once anything is declared: a value given for an undeclared name is an error (with "did you
  mean"), so is a ``${var.NAME}`` naming an undeclared variable (at its file:line:column), and
  every value is checked against its declaration's type, pattern and enum, and converted once.
- An unquoted value that is exactly ``${var.NAME}`` of a declared variable takes the declared
  type (``replicaCount: ${var.replicas}`` is an integer); a quoted one stays a string.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner.config.load import Span, parse_document, resolve_paths
from planner.config.messages import did_you_mean
from planner.errors import ConfigError, Diagnostic, SourceLocation, UsageError
from planner.settings import ENV_PREFIX

TYPES = ("string", "integer", "number", "boolean")
_KEYS = ("type", "default", "description", "sensitive", "pattern", "enum")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# The top-level `variables:` key of a block-style file, and the next top-level line after it.
_BLOCK_START = re.compile(r"variables[ ]*:")
_TOP_LEVEL = re.compile(r"\n[^ \t#\n\r]")


@dataclass(frozen=True)
class Declaration:
    """One declared variable, as written under `variables:`."""

    name: str
    type: str
    location: SourceLocation
    has_default: bool = False
    default: Any = None
    description: str | None = None
    sensitive: bool = False
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Given:
    """A value supplied from outside the configuration, and where it came from."""

    name: str
    value: Any
    source: str  # "--var", "PLANNER_VAR_NAME", or the var file's path
    location: SourceLocation | None = None

    def where(self) -> str:
        if self.source == "--var" or self.source.startswith(ENV_PREFIX):
            return f"--var {self.name}" if self.source == "--var" else self.source
        return self.name  # a var file's entry: its location names the file


class Values(dict[str, str]):
    """NAME -> the text ``${var.NAME}`` becomes; also the typed values and what is declared.

    `declared` is None in legacy mode (no `variables:` block anywhere).
    """

    def __init__(
        self,
        texts: Mapping[str, str],
        *,
        typed: Mapping[str, Any] | None = None,
        declared: Mapping[str, Declaration] | None = None,
    ):
        super().__init__(texts)
        self.typed: dict[str, Any] = dict(typed if typed is not None else texts)
        self.declared: dict[str, Declaration] | None = dict(declared) if declared is not None else None
        # Legacy mode only: the values given by --var or a var file that no file uses.
        self.unused: tuple[str, ...] = ()

    @property
    def sensitive_names(self) -> frozenset[str]:
        return frozenset(n for n, d in (self.declared or {}).items() if d.sensitive)

    def sensitive_values(self) -> frozenset[str]:
        """The texts of sensitive variables that have a value (for masking output)."""
        return frozenset(self[n] for n in self.sensitive_names if self.get(n))

    def recorded(self) -> dict[str, Any]:
        """What a saved plan keeps: non-sensitive values as given, sensitive ones as digests only."""
        sensitive = self.sensitive_names
        return {
            "values": {n: self.typed[n] for n in sorted(self) if n not in sensitive},
            "sensitive": {n: value_digest(n, self[n]) for n in sorted(self) if n in sensitive},
        }


def value_digest(name: str, text: str) -> str:
    """sha256 of a sensitive variable's name and value: enough to say "the same", nothing more."""
    return "sha256:" + hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()


# --- values given from outside ---------------------------------------------------------------------


def gather(pairs: Sequence[str], var_files: Sequence[str], environ: Mapping[str, str]) -> list[Given]:
    """Every given value, lowest precedence first: PLANNER_VAR_* < --var-file (in order) < --var."""
    given: list[Given] = []
    for key, value in sorted(environ.items()):
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            given.append(Given(key[len(ENV_PREFIX) :], value, key))
    diagnostics: list[Diagnostic] = []
    for var_file in var_files:
        found, problems = read_var_file(var_file)
        given.extend(found)
        diagnostics.extend(problems)
    if diagnostics:
        raise ConfigError(diagnostics)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        given.append(Given(key, value, "--var"))
    return given


def read_var_file(path: str) -> tuple[list[Given], list[Diagnostic]]:
    """A var file's NAME: value entries (scalars only), read by planner's own YAML loader."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"--var-file {path}: {err.strerror}") from err
    if not raw.strip() or all(not ln.strip() or ln.lstrip().startswith(b"#") for ln in raw.splitlines()):
        return [], []  # an empty var file sets nothing
    doc, problems = parse_document(raw, path)
    if doc is None:
        return [], problems
    children = doc.span[4]
    assert isinstance(children, dict)
    out: list[Given] = []
    for name, value in doc.data.items():
        span = children[name]
        if isinstance(value, (dict, list)) or value is None:
            loc = SourceLocation(path, span[0], span[1])
            problems.append(Diagnostic(loc, name, "a variable's value must be a string, number or boolean"))
            continue
        out.append(Given(name, value, path, SourceLocation(path, span[0], span[1])))
    return out, problems


# --- declarations ------------------------------------------------------------------------------------


def declarations_block(text: str) -> str | None:
    """The file's text with everything but its top-level `variables:` block blanked (lines kept, so
    positions stay true), or None when it has none. Cheap even for a 10,000-job file."""
    # str.find, not a ^-anchored MULTILINE search: that is ten times slower on a large file.
    def after(pos: int) -> int:  # the next line starting with "variables" at or after pos, or -1
        found = text.find("\nvariables", pos)
        return found + 1 if found >= 0 else -1

    at = 0 if text.startswith("variables") else after(0)
    while at >= 0:
        match = _BLOCK_START.match(text, at)
        if match is not None:
            break
        at = after(at)
    else:
        return None
    start = match.start()
    following = _TOP_LEVEL.search(text, match.end())
    end = following.start() + 1 if following is not None else len(text)
    return "\n" * text.count("\n", 0, start) + text[start:end]


def read_declarations(files: Iterable[Path]) -> tuple[dict[str, Declaration], list[Diagnostic]]:
    declared: dict[str, Declaration] = {}
    problems: list[Diagnostic] = []
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            continue  # the loader reports an unreadable file
        if b"variables" not in raw:
            continue  # the common case, a byte search: a 5 MB file costs about a millisecond
        block = declarations_block(raw.decode("utf-8", errors="replace"))
        if block is None:
            continue
        doc, _syntax = parse_document(block, str(path))
        if doc is None:
            continue  # the loader reports the file's syntax errors, with every other file's
        block_value = doc.data.get("variables")
        block_span = doc.find(["variables"])
        assert block_span is not None
        if block_value is None:
            continue
        if not isinstance(block_value, dict):
            loc = SourceLocation(str(path), block_span[0], block_span[1])
            problems.append(Diagnostic(loc, "variables", "expected a mapping of NAME: {type: …}"))
            continue
        children = block_span[4]
        assert isinstance(children, dict)
        for name, spec in block_value.items():
            declaration = _declaration(str(path), name, spec, children[name], problems)
            if declaration is None:
                continue
            if name in declared:
                message = f'variable "{name}" is already declared at {declared[name].location}'
                problems.append(Diagnostic(declaration.location, f"variables.{name}", message))
                continue
            declared[name] = declaration
    return declared, problems


def _declaration(file: str, name: str, spec: Any, span: Span, problems: list[Diagnostic]) -> Declaration | None:
    key_loc = SourceLocation(file, span[2], span[3])
    path = f"variables.{name}"
    before = len(problems)

    def problem(where: SourceLocation, field: str, message: str) -> None:
        problems.append(Diagnostic(where, f"{path}.{field}" if field else path, message))

    if not _NAME.fullmatch(name):
        problem(key_loc, "", f'invalid variable name "{name}": letters, digits and "_", not starting with a digit')
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        problem(SourceLocation(file, span[0], span[1]), "", "expected a mapping with type, default, description, …")
        return None
    children = span[4] if isinstance(span[4], dict) else {}

    def at(key: str) -> SourceLocation:
        child = children.get(key)
        return SourceLocation(file, child[0], child[1]) if child else key_loc

    for key in spec:
        if key not in _KEYS:
            hint = did_you_mean(key, _KEYS, f" (expected one of: {', '.join(_KEYS)})")
            child = children.get(key)
            problem(SourceLocation(file, child[2], child[3]) if child else key_loc, key, f'unknown field "{key}"{hint}')
    kind = spec.get("type", "string")
    if kind not in TYPES:
        problem(at("type"), "type", f"unknown type {kind!r}: expected one of {', '.join(TYPES)}")
        kind = "string"
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        problem(at("description"), "description", "expected a string")
    sensitive = spec.get("sensitive", False)
    if not isinstance(sensitive, bool):
        problem(at("sensitive"), "sensitive", "expected true or false")
        sensitive = False
    pattern = spec.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            problem(at("pattern"), "pattern", "expected a regular expression (a string)")
            pattern = None
        else:
            try:
                re.compile(pattern)
            except re.error as err:
                problem(at("pattern"), "pattern", f"invalid regular expression: {err}")
                pattern = None
    enum = spec.get("enum")
    enum_values: tuple[Any, ...] | None = None
    if enum is not None:
        if not isinstance(enum, list) or not enum:
            problem(at("enum"), "enum", "expected a non-empty list of allowed values")
        else:
            converted = []
            for item in enum:
                value, why = convert(item, kind)
                if why is not None:
                    problem(at("enum"), "enum", f"{_show(item)}: {why}")
                converted.append(value)
            enum_values = tuple(converted)
    declaration = Declaration(
        name=name,
        type=kind,
        location=key_loc,
        description=description if isinstance(description, str) else None,
        sensitive=sensitive,
        pattern=pattern,
        enum=enum_values,
    )
    if "default" in spec:
        value, why = check(declaration, spec["default"])
        if why is not None:
            problem(at("default"), "default", why)
        declaration = replace(declaration, has_default=True, default=value)
    return declaration if len(problems) == before else None


# --- types -------------------------------------------------------------------------------------------


def convert(value: Any, kind: str) -> tuple[Any, str | None]:
    """value as `kind` (strings from --var and the environment are converted), or (value, why not)."""
    if kind == "string":
        if isinstance(value, (str, int, float)):  # bool among them
            return text_of(value), None
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value.strip()), None
        return value, f"expected an integer, got {_show(value)}"
    elif kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value, None
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            text = value.strip()
            return (int(text) if _INTEGER.fullmatch(text) else float(text)), None
        return value, f"expected a number, got {_show(value)}"
    elif kind == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip() in ("true", "false"):
            return value.strip() == "true", None
        return value, f"expected true or false, got {_show(value)}"
    return value, f"expected a string, got {_show(value)}"


def check(declaration: Declaration, value: Any) -> tuple[Any, str | None]:
    """value converted to the declaration's type and checked against its pattern and enum."""
    typed, why = convert(value, declaration.type)
    if why is not None:
        return typed, why
    if declaration.pattern is not None and re.fullmatch(declaration.pattern, text_of(typed)) is None:
        return typed, f"does not match the pattern {declaration.pattern!r}" + (
            "" if declaration.sensitive else f" (got {_show(typed)})"
        )
    if declaration.enum is not None and not any(_same(typed, c) for c in declaration.enum):
        choices = ", ".join(_show(c) for c in declaration.enum)
        return typed, f"expected one of {choices}" + ("" if declaration.sensitive else f", got {_show(typed)}")
    return typed, None


def text_of(value: Any) -> str:
    """The text a typed value becomes inside a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else bool(a == b)


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else text_of(value)


# --- putting it together -------------------------------------------------------------------------------


def resolve(paths: Sequence[str | Path], given: Sequence[Given]) -> Values:
    """The values for a configuration: declarations read from its files, given values checked."""
    files, declared = _declared_in(paths)
    if declared:
        return values_for(declared, given)
    # Legacy mode: keep only what the files use, so that a saved plan records no stray
    # PLANNER_VAR_* of the environment, and say which explicit values nothing uses.
    used = _referenced({g.name for g in given}, files)
    values = values_for(declared, [g for g in given if g.name in used])
    values.unused = tuple(
        sorted(
            {
                f"{g.location}: {g.name}" if g.location else g.where()
                for g in given
                if g.name not in used and not g.source.startswith(ENV_PREFIX)
            }
        )
    )
    return values


def _declared_in(paths: Sequence[str | Path]) -> tuple[list[Path], dict[str, Declaration]]:
    try:
        files = resolve_paths(paths)
    except UsageError:
        files = []  # the loader says which path is missing
    declared, problems = read_declarations(files)
    if problems:
        raise ConfigError(problems)
    return files, declared


def _referenced(names: set[str], files: Sequence[Path]) -> set[str]:
    """The names that some file writes as ``${var.NAME}`` or ``${var.NAME:-…}`` (a byte search)."""
    found: set[str] = set()
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        for name in names - found:
            token = b"${var." + name.encode()
            if token + b"}" in raw or token + b":-" in raw:
                found.add(name)
    return found


def values_for(declared: Mapping[str, Declaration], given: Sequence[Given]) -> Values:
    latest: dict[str, Given] = {}
    for item in given:
        latest[item.name] = item  # later sources win
    if not declared:
        return Values({n: text_of(g.value) for n, g in latest.items()})
    problems: list[Diagnostic] = []
    typed: dict[str, Any] = {}
    for name, item in latest.items():
        declaration = declared.get(name)
        if declaration is None:
            hint = did_you_mean(name, list(declared), f" (declared: {', '.join(sorted(declared))})")
            problems.append(Diagnostic(item.location, item.where(), f'no variable "{name}" is declared{hint}'))
            continue
        value, why = check(declaration, item.value)
        if why is not None:
            # A flag or environment value has no position of its own: point at its declaration.
            problems.append(Diagnostic(item.location or declaration.location, item.where(), why))
            continue
        typed[name] = value
    if problems:
        raise ConfigError(problems)
    for name, declaration in declared.items():
        if name not in typed and declaration.has_default:
            typed[name] = declaration.default
    return Values({n: text_of(v) for n, v in typed.items()}, typed=typed, declared=declared)


# --- hooks for `validate` ------------------------------------------------------------------------------


def missing_message(variables: Mapping[str, str], name: str, has_default: bool) -> str | None:
    """Why ``${var.NAME}`` (``:-default`` if has_default) cannot be replaced, or None if it may use
    its inline default."""
    declared = variables.declared if isinstance(variables, Values) else None
    if declared is not None and name not in declared:
        return f'undeclared variable "{name}": declare it under `variables:`{did_you_mean(name, list(declared))}'
    if has_default:
        return None
    if declared is not None:
        return (
            f'variable "{name}" (declared at {declared[name].location}) has no value: pass --var {name}=VALUE, '
            f"--var-file, or PLANNER_VAR_{name}, or give it a default"
        )
    return (
        f'undefined variable "{name}": pass --var {name}=VALUE, --var-file, or PLANNER_VAR_{name}, '
        f"or give a default with ${{var.{name}:-default}}"
    )


_WHOLE = re.compile(r"\$\{var\.([A-Za-z_][A-Za-z0-9_]*)\}")


def typed_reference(variables: Mapping[str, str], value: str) -> tuple[bool, Any]:
    """(True, typed value) when value is exactly ``${var.NAME}`` of a declared variable with a value."""
    if not isinstance(variables, Values) or variables.declared is None:
        return False, None
    match = _WHOLE.fullmatch(value)
    if match is None or match.group(1) not in variables.typed:
        return False, None
    return True, variables.typed[match.group(1)]


def declarations_schema() -> dict[str, Any]:
    """The JSON Schema of a `variables:` block (for the desired-state schema and editors)."""
    scalar = {"type": ["string", "number", "boolean"]}
    return {
        "type": "object",
        "description": "Declared variables: ${var.NAME} may only name these (see README, Variables).",
        "propertyNames": {
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "x-kind": "variable name",
            "description": 'letters, digits and "_", not starting with a digit',
        },
        "additionalProperties": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": list(TYPES), "description": "The value's type; string unless set."},
                "default": {**scalar, "description": "Used when no value is given."},
                "description": {"type": "string"},
                "sensitive": {"type": "boolean", "description": "Never printed, logged or stored in plain text."},
                "pattern": {"type": "string", "description": "A regular expression the whole value must match."},
                "enum": {"type": "array", "minItems": 1, "items": scalar, "description": "The allowed values."},
            },
        },
    }


def as_values(paths: Sequence[str | Path], variables: Mapping[str, str]) -> Values:
    """`variables` as resolved Values: as they are, or (a plain mapping from a library caller or a
    test) checked against the files' declarations like --var values, except that names the files
    do not declare are left out rather than refused (one mapping may serve several configurations)."""
    if isinstance(variables, Values):
        return variables
    _files, declared = _declared_in(paths)
    given = [Given(n, v, "--var") for n, v in variables.items() if not declared or n in declared]
    return values_for(declared, given)
