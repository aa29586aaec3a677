"""The values tier (planner.config.fast) against the positional builder: same values or a decline,
and a large configuration loaded through it gives the builder's result and diagnostics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_load_fuzz import mangled

from planner.config import validate
from planner.config.fast import fast_values
from planner.config.load import parse_document
from planner.config.validate import load_desired
from planner.errors import ConfigError


def assert_same_or_declined(text: str) -> bool:
    """The contract: fast_values gives the builder's data and templated list, or None."""
    fast = fast_values(text)
    if fast is None:
        return False
    doc, problems = parse_document(text, "f.yaml")
    assert doc is not None and not problems, f"the values tier accepted what the builder refuses: {problems}"
    assert fast.data == doc.data
    assert repr(fast.data) == repr(doc.data)  # types too: 1 and 1.0 and True are equal in Python
    assert fast.templated == doc.templated
    return True


# Scalars where YAML readers differ: spellings, styles, numbers, references.
SCALARS = [
    "x", "plain text", "'quoted'", '"double"', "1", "'1'", '"1"', "-1", "+1", "01", "0x1F", "0o17", "1_000",
    "1.5", ".5", "1.", "-.5", "1e3", "1E3", "1.0e+3", ".inf", "-.Inf", ".nan", "true", "True", "TRUE", "false",
    "False", "null", "Null", "NULL", "~", "''", '""', "yes", "no", "on", "2h", "12:30", "2024-01-01", "!!str 5",
    "!!int '5'", "${var.x}", "'${var.x}'", '"${var.x}"', "${var.x:-1}", "a-${var.x}", "$${var.x}", "${matrix.m}",
    "'it''s'", '"a\\tb"', '"\\u00e9"', "é", "-", "--flag", "-0", "0", "00", "123456789012345678901234",
    "18446744073709551616", "9223372036854775807", "|\n  block\n  text", ">-\n  folded\n  text", "|+\n  keep\n",
    "'multi\n  line'", '"multi\n  line"', "plain\n  continued", "[]", "{}", "[1, '2', x]", "{a: 1, b: '2'}",
    "# comment only", "x # comment", "&a x", "*a", "'#'", "a: b", "'a: b'", "?", "%", "@", "`",
]
KEYS = ["a", "b", "1", "true", "null", "~", "'quoted key'", '"k"', "${var.x}", "<<", "a b", "-k", "key.with.dots"]


@st.composite
def yaml_texts(draw: st.DrawFn, depth: int = 0) -> str:
    """Block mappings and sequences of tricky scalars (keys may repeat)."""
    lines = []
    indent = "  " * depth
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        key = draw(st.sampled_from(KEYS))
        if depth < 3 and draw(st.integers(min_value=0, max_value=3)) == 0:
            inner = draw(yaml_texts(depth + 1))
            lines.append(f"{indent}{key}:\n{inner}")
        elif draw(st.booleans()):
            items = draw(st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3))
            lines.append(f"{indent}{key}:\n" + "".join(f"{indent}  - {_indented(v, indent + '    ')}\n" for v in items))
        else:
            value = draw(st.sampled_from(SCALARS))
            lines.append(f"{indent}{key}: {_indented(value, indent + '  ')}\n")
    return "".join(lines)


def _indented(value: str, indent: str) -> str:
    return value.replace("\n", "\n" + indent)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_texts())
def test_the_values_tier_gives_the_builders_values_or_declines(text: str) -> None:
    assert_same_or_declined(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mangled())
