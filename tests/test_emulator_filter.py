"""The AIP-160 filter parser and evaluator, unit-level (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from planner.emulator.filter import FilterError, compile_filter, describe, parse_filter, parse_timestamp


def shape(text: str) -> str:
    return describe(parse_filter(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1 OR b=2 AND c=3", "((a=1 OR b=2) AND c=3)"),
        ("a=1 AND b=2 OR c=3", "(a=1 AND (b=2 OR c=3))"),
        ("a=1 OR b=2 OR c=3", "(a=1 OR b=2 OR c=3)"),
        ("(a=1 AND b=2) OR c=3", "((a=1 AND b=2) OR c=3)"),
        ("NOT a=1 AND b=2", "(NOT a=1 AND b=2)"),
        ("NOT (a=1 OR b=2)", "NOT (a=1 OR b=2)"),
        ("-a=1", "NOT a=1"),
        ("-(a=1 b=2)", "NOT (a=1 AND b=2)"),
        ("a=1 b=2", "(a=1 AND b=2)"),
        ("labels.managed-by=planner", "labels.managed-by=planner"),
        ("-labels.managed-by=planner", "NOT labels.managed-by=planner"),
        ('labels."odd key":*', "labels.odd key:*"),
        ("x=-1", "x=-1"),
        ('display_name:"my_job_*"', 'display_name:"my_job_*"'),
        ("create_time>=2021-05-18T00:00:00Z", "create_time>=2021-05-18T00:00:00Z"),
        ("a != 'q'", 'a!="q"'),
    ],
)
def test_parse_shapes(text: str, expected: str) -> None:
    assert shape(text) == expected


@pytest.mark.parametrize(
    "text",
    ["a=", "(a=1", "a=1)", "a", "a=1 AND", "OR a=1", '"unterminated', "- a=1", "a=1 AND AND b=2", "a.=1",
     "a==1", "a=1 OR", "()"],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text)


def job(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "displayName": "resnet-train",
        "state": "JOB_STATE_RUNNING",
        "labels": {"managed-by": "planner", "planner-workspace": "default", "team": "vision"},
        "_createTime": parse_timestamp("2026-01-02T03:04:05Z"),
        "_updateTime": parse_timestamp("2026-01-02T03:05:00Z"),
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("display_name=resnet-train", True),
        ('displayName="resnet-train"', True),
        ("display_name!=resnet-train", False),
        ('display_name:"resnet-*"', True),
        ('display_name:"*-train"', True),
        ('display_name:"res*ain"', True),
        ('display_name:"bert-*"', False),
        ("state=JOB_STATE_RUNNING", True),
        ("state!=JOB_STATE_RUNNING", False),
        ('state="JOB_STATE_SUCCEEDED" OR state=JOB_STATE_RUNNING', True),
        ("labels.managed-by=planner", True),
        ("labels.managed-by=planner AND labels.planner-workspace=default", True),
        ("labels.managed-by=planner AND labels.planner-workspace=prod", False),
        ("labels.team:*", True),
        ("labels.owner:*", False),
        ("-labels.owner:*", True),
        ("NOT labels.team:*", False),
        ("labels:team", True),
        ("labels.team!=vision", False),
        ("labels.owner!=bob", True),
        ('create_time>"2026-01-01T00:00:00Z"', True),
        ("createTime<2026-01-01T00:00:00Z", False),
        ("create_time>=2026-01-02T03:04:05Z", True),
        ("create_time<=2026-01-02T03:04:05Z", True),
        ("create_time=2026-01-02T03:04:05Z", True),
        ("create_time!=2026-01-02T03:04:05Z", False),
        ("create_time>2026-01-02T04:04:05+01:00", False),
        ("update_time>2026-01-02T03:04:30Z", True),
        # precedence: (false OR true) AND false → false; false OR (true AND false) would also be false,
        # so use a case that separates the two readings:
        ("state=JOB_STATE_FAILED OR labels.team=vision AND display_name=nope", False),
        ("(state=JOB_STATE_FAILED OR labels.team=vision) AND display_name=resnet-train", True),
        ("display_name=resnet-train AND state=JOB_STATE_FAILED OR labels.team=vision", True),
        ("NOT state=JOB_STATE_FAILED", True),
        ("-(state=JOB_STATE_FAILED OR labels.team=other)", True),
    ],
)
def test_evaluation(text: str, matches: bool) -> None:
    assert compile_filter(text)(job()) is matches


def test_or_binds_tighter_than_and_semantically() -> None:
    # a OR b AND c, with a true, b false, c false: AIP-160 reads (a OR b) AND c → false.
    # The SQL reading a OR (b AND c) would be true.
    predicate = compile_filter("labels.team=vision OR labels.team=x AND state=JOB_STATE_FAILED")
    assert predicate(job()) is False


@pytest.mark.parametrize(
    "text",
    [
        "color=red",  # unknown field
        "state=JOB_STATE_BOGUS",
        "state>JOB_STATE_RUNNING",
        "create_time>yesterday",
        "create_time:2026",
        "display_name<abc",
        "labels.a.b=c",
        "labels=x",
        "display_name.x=y",
    ],
)
def test_semantic_errors(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text)


def test_fractional_timestamps() -> None:
    assert parse_timestamp("2026-01-02T03:04:05.250Z") == pytest.approx(parse_timestamp("2026-01-02T03:04:05Z") + 0.25)
