"""Mangled desired-state files: load_desired either succeeds or raises ConfigError, never anything else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.config.validate import load_desired
from planner.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SEEDS = [
    REPO / "examples" / "quickstart" / "jobs.yaml",
    REPO / "examples" / "multi-env" / "jobs" / "training.yaml",
    REPO / "examples" / "multi-env" / "jobs" / "evaluation.yaml",
]
VARIABLES = {"project": "p", "env": "dev", "image_tag": "1", "gpus": "1"}


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)).read_bytes())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        lines = bytes(data).split(b"\n")
        kind = draw(st.sampled_from(["flip", "byte", "delete", "duplicate", "indent", "swap"]))
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        if kind == "flip" and data:
            at = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
            continue
        if kind == "byte" and data:
            at = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[at] = draw(st.sampled_from(b":-[]{}&*!|>'\"#%@`\t\x00\xff,?"))
            continue
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "indent":
            lines[i] = b" " * draw(st.integers(min_value=0, max_value=12)) + lines[i].lstrip(b" ")
        elif kind == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        data = bytearray(b"\n".join(lines))
    return bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mangled())
def test_mangled_files_fail_only_with_config_errors(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.yaml"
        path.write_bytes(text)
        try:
            desired = load_desired([path], variables=VARIABLES)
        except ConfigError as err:
            assert err.diagnostics
            for d in err.diagnostics:
                assert d.location is not None and d.location.line >= 1 and d.location.column >= 1
                assert str(d)
        else:
            assert all(job.body["displayName"] for job in desired.jobs.values())