def test_mangled_files_too(raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert_same_or_declined(text)


@pytest.mark.parametrize(
    "value", ["x", "'1'", "1.5", "true", "[a, 'b']", "{k: v}", "'${var.x}'", "${var.x}", "[a, b ]", "{ k: v }", "[a, ]"]
)
def test_plain_files_are_not_declined(value: str) -> None:
    """Declining everything would pass the contract: the common shapes must take the fast way."""
    assert assert_same_or_declined(f"version: 1\njobs:\n  a:\n    displayName: {value}\n    labels: {{k: v}}\n")


@pytest.mark.parametrize(
    "text",
    [
        "a: True\n", "a: ~\n", "a: 01\n", "a: 0x1F\n", "a: .inf\n", "a: !!str 5\n", "a: &x 1\nb: *x\n",
        "a: 1\na: 2\n", "a: 1\n---\nb: 2\n", "a: {b: 1, b: 2}\n", "a: ''\n", "? a\n: 1\n", "a:\n\t- 1\n",
        "- 1\n", "just text\n", "", "a: [1, 2\n", "] a: 1\n", "a: {b: 1,:c: 2}\n", "a: {b: 1, ?c: 2}\n",
        "a: x\n\x01b: y\n", "a: x\n]\n",
        # A block plain scalar starting with a closing bracket: libyaml refuses it, rapidyaml reads it.
        "a:\n  ]b: 2\n", "a: ]b\n", "a:\n  - ]b\n", "a: }b\n", "a:\n  }b: 1\n", "a:\n  b:  ]\n", "a:\n- ]x\n",
    ],
)
def test_what_the_values_tier_declines(text: str) -> None:
    assert fast_values(text) is None


def test_a_parse_error_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    assert fast_values("a: [1, 2\nb: {") is None
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


HEAD = "version: 1\nproject: demo-project\nlocation: us-central1\ndefaults:\n  labels: {team: ml}\njobs:\n"


def big_config(tmp_path: Path, count: int, *, extra: str = "", name: str = "jobs.yaml") -> Path:
    body = "".join(
        f"  job-{i:05d}:\n"
        f"    displayName: job-{i:05d}\n"
        f"    labels: {{shard: s{i % 7}}}\n"
        f"    jobSpec:\n"
        f"      workerPoolSpecs:\n"
        f"        - machineSpec: {{machineType: n1-standard-4}}\n"
        f"          replicaCount: 1\n"
        f"          containerSpec: {{imageUri: 'img:{i}', env: [{{name: A, value: '${{var.v:-x}}'}}]}}\n"
        f"      scheduling: {{timeout: {1 + i % 5}h}}\n"
        for i in range(count)
    )
    path = tmp_path / name
    path.write_text(HEAD + body + extra)
    return path


@pytest.fixture
def fast_always(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every configuration takes the values tier; the list counts the loads it gave."""
    monkeypatch.setattr(validate, "FAST_MIN_BYTES", 0)
    loads: list[int] = []
    real = validate._load_values

    def counted(*args: Any) -> Any:
        desired = real(*args)
        loads.append(desired is not None)
        return desired

    monkeypatch.setattr(validate, "_load_values", counted)
    return loads


def sourceless(jobs: Any) -> dict[str, Any]:
    return {address: replace(job, source=None) for address, job in jobs.items()}


def by_builder(monkeypatch: pytest.MonkeyPatch, paths: list[Path], variables: dict[str, str]) -> Any:
    with monkeypatch.context() as m:
        m.setattr(validate, "FAST_MIN_BYTES", 1 << 62)
        return load_desired(paths, variables=variables)


def test_the_values_tier_gives_the_builders_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_always: list[int]
) -> None:
    path = big_config(tmp_path, 400)
    fast = load_desired([path], variables={"v": "value"})
    assert fast_always == [True]
    slow = by_builder(monkeypatch, [path], {"v": "value"})
    assert list(fast.jobs) == list(slow.jobs)
    assert fast.jobs == sourceless(slow.jobs)
    assert fast.config_hash == slow.config_hash and fast.files == slow.files
    for address in ("job-00000", "job-00399"):
        assert fast.jobs[address].source is None  # the values tier knows no positions …
        assert dict(fast.jobs[address].positions) == dict(slow.jobs[address].positions)  # … until asked


def test_several_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_always: list[int]) -> None:
    first = big_config(tmp_path, 50, name="a.yaml")
    (tmp_path / "b.yaml").write_text(first.read_text().replace("job-", "other-"))
    fast = load_desired([tmp_path], variables={})
    assert fast_always == [True]
    assert fast.jobs == sourceless(by_builder(monkeypatch, [tmp_path], {}).jobs)
    assert len(fast.jobs) == 100


@pytest.mark.parametrize(
    "extra",
    [
        "  job-99999:\n    displayName: 7\n",  # wrong type
        "  job-00001:\n    displayName: twice\n",  # a job defined twice
        "  job-99998:\n    displayName: '${var.missing}'\n",  # undefined variable
        "  job-99997:\n    displayName: [unclosed\n",  # YAML syntax error
        "  job-99996:\n    displayName: True\n",  # declined by the values tier
        "  job-99995:\n    labels: {planner-x: y}\n",  # reserved label (a semantic check)
    ],
)
def test_problems_are_reported_exactly_as_by_the_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_always: list[int], extra: str
) -> None:
    path = big_config(tmp_path, 300, extra=extra)
    with pytest.raises(ConfigError) as fast:
        load_desired([path], variables={})
    assert fast_always == [False]
    with pytest.raises(ConfigError) as slow, monkeypatch.context() as m:
        m.setattr(validate, "FAST_MIN_BYTES", 1 << 62)
        load_desired([path], variables={})
    assert [str(d) for d in fast.value.diagnostics] == [str(d) for d in slow.value.diagnostics]


def test_hardware_warnings_come_from_the_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_always: list[int]
) -> None:
    job = "  waits:\n    displayName: waits\n    jobSpec:\n      scheduling: {maxWaitDuration: 1h}\n"
    job += "      workerPoolSpecs:\n        - {machineSpec: {machineType: n1-standard-4}, replicaCount: 1,\n"
    job += "           containerSpec: {imageUri: i}}\n"
    path = big_config(tmp_path, 20, extra=job)
    fast = load_desired([path], variables={})
    assert fast_always == [False]
    slow = by_builder(monkeypatch, [path], {})
    assert slow.warnings and fast.warnings == slow.warnings


def test_a_large_invalid_configuration_sends_nothing(tmp_path: Path, emulator_factory: Any) -> None:
    from cli_harness import Cli

    cli = Cli(tmp_path, emulator_factory())
    (tmp_path / "jobs").mkdir()
    count = (validate.FAST_MIN_BYTES // 300) + 200  # past the size the values tier reads
    for extra in ("  job-99999:\n    displayName: 7\n", "  job-00001:\n    displayName: twice\n"):
        path = big_config(tmp_path / "jobs", count, extra=extra)
        assert path.stat().st_size > validate.FAST_MIN_BYTES
        r = cli.run("plan", "jobs")
        assert r.code == 1 and "Traceback" not in r.err
        assert "jobs/jobs.yaml:" in r.err
        assert len(cli.emulator.request_log.records) == 0
