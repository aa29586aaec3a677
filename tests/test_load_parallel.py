"""Loading a large configuration in two processes: the file split, and the same result as one process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import validate
from planner.errors import ConfigError
from planner.load import Document, parse_document, split_jobs_text
from planner.validate import load_desired

HEAD = (
    "# a comment before everything\n"
    "version: 1\n"
    "project: demo-project\n"
    "location: us-central1\n"
    "defaults:\n"
    "  labels: {team: ml}\n"
    "jobs:\n"
)

# Job bodies with the multi-line shapes a cut must never fall inside of unnoticed.
SHAPES = [
    "    displayName: plain-{i}\n",
    "    displayName: 'quoted {i}'\n    labels:\n      k: v{i}\n",
    '    displayName: "spans\n      two lines {i}"\n',
    "    displayName: folded-{i}\n    jobSpec:\n      workerPoolSpecs:\n        - containerSpec:\n"
    "            imageUri: img\n            args: [a,\n  b, c]\n",
    "    displayName: >-\n      block scalar\n      {i}\n",
    "    displayName: d{i}\n    labels: {{a: '1',\n  b: '2'}}\n",
    "  # a comment at the jobs' indentation\n    displayName: c{i}\n",
    "    displayName: 'x{i}'  # trailing comment\n\n\n",
    '    displayName: "${{var.name:-n}}-{i}"\n',
]


SPEC = (
    "    displayName: d\n"
    "    jobSpec: {workerPoolSpecs: [{machineSpec: {machineType: n1}, replicaCount: 1, containerSpec: {imageUri: i}}]}"
    "\n"
)


def config(shapes: list[int]) -> str:
    entries = [f"  job-{i:04d}:\n" + SHAPES[shape].format(i=i) for i, shape in enumerate(shapes)]
    return HEAD + "".join(entries)


def parse(text: str) -> Document | None:
    doc, problems = parse_document(text, "f.yaml")
    return doc if not problems else None


def merged(parts: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]] | None:
    """(jobs, their spans, the other top-level values of each part), or None if a part fails."""
    jobs: dict[str, Any] = {}
    spans: dict[str, Any] = {}
    heads = []
    for part in parts:
        doc = parse(part)
        if doc is None:
            return None
        jobs.update(doc.data["jobs"])
        children = doc.span[4]
        assert isinstance(children, dict)
        spans.update(children["jobs"][4])
        heads.append({k: v for k, v in doc.data.items() if k != "jobs"})
    return jobs, spans, heads


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=st.lists(st.integers(min_value=0, max_value=len(SHAPES) - 1), min_size=2, max_size=14))
def test_parts_load_to_the_whole_or_fail(shapes: list[int]) -> None:
    text = config(shapes)
    whole = parse(text)
    for count in range(2, len(shapes) + 1):
        parts = split_jobs_text(text, count)
        if parts is None:
            continue
        result = merged(parts)
        if result is None:
            continue  # a cut inside a multi-line value: the caller loads the file whole
        jobs, spans, heads = result
        assert whole is not None, "parts loaded although the whole file does not"
        whole_children = whole.span[4]
        assert isinstance(whole_children, dict)
        assert jobs == whole.data["jobs"]
        assert list(jobs) == list(whole.data["jobs"])
        assert spans == whole_children["jobs"][4]
        assert all(head == {k: v for k, v in whole.data.items() if k != "jobs"} for head in heads)


def test_every_cut_keeps_lines_and_columns() -> None:
    text = config([0, 1, 2, 4, 6, 7, 0, 1])
    parts = split_jobs_text(text, 2)
    assert parts is not None and len(parts) == 2
    assert all(p.count("\n") <= text.count("\n") for p in parts)
    result = merged(parts)
    assert result is not None
    whole = parse(text)
    assert whole is not None and result[0] == whole.data["jobs"]


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "  a:\n    displayName: x\n  b:\n\tdisplayName: y\n",  # a tab
        (HEAD + "  a:\n    displayName: x\n  b:\n    displayName: y\n").replace("\n", "\r\n"),
        HEAD + "  a:\n    displayName: x\n  b:\n    displayName: y\ndefaults: {}\n",  # jobs: not last
        HEAD + "  a:\n    displayName: x\n---\nb: 1\n",  # a second document
        "version: 1\njobs: {a: {displayName: x}, b: {displayName: y}}\n",  # flow style
        HEAD + "  - a\n  - b\n",  # a sequence
        HEAD + "  ? a\n  : {displayName: x}\n  b:\n    displayName: y\n",  # complex keys
        "jobs:\n  a: {}\n  b: {}\njobs:\n  c: {}\n",  # jobs: twice
        HEAD + "  a:\n    displayName: x\n",  # one job only
        "version: 1\n",  # no jobs
    ],
)
def test_layouts_that_are_not_split(text: str) -> None:
    assert split_jobs_text(text, 2) is None


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
def parallel_always(monkeypatch: pytest.MonkeyPatch) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("parallel loading needs two usable CPUs")
    monkeypatch.setattr(validate, "PARALLEL_MIN_BYTES", 0)


def serial(monkeypatch: pytest.MonkeyPatch, paths: list[Path], variables: dict[str, str]) -> Any:
    with monkeypatch.context() as m:
        m.setattr(validate, "PARALLEL_MIN_BYTES", 1 << 62)
        return load_desired(paths, variables=variables)


def test_two_processes_give_the_one_process_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None
) -> None:
    path = big_config(tmp_path, 400)
    calls: list[int] = []
    real = validate._in_two_processes

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(validate, "_in_two_processes", counted)
    parallel = load_desired([path], variables={"v": "value"})
    assert calls == [1]
    one = serial(monkeypatch, [path], {"v": "value"})
    assert list(parallel.jobs) == list(one.jobs)
    assert parallel.jobs == one.jobs
    assert parallel.config_hash == one.config_hash and parallel.files == one.files
    for address in ("job-00000", "job-00399"):
        assert parallel.jobs[address].source == one.jobs[address].source
        assert dict(parallel.jobs[address].positions) == dict(one.jobs[address].positions)


def test_files_are_units_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None) -> None:
    first = big_config(tmp_path, 50, name="a.yaml")
    second = tmp_path / "b.yaml"
    second.write_text(first.read_text().replace("job-", "other-"))
    parallel = load_desired([tmp_path], variables={})
    assert parallel.jobs == serial(monkeypatch, [tmp_path], {}).jobs
    assert len(parallel.jobs) == 100


@pytest.mark.parametrize(
    "extra",
    [
        "  job-99999:\n    displayName: 7\n",  # wrong type, in the second half
        "  job-00001:\n    displayName: twice\n",  # a job defined in both halves
        "  job-99998:\n    displayName: '${var.missing}'\n",  # undefined variable
        "  job-99997:\n    displayName: [unclosed\n",  # YAML syntax error
    ],
)
def test_problems_are_reported_exactly_as_by_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None, extra: str
) -> None:
    path = big_config(tmp_path, 300, extra=extra)
    with pytest.raises(ConfigError) as parallel:
        load_desired([path], variables={})
    with pytest.raises(ConfigError) as one, monkeypatch.context() as m:
        m.setattr(validate, "PARALLEL_MIN_BYTES", 1 << 62)
        load_desired([path], variables={})
    assert [str(d) for d in parallel.value.diagnostics] == [str(d) for d in one.value.diagnostics]


def break_one_side(monkeypatch: pytest.MonkeyPatch, *, in_child: bool, fail: Any) -> None:
    """Make validating a half call `fail` in the forked child (or only here)."""
    parent = os.getpid()
    real = validate._validate_units

    def broken(units: Any, variables: Any) -> Any:
        if (os.getpid() != parent) == in_child:
            fail()
        return real(units, variables)

    monkeypatch.setattr(validate, "_validate_units", broken)


def test_a_failing_child_falls_back_to_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None
) -> None:
    path = big_config(tmp_path, 200)
    break_one_side(monkeypatch, in_child=True, fail=lambda: os._exit(3))
    desired = load_desired([path], variables={})
    assert len(desired.jobs) == 200
    assert desired.jobs == serial(monkeypatch, [path], {}).jobs


def test_an_error_here_kills_and_reaps_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None
) -> None:
    path = big_config(tmp_path, 200)
    children: list[int] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    break_one_side(monkeypatch, in_child=False, fail=interrupt)
    real_fork = os.fork

    def recording_fork() -> int:
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording_fork)
    with pytest.raises(KeyboardInterrupt):
        load_desired([path], variables={})
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # already reaped


def test_on_valid_is_told_the_locations_once_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = tmp_path / "small.yaml"
    spec = SPEC
    small.write_text(HEAD + "  a:\n" + spec + "  b:\n    location: europe-west4\n" + spec)
    seen: list[set[tuple[str, str]]] = []
    load_desired([small], variables={}, on_valid=seen.append)
    assert seen == [{("demo-project", "us-central1"), ("demo-project", "europe-west4")}]
    small.write_text(HEAD + "  a:\n    labels: 7\n" + spec)
    seen.clear()
    with pytest.raises(ConfigError):
        load_desired([small], variables={}, on_valid=seen.append)
    assert seen == []


def test_on_valid_in_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None) -> None:
    spec = SPEC
    path = big_config(tmp_path, 300, extra="  job-99999:\n    location: asia-east1\n" + spec)
    seen: list[set[tuple[str, str]]] = []
    desired = load_desired([path], variables={}, on_valid=seen.append)
    assert seen[0] == {("demo-project", "us-central1"), ("demo-project", "asia-east1")}
    assert len(desired.jobs) == 301
    for bad in ("  job-99998:\n    displayName: 7\n", "  job-00001:\n    displayName: twice\n"):
        seen.clear()
        with pytest.raises(ConfigError):
            load_desired([big_config(tmp_path, 300, extra=bad)], variables={}, on_valid=seen.append)
        assert seen == []


def test_a_large_invalid_configuration_sends_nothing(tmp_path: Path, emulator_factory: Any) -> None:
    from cli_harness import Cli

    cli = Cli(tmp_path, emulator_factory())
    (tmp_path / "jobs").mkdir()
    count = (validate.PARALLEL_MIN_BYTES // 300) + 200  # past the size loaded in two processes
    for extra in ("  job-99999:\n    displayName: 7\n", "  job-00001:\n    displayName: twice\n"):
        path = big_config(tmp_path / "jobs", count, extra=extra)
        assert path.stat().st_size > validate.PARALLEL_MIN_BYTES
        r = cli.run("plan", "jobs")
        assert r.code == 1 and "Traceback" not in r.err
        assert "jobs/jobs.yaml:" in r.err
        assert len(cli.emulator.request_log.records) == 0


@pytest.mark.parametrize("valid", [True, False])
def test_work_alongside_runs_once_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_always: None, valid: bool
) -> None:
    extra = "" if valid else "  job-99999:\n    displayName: 7\n"
    calls: list[int] = []
    for path in (tmp_path / "small.yaml", big_config(tmp_path, 300, extra=extra)):
        if path.name == "small.yaml":
            path.write_text(HEAD + "  a:\n" + SPEC + extra)
        calls.clear()
        if valid:
            load_desired([path], variables={}, alongside=lambda: calls.append(os.getpid()), alongside_cost=10_000)
        else:
            with pytest.raises(ConfigError):
                load_desired([path], variables={}, alongside=lambda: calls.append(os.getpid()))
        assert calls == [os.getpid()]


def test_work_alongside_makes_this_share_smaller(tmp_path: Path) -> None:
    text = big_config(tmp_path, 400).read_text()
    even = split_jobs_text(text, 2)
    lighter = split_jobs_text(text, 2, first_share=0.3)
    assert even is not None and lighter is not None
    jobs = [len(parse(part).data["jobs"]) for part in lighter]  # type: ignore[union-attr]
    assert sum(jobs) == 400 and 100 < jobs[0] < 140
    assert len(lighter[0]) < len(even[0])
