"""The emulator's data file: loading it into the store's `Index`, appending each mutation,
compacting, and sharing it between processes; what the records mean is `store`'s business.

The data file is an append-only JSON-lines log. Its first line is a
snapshot of every job and operation; each mutation appends one line, written with a single
`os.write` to an O_APPEND descriptor (so a killed process loses nothing the OS has seen) and
fsync'd at most every `fsync_interval` seconds and on close. When the log holds more
records than live jobs (and at least 2,000), it is compacted: a fresh snapshot is written to
a temporary file, fsync'd and renamed over the log, so 10,000 creates cost a few
amortised rewrites, not 10,000. Several processes may share one file: every operation takes
an fcntl lock on `<file>.lock` and first applies whatever other processes appended since
(a rename by another process's compaction is noticed by inode and triggers a full reload).
A torn last line (a crash mid-write) is dropped on load. Environment values are sealed at
rest (`sealed`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from planner.emulator import sealed
from planner.errors import PlannerError

if TYPE_CHECKING:
    from planner.emulator.store import Index

_COMPACT_MIN_RECORDS: Final = 2000


class EmulatorDataError(PlannerError):
    """The emulator's data file cannot be read (corrupt, or removed under a running emulator)."""


class DataLog:
    """The append-only, compacting, multi-process-safe data file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval: float, clock: Callable[[], float]):
        self.path = os.path.abspath(os.fspath(path))
        self._fsync_interval = fsync_interval
        self._clock = clock
        self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._key: bytes | None = None  # env values are sealed at rest (emulator.sealed)
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._records = 0
        self._last_fsync = 0.0
        self._dirty = False

    @contextlib.contextmanager
    def locked(self, index: Index, *, exclusive: bool) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            self._catch_up(index)
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sealing_key(self) -> bytes:
        """The key of `<file>.key`, made on first need; always called under the file lock, so
        processes sharing the data file share one key."""
        if self._key is None:
            self._key = sealed.load_key(self.path + ".key")
        return self._key

    def _catch_up(self, index: Index) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._inode is not None:
                raise EmulatorDataError(f"the emulator data file {self.path} disappeared") from None
            return
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._reload(index)
        elif st.st_size > self._offset:
            self._read_from(index, self._offset)

    def _reload(self, index: Index) -> None:
        index.apply({"t": "snapshot"})
        self._records = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._read_from(index, 0)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._inode = os.fstat(self._fd).st_ino

    def _read_from(self, index: Index, offset: int) -> None:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a torn last line (crash mid-write) is ignored
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                record = sealed.unseal(self._sealing_key, json.loads(line))
            except json.JSONDecodeError as exc:
                raise EmulatorDataError(
                    f"corrupt emulator data file {self.path}: {exc}",
                    hint="move the file aside to start with no jobs",
                ) from None
            index.apply(record)
            self._records += 1
        self._offset = offset + end

    def open(self, index: Index) -> None:
        """Load the file (creating it with an empty snapshot if absent) and drop a torn tail."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            if not os.path.exists(self.path):
                self._write_snapshot(index)
            self._reload(index)
            if os.path.getsize(self.path) > self._offset:
                os.truncate(self.path, self._offset)
            if self._records > max(_COMPACT_MIN_RECORDS, 2 * (len(index.jobs) + len(index.ops))):
                self.compact(index)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, index: Index, record: dict[str, Any]) -> None:
        """Write one record; call inside `locked(exclusive=True)` after applying it to `index`."""
        if self._fd is None:
            raise EmulatorDataError("the emulator data file is closed")
        at_rest = sealed.seal(self._sealing_key, record)
        line = (json.dumps(at_rest, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        os.write(self._fd, line)
        self._offset += len(line)
        self._records += 1
        self._dirty = True
        now = self._clock()
        if now - self._last_fsync >= self._fsync_interval:
            os.fsync(self._fd)
            self._last_fsync = now
            self._dirty = False
        if self._records > max(_COMPACT_MIN_RECORDS, 2 * (len(index.jobs) + len(index.ops))):
            self.compact(index)

    def compact(self, index: Index) -> None:
        """Rewrite the log as one snapshot of `index` (which is current: we hold the lock)."""
        self._write_snapshot(index)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        st = os.fstat(self._fd)
        self._inode, self._offset, self._records = st.st_ino, st.st_size, 1
        self._dirty = False

    def _write_snapshot(self, index: Index) -> None:
        directory = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".emulator-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                snapshot = sealed.seal(self._sealing_key, index.snapshot())
                fh.write((json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        if self._fd is not None:
            if self._dirty:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        os.close(self._lock_fd)
