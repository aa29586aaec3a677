"""Where a job's values were written: the table of source locations by dotted path that a
DesiredJob carries, built from the loader's spans when first read; spans are `load`'s business.

The values tier knows no positions: its documents span `NOWHERE`, and its jobs' tables are
`Deferred` to a lookup that loads the files again with the positional builder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from planner.config.load import Span
from planner.config.messages import SIMPLE_KEY
from planner.errors import SourceLocation


class Positions(Mapping[str, SourceLocation]):
    """Dotted path -> SourceLocation for every value of one job, computed on first use."""

    def __init__(self, file: str, span: Span):
        self._file = file
        self._span = span
        self._table: dict[str, SourceLocation] | None = None

    def _build(self) -> dict[str, SourceLocation]:
        if self._table is None:
            table: dict[str, SourceLocation] = {}
            stack: list[tuple[str, Span]] = [("", self._span)]
            while stack:
                path, span = stack.pop()
                if path:
                    table[path] = SourceLocation(self._file, span[0], span[1])
                children = span[4]
                if isinstance(children, dict):
                    for key, child in children.items():
                        stack.append((_join(path, key), child))
                elif isinstance(children, list):
                    for i, child in enumerate(children):
                        stack.append((f"{path}[{i}]", child))
            self._table = table
        return self._table

    def __getitem__(self, key: str) -> SourceLocation:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


def _join(path: str, key: str) -> str:
    if SIMPLE_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


class Deferred(Mapping[str, SourceLocation]):
    """One job's positions, asked of `lookup(address)` when first read."""

    def __init__(self, lookup: Callable[[str], Mapping[str, SourceLocation]], address: str):
        self._lookup = lookup
        self._address = address

    def __getitem__(self, path: str) -> SourceLocation:
        return self._lookup(self._address)[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup(self._address))

    def __len__(self) -> int:
        return len(self._lookup(self._address))


class _Nowhere(dict[str, Any]):
    """The children of a value whose position the values tier does not know: every child is nowhere."""

    def __getitem__(self, key: str) -> Span:
        return NOWHERE

    def get(self, key: str, default: Any = None) -> Span:  # type: ignore[override]
        return NOWHERE

    def __contains__(self, key: object) -> bool:
        return True


NOWHERE: Span = (0, 0, 0, 0, _Nowhere())
