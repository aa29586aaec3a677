"""The YAML loader: positions for every value, and the YAML it refuses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from planner.config.load import Document, load_documents, parse_document
from planner.errors import ConfigError, SourceLocation, UsageError


def parse(text: str | bytes) -> Document:
    doc, problems = parse_document(text, "f.yaml")
    assert problems == [], problems
    assert doc is not None
    return doc


def problems(text: str | bytes) -> list[str]:
    doc, found = parse_document(text, "f.yaml")
    assert doc is None
    return [str(d) for d in found]


def test_values_and_positions() -> None:
    doc = parse("a: 1\nb:\n  - x\n  - {c: true}\n")
    assert doc.data == {"a": 1, "b": ["x", {"c": True}]}
    a = doc.find(["a"])
    assert a is not None
    assert doc.location(a) == SourceLocation("f.yaml", 1, 4)
    assert doc.location(a, key=True) == SourceLocation("f.yaml", 1, 1)
    c = doc.find(["b", 1, "c"])
    assert c is not None
    assert doc.location(c) == SourceLocation("f.yaml", 4, 9)
    assert doc.location(c, key=True) == SourceLocation("f.yaml", 4, 6)
    item = doc.find(["b", 0])
    assert item is not None and doc.location(item) == SourceLocation("f.yaml", 3, 5)
    assert doc.find(["b", 2]) is None and doc.find(["nope"]) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-3", -3),
        ("0x1f", 31),
        ("0o17", 15),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("yes", "yes"),
        ("on", "on"),
        ("no", "no"),
        ("~", None),
        ("null", None),
        ("", None),
        ("2024-01-01", "2024-01-01"),
        ("'1'", "1"),
        ('"true"', "true"),
        ("!!str 12", "12"),
        ("!!int '12'", 12),
        ("!!float 1", 1.0),
        ("n1-standard-8", "n1-standard-8"),
        ("1h30m", "1h30m"),
    ],
)
def test_yaml_1_2_core_scalars(text: str, value: object) -> None:
    assert parse(f"v: {text}\n").data["v"] == value


def test_keys_are_always_strings() -> None:
    assert parse("1: a\ntrue: b\n~: c\n").data == {"1": "a", "true": "b", "~": "c"}


def test_duplicate_keys_are_errors_at_the_second_key() -> None:
    assert problems("a: 1\nb: 2\na: 3\n") == ['f.yaml:3:1: duplicate key "a" (first defined at line 1)']


def test_unsafe_tags_are_errors_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "planner-pwned"
    found = problems(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    assert "is not allowed" in found[0] and found[0].startswith("f.yaml:1:4:")
    assert not marker.exists()
    assert "is not allowed" in problems("a: !custom x\n")[0]
    assert "is not allowed" in problems("a: !!set {x}\n")[0]


def test_aliases_work_and_bombs_fail_fast() -> None:
    doc = parse("a: &x {k: [1, 2]}\nb: *x\n")
    assert doc.data["a"] == doc.data["b"] == {"k": [1, 2]}
    assert doc.aliased
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    found = problems("\n".join(levels) + "\n")
    assert time.perf_counter() - start < 2
    assert "alias bomb" in found[0]


def test_undefined_alias() -> None:
    assert problems("a: *nope\n")[0].startswith("f.yaml:1:4:")


def test_syntax_errors_have_positions() -> None:
    found = problems("a: [1, 2\nb: 3\n")
    assert found[0].startswith("f.yaml:2:") and "YAML syntax error" in found[0]
    found = problems("a:\n\tb: 1\n")
    assert found[0].startswith("f.yaml:2:1:") and "tabs" in found[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("# just a comment\n", "file is empty"),
        ("- a\n", "must be a mapping, got a list"),
        ("hello\n", "must be a mapping, got a string"),
        ("~\n", "must be a mapping, got null"),
        ("a: 1\n---\nb: 2\n", "only one YAML document"),
        ("? [a]\n: 1\n", "mapping key must be a plain scalar"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", "nesting deeper"),
    ],
)
def test_document_shape_errors(text: str, message: str) -> None:
    assert message in problems(text)[0]


def test_encoding() -> None:
    assert parse("\ufeffa: 1\n".encode()).data == {"a": 1}
    assert parse("a: café\n".encode()).data == {"a": "café"}
    found = problems(b"a: 1\nb: caf\xe9\n")
    assert found == ["f.yaml:2:7: file is not valid UTF-8 text"]


def test_templated_values_are_recorded() -> None:
    doc = parse('a: ${var.x}\nb: ["${var.y}", z]\n${var.k}: 1\n')
    assert set(doc.templated) == {(("a",), True), (("b", 0), False)}


def test_directories_expand_to_sorted_yaml_files_not_recursively(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("b: 1\n")
    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / ".hidden.yaml").write_text("h: 1\n")
    (tmp_path / "notes.txt").write_text("not yaml\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("c: 1\n")
    docs = load_documents([tmp_path])
    assert [Path(d.file).name for d in docs] == ["a.yaml", "b.yml"]


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_documents([tmp_path / "missing.yaml"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no \*\.yaml"):
        load_documents([tmp_path / "empty"])


def test_all_files_are_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\na: 2\n")
    (tmp_path / "b.yaml").write_text("- x\n")
    with pytest.raises(ConfigError) as info:
        load_documents([tmp_path])
    assert [d.location.file for d in info.value.diagnostics if d.location] == [
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.yaml"),
    ]
