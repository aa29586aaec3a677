"""AIP-160 list filters for CustomJobs: a tokenizer, a recursive-descent parser and an evaluator.

Grammar (https://google.aip.dev/assets/misc/ebnf-filtering.txt, the subset ListCustomJobs
documents): `expression = sequence {AND sequence}`, `sequence = factor {factor}` (an
implicit AND), `factor = term {OR term}` — so OR binds tighter than AND — `term = [NOT|-]
simple`, `simple = restriction | "(" expression ")"`, `restriction = member comparator arg`.
A `-` negates only at the start of a term; inside a member path or a value it is an
ordinary character, so `labels.managed-by=planner` names the label `managed-by`.
Fields: display_name/displayName, state, create_time/createTime, update_time/updateTime,
labels.KEY, and `labels:KEY`. Bad filters raise `FilterError` (→ 400 INVALID_ARGUMENT).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from planner import apimodel


class FilterError(ValueError):
    """The filter text is not a valid filter for ListCustomJobs; the message says where."""


# ------------------------------------------------------------------------------------------ tokens

COMPARATORS: Final = ("<=", ">=", "!=", "=", "<", ">", ":")
_SPECIAL: Final = frozenset('()"\'.:=<>!,')


@dataclass(frozen=True)
class Token:
    kind: str  # TEXT | STRING | DOT | COMMA | LPAREN | RPAREN | CMP | END
    text: str
    pos: int
    space_before: bool


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    space = True
    while i < n:
        ch = text[i]
        if ch.isspace():
            space = True
            i += 1
            continue
        start = i
        if ch in "\"'":
            value, i = _read_string(text, i)
            tokens.append(Token("STRING", value, start, space))
        elif ch == "(":
            tokens.append(Token("LPAREN", ch, start, space))
            i += 1
        elif ch == ")":
            tokens.append(Token("RPAREN", ch, start, space))
            i += 1
        elif ch == ".":
            tokens.append(Token("DOT", ch, start, space))
            i += 1
        elif ch == ",":
            tokens.append(Token("COMMA", ch, start, space))
            i += 1
        elif ch in "<>!=:":
            for op in COMPARATORS:
                if text.startswith(op, i):
                    tokens.append(Token("CMP", op, start, space))
                    i += len(op)
                    break
            else:
                raise FilterError(f"unexpected {ch!r} at position {i + 1}")
        else:
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append(Token("TEXT", text[start:i], start, space))
        space = False
    tokens.append(Token("END", "", n, True))
    return tokens


def _read_string(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    start = i
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterError(f"unterminated string starting at position {start + 1}")


# ------------------------------------------------------------------------------------------ AST


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


@dataclass(frozen=True)
class Compare:
    member: tuple[str, ...]
    op: str
    value: str
    quoted: bool


Node = And | Or | Not | Compare


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, what: str, token: Token | None = None) -> FilterError:
        token = token or self.tok
        found = "end of filter" if token.kind == "END" else repr(token.text)
        return FilterError(f"{what} at position {token.pos + 1}, found {found}")

    def is_keyword(self, word: str) -> bool:
        return self.tok.kind == "TEXT" and self.tok.text == word

    def parse(self) -> Node:
        if self.tok.kind == "END":
            raise FilterError("empty filter")
        node = self.expression()
        if self.tok.kind != "END":
            raise self.error("unexpected token")
        return node

    def expression(self) -> Node:
        parts = [self.sequence()]
        while self.is_keyword("AND"):
            self.take()
            parts.append(self.sequence())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def sequence(self) -> Node:
        parts = [self.factor()]
        while self.tok.kind not in ("END", "RPAREN") and not self.is_keyword("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def factor(self) -> Node:
        parts = [self.term()]
        while self.is_keyword("OR"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def term(self) -> Node:
        token = self.tok
        if self.is_keyword("NOT"):
            self.take()
            return Not(self.simple())
        if token.kind == "TEXT" and token.text.startswith("-"):
            if token.text == "-":
                self.take()
                nxt = self.tok
                if nxt.space_before or nxt.kind not in ("TEXT", "STRING", "LPAREN"):
                    raise self.error("expected a term right after '-'")
                return Not(self.simple())
            # "-labels.a=b": the dash negates; the rest of the token is the member's first segment
            self.tokens[self.i] = Token("TEXT", token.text[1:], token.pos + 1, False)
            return Not(self.simple())
        return self.simple()

    def simple(self) -> Node:
        if self.tok.kind == "LPAREN":
            self.take()
            node = self.expression()
            if self.tok.kind != "RPAREN":
                raise self.error("expected ')'")
            self.take()
            return node
        return self.restriction()

    def restriction(self) -> Node:
        member = self.member()
        if self.tok.kind != "CMP":
            raise self.error(f"expected a comparison after {'.'.join(member)!r} (free-text search is "
                             "not supported)")
        op = self.take().text
        value, quoted = self.arg()
        return Compare(member, op, value, quoted)

    def member(self) -> tuple[str, ...]:
        token = self.tok
        if token.kind not in ("TEXT", "STRING") or token.text in ("AND", "OR", "NOT"):
            raise self.error("expected a field name")
        self.take()
        segments = [token.text]
        while self.tok.kind == "DOT" and not self.tok.space_before:
            self.take()
            nxt = self.tok
            if nxt.kind not in ("TEXT", "STRING") or nxt.space_before:
                raise self.error("expected a field name after '.'")
            segments.append(self.take().text)
        return tuple(segments)

    def arg(self) -> tuple[str, bool]:
        token = self.tok
        if token.kind == "STRING":
            self.take()
            return token.text, True
        if token.kind != "TEXT" or token.text in ("AND", "OR", "NOT"):
            raise self.error("expected a value")
        # A bare value runs until whitespace or a parenthesis: 2021-05-18T00:00:00Z, 1.5, a-b
        parts = [self.take().text]
        while self.tok.kind in ("TEXT", "DOT", "CMP", "COMMA") and not self.tok.space_before:
            parts.append(self.take().text)
        return "".join(parts), False


def parse_filter(text: str) -> Node | None:
    """The AST of a filter; None for an empty or blank filter (everything matches)."""
    if not text.strip():
        return None
    return _Parser(text).parse()


# ------------------------------------------------------------------------------------------ evaluation

Job = Mapping[str, Any]
Predicate = Callable[[Job], bool]

_FIELD_ALIASES: Final = {
    "display_name": "displayName",
    "displayName": "displayName",
    "state": "state",
    "create_time": "createTime",
    "createTime": "createTime",
    "update_time": "updateTime",
    "updateTime": "updateTime",
    "labels": "labels",
}
_TIMESTAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(text: str) -> float:
    if not _TIMESTAMP.match(text):
        raise FilterError(f"{text!r} is not an RFC 3339 timestamp such as 2024-05-18T00:00:00Z")
    base, _, rest = text.partition(".")
    frac = 0.0
    if rest:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        frac = float("0." + digits.group(0))
        text = base + rest[digits.end():]
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() + frac
    except ValueError as exc:
        raise FilterError(f"{text!r} is not a valid timestamp: {exc}") from None


def _glob(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern:
        return lambda value: value == pattern
    regex = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$", re.DOTALL)
    return lambda value: regex.match(value) is not None


def compile_filter(text: str) -> Predicate:
    """A predicate over a job as the list method sees it: `state` a name, times as epoch floats.

    The job mapping must carry `displayName`, `state`, `labels` (always, possibly empty), and
    `createTime`/`updateTime` as float seconds under the keys `_createTime`/`_updateTime`.
    """
    node = parse_filter(text)
    if node is None:
        return lambda job: True
    return _compile(node)


def _compile(node: Node) -> Predicate:
    if isinstance(node, And):
        parts = [_compile(p) for p in node.parts]
        return lambda job: all(p(job) for p in parts)
    if isinstance(node, Or):
        parts = [_compile(p) for p in node.parts]
        return lambda job: any(p(job) for p in parts)
    if isinstance(node, Not):
        inner = _compile(node.part)
        return lambda job: not inner(job)
    return _compile_compare(node)


def _compile_compare(node: Compare) -> Predicate:
    head, *rest = node.member
    field = _FIELD_ALIASES.get(head)
    path = ".".join(node.member)
    if field is None:
        known = "display_name, state, create_time, update_time, labels.KEY"
        raise FilterError(f"unsupported field {path!r} in filter (supported: {known})")
    op, value = node.op, node.value
    if field == "labels":
        return _compile_labels(rest, op, value, path)
    if rest:
        raise FilterError(f"field {head!r} has no sub-field {'.'.join(rest)!r}")
    if field == "displayName":
        if op not in ("=", "!=", ":"):
            raise FilterError(f"operator {op!r} is not supported on {head} (use =, != or :)")
        match = _glob(value)
        if op == "!=":
            return lambda job: not match(str(job.get("displayName", "")))
        return lambda job: match(str(job.get("displayName", "")))
    if field == "state":
        if op not in ("=", "!=", ":"):
            raise FilterError(f"operator {op!r} is not supported on state (use = or !=)")
        state = apimodel.enum_name(apimodel.JOB_STATES, value)
        if state is None:
            raise FilterError(f"{value!r} is not a job state (e.g. JOB_STATE_RUNNING)")
        if op == "!=":
            return lambda job: job.get("state") != state
        return lambda job: job.get("state") == state
    # createTime / updateTime
    moment = parse_timestamp(value)
    key = "_" + field
    compare: dict[str, Callable[[float], bool]] = {
        "=": lambda t: t == moment,
        "!=": lambda t: t != moment,
        "<": lambda t: t < moment,
        "<=": lambda t: t <= moment,
        ">": lambda t: t > moment,
        ">=": lambda t: t >= moment,
    }
    if op not in compare:
        raise FilterError(f"operator {op!r} is not supported on {head}")
    check = compare[op]
    return lambda job: job.get(key) is not None and check(float(job[key]))


def _compile_labels(rest: list[str], op: str, value: str, path: str) -> Predicate:
    if not rest:
        # labels:KEY — the map has the key
        if op != ":":
            raise FilterError(f"compare a label with labels.KEY=VALUE, not {path}{op}{value}")
        key = value
        return lambda job: key in job["labels"]
    if len(rest) != 1:
        raise FilterError(f"label filter {path!r} must be labels.KEY")
    key = rest[0]
    if op == ":" and value == "*":
        return lambda job: key in job["labels"]
    if op not in ("=", "!=", ":"):
        raise FilterError(f"operator {op!r} is not supported on labels (use =, != or :)")
    if op == "!=":
        return lambda job: job["labels"].get(key) != value
    if op == "=" or "*" not in value:
        return lambda job: job["labels"].get(key) == value
    match = _glob(value)
    return lambda job: match(job["labels"].get(key, "")) if key in job["labels"] else False


def describe(node: Node | None) -> str:
    """A fully parenthesised rendering of an AST (for tests and error messages)."""
    if node is None:
        return ""
    if isinstance(node, And):
        return "(" + " AND ".join(describe(p) for p in node.parts) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(describe(p) for p in node.parts) + ")"
    if isinstance(node, Not):
        return "NOT " + describe(node.part)
    value = f'"{node.value}"' if node.quoted else node.value
    return f"{'.'.join(node.member)}{node.op}{value}"

