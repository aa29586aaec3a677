"""Refresh: read the live jobs planner manages, one labelled listing per (project, location).

Never one GET per job: each (project, location) is listed once with the identity-label
filter of DESIGN §4, pairs in parallel. Only jobs named in state but absent from every
listing (imported jobs, or jobs deleted out of band) are looked up one by one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from planner import apimodel
from planner.canonical import canonical_spec, spec_hash
from planner.errors import ApiError

# Large pages mean few round trips; a server that allows fewer simply returns fewer per page.
LIST_PAGE_SIZE = 1000
# What planning needs of a job whose spec it does not diff (LiveJob.partial): a listing with
# this read mask is a tenth of the bytes of a full one.
SUMMARY_READ_MASK = "name,state,labels,createTime,error"
# Up to this many partially listed jobs are completed with one GET each; more, by listing again.
COMPLETE_BY_GET_LIMIT = 100


class JobReader(Protocol):
    """The part of the API client refresh needs."""

    def list_jobs(
        self,
        project: str,
        location: str,
        *,
        filter: str | None = None,
        page_size: int = 100,
        read_mask: str | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def get_job(self, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class LiveJob:
    """A job as Vertex reports it, reduced to what planning needs.

    The canonical spec and its hash are computed on first use only: a no-change plan of
    10,000 planner-made jobs compares the `planner-spec` label instead (see `matches`).
    """

    name: str
    project: str
    location: str
    state: str
    labels: Mapping[str, str]
    resource: Mapping[str, Any] = field(repr=False)
    create_time: str = ""
    error_message: str = ""
    partial: bool = False  # listed with SUMMARY_READ_MASK: no spec

    @cached_property
    def spec(self) -> Mapping[str, Any]:
        if self.partial:
            raise RuntimeError(f"{self.name} was listed without its spec (a refresh bug)")
        return canonical_spec(self.resource)

    @cached_property
    def spec_hash(self) -> str:
        return spec_hash(self.spec)

    @property
    def spec_label(self) -> str | None:
        return self.labels.get(apimodel.LABEL_SPEC)

    def matches(self, hash_hex: str) -> bool:
        """Is this job's spec the canonical spec with this hash?

        A job cannot change after create, so the planner-spec label that planner set at create
        time still names its spec: equal labels settle it without canonicalising the job.
        Otherwise (no label, another tool's job, an older canonical form) compare for real.
        """
        if self.managed and self.spec_label == hash_hex[:16]:
            return True
        return self.spec_hash == hash_hex

    @property
    def fingerprint_hash(self) -> str:
        return self.spec_label if self.managed and self.spec_label else self.spec_hash

    @property
    def address(self) -> str | None:
        return self.labels.get(apimodel.LABEL_ADDRESS)

    @property
    def workspace(self) -> str | None:
        return self.labels.get(apimodel.LABEL_WORKSPACE)

    @property
    def managed(self) -> bool:
        return self.labels.get(apimodel.LABEL_MANAGED_BY) == apimodel.MANAGED_BY_VALUE

    @property
    def active(self) -> bool:
        return self.state in apimodel.ACTIVE_STATES

    @property
    def terminal(self) -> bool:
        return self.state in apimodel.TERMINAL_STATES


@dataclass(frozen=True)
class Live:
    """Every live job read, by resource name, and the (project, location) pairs listed."""

    jobs: Mapping[str, LiveJob]
    listed: tuple[tuple[str, str], ...] = ()
    missing: frozenset[str] = field(default_factory=frozenset)  # names looked up and found gone

    def by_address(self, workspace: str) -> dict[str, list[LiveJob]]:
        out: dict[str, list[LiveJob]] = {}
        for job in self.jobs.values():
            if job.managed and job.workspace == workspace and job.address:
                out.setdefault(job.address, []).append(job)
        for jobs in out.values():
            jobs.sort(key=lambda j: (j.create_time, j.name))
        return out


def live_job(resource: Mapping[str, Any], *, partial: bool = False) -> LiveJob:
    """Reduce an API CustomJob resource to a LiveJob (`partial`: read with SUMMARY_READ_MASK)."""
    name = str(resource.get("name", ""))
    parts = name.split("/")
    project = parts[1] if len(parts) > 3 else ""
    location = parts[3] if len(parts) > 3 else ""
    state = apimodel.enum_name(apimodel.JOB_STATES, resource.get("state", 0)) or "JOB_STATE_UNSPECIFIED"
    labels = resource.get("labels") or {}
    error = resource.get("error") or {}
    return LiveJob(
        name=name,
        project=project,
        location=location,
        state=state,
        resource=resource,
        labels={str(k): str(v) for k, v in labels.items()},
        create_time=str(resource.get("createTime", "")),
        error_message=str(error.get("message", "")) if isinstance(error, Mapping) else "",
        partial=partial,
    )


def managed_filter(workspace: str) -> str:
    return (
        f'labels.{apimodel.LABEL_MANAGED_BY}="{apimodel.MANAGED_BY_VALUE}" '
        f'AND labels.{apimodel.LABEL_WORKSPACE}="{workspace}"'
    )


def refresh(
    client: JobReader,
    pairs: Iterable[tuple[str, str]],
    workspace: str,
    *,
    known_names: Iterable[str] = (),
    include_unmanaged: bool = False,
    parallelism: int = 8,
    on_progress: Callable[[str], None] | None = None,
) -> Live:
    """List every (project, location) once, in parallel; then look up state jobs not seen."""
    with Refresher(
        client, workspace, include_unmanaged=include_unmanaged, parallelism=parallelism, on_progress=on_progress
    ) as refresher:
        refresher.start(pairs)
        return refresher.finish(known_names)


class Refresher:
    """A refresh that runs in the background while the caller does other work.

    `start` starts listing pairs (each pair once, however often it is named); `finish` waits
    for the listings and looks up the state's jobs that no listing returned. Leaving the
    `with` block without `finish` waits for listings already sent and drops their results.

    With `summary=True` the listings ask only for SUMMARY_READ_MASK (a no-change plan
    compares planner-spec labels, not specs), and `finish` reads in full the jobs its
    `needs_spec` says will be diffed: by GET when they are few, else by listing again.
    """

    def __init__(
        self,
        client: JobReader,
        workspace: str,
        *,
        include_unmanaged: bool = False,
        parallelism: int = 8,
        on_progress: Callable[[str], None] | None = None,
        summary: bool = False,
    ):
        self._client = client
        self._summary = summary
        self._query = None if include_unmanaged else managed_filter(workspace)
        self._on_progress = on_progress
        self._pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="refresh")
        self._listings: dict[tuple[str, str], Future[list[LiveJob]]] = {}

    def __enter__(self) -> Refresher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, pairs: Iterable[tuple[str, str]]) -> None:
        for pair in sorted(set(pairs) - self._listings.keys()):
            self._listings[pair] = self._pool.submit(self._list_pair, pair)

    def _list_pair(self, pair: tuple[str, str], summary: bool | None = None) -> list[LiveJob]:
        project, location = pair
        partial = self._summary if summary is None else summary
        mask = SUMMARY_READ_MASK if partial else None
        listing = self._client.list_jobs(
            project, location, filter=self._query, page_size=LIST_PAGE_SIZE, read_mask=mask
        )
        jobs = [live_job(r, partial=partial) for r in listing]
        if self._on_progress is not None:
            self._on_progress(f"listed {len(jobs)} jobs in {project}/{location}")
        return jobs

    def finish(self, known_names: Iterable[str] = (), needs_spec: Callable[[LiveJob], bool] | None = None) -> Live:
        found: dict[str, LiveJob] = {}
        pairs = sorted(self._listings)
        for pair in pairs:
            for job in self._listings[pair].result():
                found[job.name] = job
        unseen = sorted(set(known_names) - found.keys())
        missing: set[str] = set()
        for name, result in self._get_all(unseen).items():
            if result is None:
                missing.add(name)
            else:
                found[name] = result
        self._complete(found, needs_spec or (lambda _job: True))
        return Live(jobs=dict(sorted(found.items())), listed=tuple(pairs), missing=frozenset(missing))

    def _complete(self, found: dict[str, LiveJob], needs_spec: Callable[[LiveJob], bool]) -> None:
        """Replace the partial jobs that need a spec by full reads; drop those gone meanwhile."""
        wanted = sorted(name for name, job in found.items() if job.partial and needs_spec(job))
        if not wanted:
            return
        if len(wanted) <= COMPLETE_BY_GET_LIMIT:
            for name, result in self._get_all(wanted).items():
                if result is None:
                    del found[name]
                else:
                    found[name] = result
            return
        pairs = sorted({(found[name].project, found[name].location) for name in wanted})
        full: dict[str, LiveJob] = {}
        for jobs in self._pool.map(lambda pair: self._list_pair(pair, summary=False), pairs):
            full.update((job.name, job) for job in jobs)
        for name in wanted:
            job = full.get(name)
            if job is None:
                del found[name]
            else:
                found[name] = job

    def _get_all(self, names: list[str]) -> dict[str, LiveJob | None]:
        """Each named job by GET, in parallel; None for one that is gone (404)."""
        client = self._client
        return dict(zip(names, self._pool.map(lambda n: _get_or_none(client, n), names), strict=True))


def _get_or_none(client: JobReader, name: str) -> LiveJob | None:
    try:
        return live_job(client.get_job(name))
    except ApiError as err:
        if err.http_status == 404:
            return None
        raise


def fingerprint(entries: Iterable[tuple[str, ...]]) -> str:
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update("\x1f".join(entry).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()
