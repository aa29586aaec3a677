"""The GCS state store (`--state gs://BUCKET/PREFIX`), on the Cloud Storage JSON API through httpx.

Objects, for workspace W under PREFIX:

- `PREFIX/W.json` — the state. Every write is conditional on the generation this run
  last saw (`ifGenerationMatch`, 0 when none existed), so no update is lost even when a
  lock was broken: a mismatch (412) is "state was changed by someone else".
- `PREFIX/W.json.backup` — the previous generation, copied server-side (rewrite, pinned to
  that source generation) before each overwrite; bucket versioning is not required.
- `PREFIX/W.lock` — the lock, as in Terraform's GCS backend: created with
  `ifGenerationMatch=0`, its generation is the lock ID, its body the holder's LockInfo;
  unlock and force-unlock delete it with `ifGenerationMatch=<ID>`.
- `PREFIX/W.journal/<lineage>/<serial>/<seq>.json` — the journal. Objects cannot be
  appended to, and rewriting the whole state after each step would make an N-job apply
  upload N states of size O(N) — quadratic, and GCS also limits each object name to about
  one update per second. So each step result is one small object (one journal line, the
  same format as the local journal), created with `ifGenerationMatch=0` so two writers can
  never overwrite each other's entries. The name carries the lineage and serial of the
  state it applies on top of: `read()` lists only that folder and folds it in order;
  `write()` deletes every journal object after the new state is stored (batch requests of
  100 deletes), and any left by a crash are stale by name and ignored. Append is one
  request, read and write are linear in the number of entries.

Plain http is only used for a loopback `storage_host` (an emulator), with anonymous
credentials. 429/5xx and connection errors are retried with a short backoff; a retried
conditional request that answers 412 is checked against what was sent, since the first
attempt may have succeeded with its answer lost.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from planner import __version__
from planner.errors import ApiError, StateError, UsageError
from planner.state.fileformat import journal_line, read_journal_line, read_state, write_state
from planner.state.lock import LockInfo, locked_error
from planner.state.model import STATE_FORMAT_VERSION, JournalEntry, State, apply_entries, check_replaceable

DEFAULT_BASE_URL = "https://storage.googleapis.com"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_BATCH_LIMIT = 100


class _PreconditionFailed(Exception):
    """A conditional request answered 412; `attempts` says whether it was a retry."""

    def __init__(self, attempts: int):
        super().__init__("precondition failed")
        self.attempts = attempts


def parse_gs_url(spec: str) -> tuple[str, str]:
    """`gs://BUCKET/PREFIX` → (bucket, prefix without surrounding slashes); UsageError if malformed."""
    if not spec.startswith("gs://"):
        raise UsageError(f"not a gs:// state location: {spec}")
    rest = spec[len("gs://") :]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_NAME.match(bucket):
        raise UsageError(f"invalid bucket name {bucket!r} in state location {spec}")
    prefix = prefix.strip("/")
    if "//" in prefix:
        raise UsageError(f"invalid prefix in state location {spec}: empty path segment")
    return bucket, prefix


def storage_base_url(storage_host: str | None) -> tuple[str, bool]:
    """The JSON API base URL and whether it is an emulator (anonymous credentials).

    `storage_host` follows STORAGE_EMULATOR_HOST: `http://127.0.0.1:9023` or `127.0.0.1:9023`.
    Plain http is refused unless the host is loopback.
    """
    if not storage_host:
        return DEFAULT_BASE_URL, False
    url = storage_host if "://" in storage_host else f"http://{storage_host}"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"invalid storage host {storage_host!r}: expected http://HOST:PORT")
    if parts.scheme == "http" and not _is_loopback(host):
        raise UsageError(
            f"refusing plain http to storage host {host}: only loopback emulators may use http "
            "(use https, or an emulator on 127.0.0.1)"
        )
    return url.rstrip("/"), True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _error_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:200] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return resp.reason_phrase


# How often a lock that was released between a failed attempt and the look at its holder is
# tried again at once (even with a zero timeout) before the holder is reported unknown.
_VANISHED_RETRIES = 3


class GcsStore:
    """State in a GCS bucket; see the module docstring for the objects and their protocol."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        workspace: str,
        *,
        http: httpx.Client,
        auth: httpx.Auth | None = None,
        base_url: str = DEFAULT_BASE_URL,
        anonymous: bool = False,
        owns_http: bool = False,
        max_attempts: int = 5,
        backoff: float = 0.1,
        poll_interval: float = 0.1,
        delete_batch_size: int = _BATCH_LIMIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.workspace = workspace
        self.state_object = self._object(f"{workspace}.json")
        self.backup_object = self._object(f"{workspace}.json.backup")
        self.lock_object = self._object(f"{workspace}.lock")
        self.journal_folder = self._object(f"{workspace}.journal/")
        self.description = f"gs://{bucket}/{self.state_object}"
        self._http = http
        self._owns_http = owns_http
        # An emulator gets no credentials at all (not even the client's); otherwise the given
        # auth, or whatever the injected client carries.
        self._auth = None if anonymous else auth
        self._auth_from_client = not anonymous and auth is None
        self._base_url = base_url.rstrip("/")
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._poll_interval = poll_interval
        self._batch_size = max(1, min(delete_batch_size, _BATCH_LIMIT))
        self._sleep = sleep
        self._mutex = threading.RLock()
        self._bucket_checked = False
        self._generation: int | None = None  # state object generation last seen (0: none existed)
        self._base: tuple[str, int] | None = None  # (lineage, serial) at that generation
        self._next_seq = 0

    def _object(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> GcsStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- HTTP -----------------------------------------------------------------------------------

    def _object_path(self, name: str) -> str:
        return f"/storage/v1/b/{quote(self.bucket, safe='')}/o/{quote(name, safe='')}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send with retries on 429/5xx and connection errors; returns (response, attempts)."""
        url = self._base_url + path
        attempt = 0
        while True:
            attempt += 1
            try:
                if self._auth_from_client:
                    resp = self._http.request(method, url, params=params, content=content, headers=headers)
                else:
                    resp = self._http.request(
                        method, url, params=params, content=content, headers=headers, auth=self._auth
                    )
            except httpx.TransportError as err:
                if attempt >= self._max_attempts:
                    raise ApiError(
                        f"cannot reach Cloud Storage: {err}", method=method, url=url, attempts=attempt
                    ) from err
                self._sleep(self._delay(attempt, None))
                continue
            if resp.status_code in _RETRY_STATUSES and attempt < self._max_attempts:
                self._sleep(self._delay(attempt, resp.headers.get("retry-after")))
                continue
            return resp, attempt

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), 10.0)
            except ValueError:
                pass
        return float(min(self._backoff * 2 ** (attempt - 1), 2.0))

    def _raise(self, resp: httpx.Response, attempts: int, what: str) -> None:
        """Raise the StateError/ApiError for a failed request about `what`."""
        status = resp.status_code
        if status == 404:
            self._check_bucket()
        message = _error_message(resp)
        method, url = resp.request.method, str(resp.request.url.copy_with(query=None))
        if status in (401, 403):
            raise ApiError(
                f"permission denied {what} in bucket {self.bucket}: {message}",
                method=method,
                url=url,
                http_status=status,
                attempts=attempts,
            )
        raise ApiError(f"{what} failed: {message}", method=method, url=url, http_status=status, attempts=attempts)

    def _check_bucket(self) -> None:
        if self._bucket_checked:
            return
        resp, attempts = self._request("GET", f"/storage/v1/b/{quote(self.bucket, safe='')}")
        if resp.status_code == 404:
            raise StateError(f"bucket {self.bucket} does not exist (state {self.description})")
        if resp.status_code == 200:
            self._bucket_checked = True
            return
        if resp.status_code in (401, 403):
            # Object permissions without bucket metadata permission are normal; assume it exists.
            return
        raise ApiError(
            f"cannot look up bucket {self.bucket}: {_error_message(resp)}",
            method="GET",
            url=str(resp.request.url),
            http_status=resp.status_code,
            attempts=attempts,
        )

    def _get_meta(self, name: str) -> dict[str, Any] | None:
        resp, attempts = self._request("GET", self._object_path(name))
        if resp.status_code == 404:
            self._check_bucket()
            return None
        if resp.status_code != 200:
            self._raise(resp, attempts, f"reading gs://{self.bucket}/{name}")
        meta = resp.json()
        if not isinstance(meta, dict) or "generation" not in meta:
            raise ApiError(f"unexpected metadata for gs://{self.bucket}/{name}", url=str(resp.request.url))
        return meta

    def _get_media(self, name: str, generation: int | None = None) -> bytes | None:
        params: dict[str, str | int] = {"alt": "media"}
        if generation is not None:
            params["generation"] = generation
        resp, attempts = self._request("GET", self._object_path(name), params=params)
        if resp.status_code == 404:
            self._check_bucket()
            return None
        if resp.status_code != 200:
            self._raise(resp, attempts, f"reading gs://{self.bucket}/{name}")
        return resp.content

    def _upload(self, name: str, data: bytes, if_generation_match: int) -> int:
        """Create/replace an object if its generation is `if_generation_match`; returns the new generation."""
        boundary = f"planner-{uuid.uuid4().hex}"
        meta = json.dumps({"name": name, "contentType": "application/json"})
        body = (
            (
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n"
                f"--{boundary}\r\nContent-Type: application/json\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        resp, attempts = self._request(
            "POST",
            f"/upload/storage/v1/b/{quote(self.bucket, safe='')}/o",
            params={"uploadType": "multipart", "name": name, "ifGenerationMatch": if_generation_match},
            content=body,
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        if resp.status_code == 412:
            if attempts > 1:
                # The first attempt may have succeeded with its answer lost: is it our content?
                current = self._get_meta(name)
                if current is not None and current.get("md5Hash") == _md5_b64(data):
                    return int(current["generation"])
            raise _PreconditionFailed(attempts)
        if resp.status_code != 200:
            self._raise(resp, attempts, f"writing gs://{self.bucket}/{name}")
        return int(resp.json()["generation"])

    def _delete(self, name: str, if_generation_match: int | None) -> bool:
        """Delete an object (conditionally); False if it did not exist."""
        params: dict[str, str | int] = {}
        if if_generation_match is not None:
            params["ifGenerationMatch"] = if_generation_match
        resp, attempts = self._request("DELETE", self._object_path(name), params=params)
        if resp.status_code in (200, 204):
            return True
        if resp.status_code == 404:
            self._check_bucket()
            return attempts > 1  # a retried delete whose first attempt succeeded
        if resp.status_code == 412:
            raise _PreconditionFailed(attempts)
        self._raise(resp, attempts, f"deleting gs://{self.bucket}/{name}")
        return False

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, str | int] = {"prefix": prefix, "fields": "items(name,generation),nextPageToken"}
            if token:
                params["pageToken"] = token
            resp, attempts = self._request("GET", f"/storage/v1/b/{quote(self.bucket, safe='')}/o", params=params)
            if resp.status_code == 404:
                self._check_bucket()
            if resp.status_code != 200:
                self._raise(resp, attempts, f"listing gs://{self.bucket}/{prefix}")
            page = resp.json()
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return items

    def _copy(self, source: str, source_generation: int, dest: str) -> None:
        """Server-side copy of one generation of `source` to `dest` (rewrite, so any size works)."""
        path = f"{self._object_path(source)}/rewriteTo/b/{quote(self.bucket, safe='')}/o/{quote(dest, safe='')}"
        token: str | None = None
        while True:
            params: dict[str, str | int] = {"sourceGeneration": source_generation}
            if token:
                params["rewriteToken"] = token
            resp, attempts = self._request("POST", path, params=params)
            if resp.status_code == 404:
                raise StateError(
                    f"state {self.description} was changed by someone else while it was being backed up",
                    hint="run plan again to start from the current state",
                )
            if resp.status_code != 200:
                self._raise(resp, attempts, f"backing up {self.description}")
            result = resp.json()
            if result.get("done", True):
                return
            token = result.get("rewriteToken")

    def _delete_many(self, names: Iterable[str]) -> None:
        """Best-effort deletion in batch requests of up to 100; failures leave stale, ignored objects."""
        pending = list(names)
        for start in range(0, len(pending), self._batch_size):
            chunk = pending[start : start + self._batch_size]
            if len(chunk) == 1:
                self._delete(chunk[0], None)
                continue
            boundary = f"planner-batch-{uuid.uuid4().hex}"
            parts = []
            for i, name in enumerate(chunk):
                parts.append(
                    f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{i + 1}>\r\n\r\n"
                    f"DELETE {self._object_path(name)} HTTP/1.1\r\n\r\n"
                )
            body = ("".join(parts) + f"--{boundary}--\r\n").encode()
            resp, attempts = self._request(
                "POST",
                "/batch/storage/v1",
                content=body,
                headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
            )
            if resp.status_code != 200:
                self._raise(resp, attempts, "deleting old journal entries")

    # --- state ------------------------------------------------------------------------------------

    def _journal_prefix(self, lineage: str, serial: int) -> str:
        return f"{self.journal_folder}{lineage}/{serial:012d}/"

    def _load(self) -> State | None:
        """Read the stored state (without the journal) and remember its generation."""
        for _ in range(self._max_attempts):
            meta = self._get_meta(self.state_object)
            if meta is None:
                self._generation, self._base = 0, None
                return None
            generation = int(meta["generation"])
            raw = self._get_media(self.state_object, generation)
            if raw is None:  # replaced between the two requests: read again
                continue
            state = read_state(raw, self.description)
            self._generation, self._base = generation, (state.lineage, state.serial)
            return state
        raise StateError(f"state {self.description} keeps changing while being read; is another run writing it?")

    def read(self) -> State | None:
        with self._mutex:
            state = self._load()
            if state is None:
                self._next_seq = 0
                return None
            prefix = self._journal_prefix(state.lineage, state.serial)
            items = sorted(self._list(prefix), key=lambda item: str(item["name"]))
            entries: list[JournalEntry] = []
            for item in items:
                name = str(item["name"])
                raw = self._get_media(name)
                if raw is None:
                    continue
                lineage, serial, entry = read_journal_line(raw.strip(), f"gs://{self.bucket}/{name}")
                if (lineage, serial) == (state.lineage, state.serial):
                    entries.append(entry)
            self._next_seq = self._seq_after(items)
            return apply_entries(state, entries)

    @staticmethod
    def _seq_after(items: list[dict[str, Any]]) -> int:
        highest = -1
        for item in items:
            stem = str(item["name"]).rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                highest = max(highest, int(stem))
        return highest + 1

    def write(self, state: State) -> State:
        with self._mutex:
            if self._generation is None:
                self._load()
            generation = self._generation or 0
            if self._base is not None:
                lineage, serial = self._base
                check_replaceable(self.description, lineage, serial, state)
            new = replace(state, serial=state.serial + 1, version=STATE_FORMAT_VERSION, planner_version=__version__)
            data = write_state(new)
            if generation:
                self._copy(self.state_object, generation, self.backup_object)
            try:
                new_generation = self._upload(self.state_object, data, generation)
            except _PreconditionFailed:
                raise StateError(
                    f"state {self.description} was changed by someone else since this run read it "
                    f"(expected generation {generation}); refusing to overwrite it",
                    hint="run plan again to start from the current state",
                ) from None
            self._generation, self._base, self._next_seq = new_generation, (new.lineage, new.serial), 0
            try:
                stale = [str(item["name"]) for item in self._list(self.journal_folder)]
                self._delete_many(stale)
            except ApiError:
                pass  # stale journal objects are ignored by name; removing them is tidiness
            return new

    def append(self, *entries: JournalEntry) -> None:
        """One journal object per record, uploaded in order; a failure leaves the earlier ones recorded."""
        for entry in entries:
            self._append_one(entry)

    def _append_one(self, entry: JournalEntry) -> None:
        with self._mutex:
            if self._generation is None:
                self._load()
                if self._base is not None:
                    self._next_seq = self._seq_after(self._list(self._journal_prefix(*self._base)))
            if self._base is None:
                raise StateError(
                    f"cannot journal a step for {self.description}: no state has been written yet "
                    "(write the initial state before appending)"
                )
            lineage, serial = self._base
            name = f"{self._journal_prefix(lineage, serial)}{self._next_seq:08d}.json"
            try:
                self._upload(name, journal_line(entry, lineage=lineage, serial=serial), 0)
            except _PreconditionFailed:
                raise StateError(
                    f"journal entry gs://{self.bucket}/{name} already exists: another run is writing "
                    f"state {self.description} (was its lock broken?)"
                ) from None
            self._next_seq += 1

    # --- locking ------------------------------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float) -> str:
        # In the object body, `id` is a nonce that recognises our own lock after a lost answer;
        # the lock ID reported to users is the object's generation.
        nonce = str(uuid.uuid4())
        body_info = info.with_id(nonce)
        if not body_info.path:
            body_info = replace(body_info, path=self.description)
        data = body_info.to_bytes()
        started = time.monotonic()
        delay = self._poll_interval
        vanished = 0
        while True:
            try:
                return str(self._upload(self.lock_object, data, 0))
            except _PreconditionFailed:
                pass
            holder = self._read_lock()
            if holder is not None and holder[1].id == nonce:
                return str(holder[0])  # our own first attempt succeeded
            if holder is None and vanished < _VANISHED_RETRIES:
                vanished += 1
                continue  # released between our attempt and the look: the lock is free, try again
            waited = time.monotonic() - started
            if waited >= timeout:
                raise locked_error(self.description, holder[1].with_id(str(holder[0])) if holder else None, waited)
            time.sleep(min(delay, max(timeout - waited, 0.0)))
            delay = min(delay * 2, 1.0)

    def _read_lock(self) -> tuple[int, LockInfo] | None:
        """(generation, holder info as stored) of the lock object, or None if there is no lock."""
        meta = self._get_meta(self.lock_object)
        if meta is None:
            return None
        generation = int(meta["generation"])
        raw = self._get_media(self.lock_object, generation)
        if raw is None:
            return None
        source = f"gs://{self.bucket}/{self.lock_object}"
        try:
            return generation, LockInfo.from_bytes(raw, source)
        except StateError:
            return generation, LockInfo("", "", "", "", 0, "", "", self.description)

    def lock_info(self) -> LockInfo | None:
        with self._mutex:
            found = self._read_lock()
        return None if found is None else found[1].with_id(str(found[0]))

    def _delete_lock(self, lock_id: str, verb: str) -> None:
        if not lock_id.isdigit():
            raise StateError(
                f"cannot {verb} state {self.description}: lock ID {lock_id!r} is not a lock object "
                "generation (a number)"
            )
        with self._mutex:
            try:
                deleted = self._delete(self.lock_object, int(lock_id))
            except _PreconditionFailed:
                current = self.lock_info()
                if current is None:
                    raise StateError(f"cannot {verb} state {self.description}: it is not locked") from None
                raise StateError(
                    f"cannot {verb} state {self.description}: lock ID {lock_id} does not match "
                    f"the current lock ({current.describe()})"
                ) from None
            if not deleted:
                raise StateError(
                    f"cannot {verb} state {self.description}: it is not locked"
                    + (" (was the lock force-unlocked?)" if verb == "unlock" else "")
                )

    def unlock(self, lock_id: str) -> None:
        self._delete_lock(lock_id, "unlock")

    def force_unlock(self, lock_id: str) -> None:
        self._delete_lock(lock_id, "force-unlock")
