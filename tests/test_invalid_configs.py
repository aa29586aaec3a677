"""Every file (or directory) under testdata/invalid/ is rejected exactly as its comments say.

A fixture marks each expected error with a trailing ``# error: TEXT`` on the offending line:
some diagnostic must be reported at that file and line with TEXT in its message, and no
diagnostic may land on a line without such a comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.config.validate import load_desired
from planner.errors import ConfigError

INVALID = Path(__file__).parent / "testdata" / "invalid"
CASES = sorted(p for p in INVALID.iterdir() if not p.name.startswith("."))
_EXPECT = re.compile(r"#\s*error:\s*(.+?)\s*$")


def expectations(case: Path) -> list[tuple[str, int, str]]:
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    found = []
    for file in files:
        text = file.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            match = _EXPECT.search(line)
            if match:
                found.append((str(file), number, match.group(1)))
    return found


def test_there_are_enough_fixtures() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_invalid_config(case: Path) -> None:
    expected = expectations(case)
    assert expected, f"{case} has no '# error:' comment"
    with pytest.raises(ConfigError) as info:
        load_desired([case], variables={})
    diagnostics = info.value.diagnostics
    for file, line, text in expected:
        here = [d for d in diagnostics if d.location and d.location.file == file and d.location.line == line]
        assert any(text in str(d) for d in here), (
            f"{Path(file).name}:{line}: expected an error containing {text!r}; got:\n{info.value}"
        )
    marked = {(file, line) for file, line, _ in expected}
    for d in diagnostics:
        assert d.location is not None, f"no location: {d}"
        assert (d.location.file, d.location.line) in marked, f"unexpected error: {d}"
        assert d.location.column >= 1
