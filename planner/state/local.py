"""The local state store: one JSON file plus its `.backup`, `.journal` and `.lock` beside it.

Durability: a write goes to a temporary file in the same directory, is fsync'd, renamed
over the state and the directory fsync'd; the previous file is first hard-linked (or
copied) to `<file>.backup`. A `--state` that is a symbolic link is written through: the
file it points to is replaced, the link is kept. Between full writes, each step result is
one checksummed record (see `fileformat`) appended to `<file>.journal`, tagged with the
lineage and serial of the state it applies on top of: `read()` folds the records that match
the state on disk and ignores older ones, so a crash between renaming the state and
clearing the journal cannot replay stale steps. `append` returns once its records are
durable; records appended concurrently share one fsync (group commit). A torn last record
is what a crash or a full disk mid-append leaves; it is ignored, and cut off before the
next append. Any other unreadable line is a StateError.

A missing state file beside its `.backup` or a non-empty journal is refused (unless
`ignore_backup`): the state was lost, and starting a new one would create its jobs again.

Locking: `fcntl.flock` on `<file>.lock` with the holder's `LockInfo` in it (planner.state.flock).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from planner import __version__
from planner.errors import StateError
from planner.state.fileformat import journal_line, journal_records, read_state, write_state
from planner.state.flock import FileLock
from planner.state.lock import LockInfo
from planner.state.model import STATE_FORMAT_VERSION, JournalEntry, State, apply_entries, check_replaceable

FILE_MODE = 0o600
DIR_MODE = 0o700

_Signature = tuple[int, int, int]  # (inode, size, mtime_ns): "the file we last read or wrote"


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """State in a local file; see the module docstring for the on-disk protocol."""

    def __init__(self, path: Path, *, poll_interval: float = 0.05, ignore_backup: bool = False) -> None:
        self.path = path
        # A missing state beside its backup or journal is refused unless the user says to
        # start a new one: a new lineage would overwrite the backup and duplicate its jobs.
        self.ignore_backup = ignore_backup
        self.description = str(path)
        self.backup_path = path.with_name(path.name + ".backup")
        self.journal_path = path.with_name(path.name + ".journal")
        self.lock_path = path.with_name(path.name + ".lock")
        self._mutex = threading.RLock()  # apply appends from several threads
        self._base: tuple[str, int] | None = None  # (lineage, serial) of the file last read/written
        self._seen: _Signature | None = None
        self._journal_fd: int | None = None
        self._journal_end = 0  # bytes of whole records in the journal
        self._journal_torn = False  # a failed write left part of a record past _journal_end
        self._journal_broken: str | None = None  # an fsync failed: nothing more is trusted
        self._sync_cond = threading.Condition(threading.Lock())
        self._syncing = False
        self._written = 0  # records written (numbered from 1), and of those the durable ones:
        self._synced = 0
        self._lock = FileLock(self.lock_path, self.description, poll_interval=poll_interval)

    # --- context management ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the journal and release this store's lock if it still holds one."""
        with self._mutex:
            self._close_journal()
            if self._lock.held:
                self._lock.release()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------------------

    def _read_state_file(self) -> tuple[State, _Signature] | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StateError(f"cannot read state file {self.description}: {err.strerror}") from err
        try:
            st = os.fstat(fd)
            with os.fdopen(os.dup(fd), "rb") as fh:
                raw = fh.read()
        except OSError as err:
            raise StateError(f"cannot read state file {self.description}: {err.strerror}") from err
        finally:
            os.close(fd)
        return read_state(raw, self.description), _signature(st)

    def _read_journal(self, lineage: str, serial: int) -> list[JournalEntry]:
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise StateError(f"cannot read state journal {self.journal_path}: {err.strerror}") from err
        # A torn last record (a crash or a full disk mid-append) never completed and is left out.
        records, _end = journal_records(raw, str(self.journal_path))
        return [entry for tag_lineage, tag_serial, entry in records if (tag_lineage, tag_serial) == (lineage, serial)]

    def read(self) -> State | None:
        """The state (with its journal replayed); None if there is none yet."""
        with self._mutex:
            found = self._read_state_file()
            if found is None:
                if not self.ignore_backup:
                    self._refuse_orphans()
                self._base, self._seen = None, None
                return None
            state, sig = found
            entries = self._read_journal(state.lineage, state.serial)
            self._base, self._seen = (state.lineage, state.serial), sig
            return apply_entries(state, entries)

    def _refuse_orphans(self) -> None:
        """The state file is missing: a backup or a journal left beside it means it was lost."""
        try:
            raw = self.backup_path.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as err:
            raise StateError(f"cannot read state backup {self.backup_path}: {err.strerror}") from err
        if raw is not None:
            try:
                serial = f"serial {read_state(raw, str(self.backup_path)).serial}"
            except StateError:
                serial = "an unreadable serial"
            raise StateError(
                f"state {self.description} is missing but a backup of {serial} exists ({self.backup_path}): "
                "restore it with `planner state restore` or pass `--ignore-backup` to start a new state",
                hint="starting a new state would overwrite the backup and create its jobs a second time",
            )
        try:
            size = self.journal_path.stat().st_size
        except FileNotFoundError:
            return
        if size:
            raise StateError(
                f"state {self.description} is missing but its journal {self.journal_path} exists "
                f"({size} bytes of step records that apply on top of it)",
                hint="put the state file back, or pass `--ignore-backup` to start a new state "
                f"(the journal is then kept as {self.journal_path.name}.orphaned; jobs it recorded "
                "are adopted by their labels)",
            )

    def restore_backup(self) -> State:
        """Make `<file>.backup` the state again, if the state file is missing or unreadable."""
        with self._mutex:
            try:
                self._read_state_file()
            except StateError:
                pass  # corrupt or unreadable: exactly what a restore is for
            else:
                if self.path.exists():
                    raise StateError(
                        f"cannot restore {self.description}: the state file exists and is readable; "
                        "a restore replaces only a missing or corrupt state"
                    )
            try:
                raw = self.backup_path.read_bytes()
            except FileNotFoundError:
                raise StateError(f"cannot restore {self.description}: there is no backup {self.backup_path}") from None
            except OSError as err:
                raise StateError(f"cannot read state backup {self.backup_path}: {err.strerror}") from err
            state = read_state(raw, str(self.backup_path))  # a corrupt backup is refused here
            target = self._real_path()
            try:
                fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
                try:
                    os.fchmod(fd, FILE_MODE)
                    _write_all(fd, raw)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp_name, target)
                _fsync_dir(target.parent)
            except OSError as err:
                raise StateError(f"cannot restore {self.description}: {err.strerror}") from err
            self._base, self._seen = None, None
            return state

    def _real_path(self) -> Path:
        """The file a write replaces: a `--state` that is a symbolic link is written through."""
        if self.path.is_symlink():
            return Path(os.path.realpath(self.path))
        return self.path

    # --- writing ----------------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        directory = self.path.parent
        if directory.is_dir():
            return
        try:
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
            os.chmod(directory, DIR_MODE)
        except OSError as err:
            raise StateError(f"cannot create state directory {directory}: {err.strerror}") from err

    def _check_replaceable(self, state: State) -> None:
        """Lineage/serial guard: refuse to replace a state this run did not start from."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if self._base is not None and self._seen == _signature(st):
            lineage, serial = self._base
        else:
            found = self._read_state_file()  # a corrupt or newer file raises here: never overwritten
            if found is None:
                return
            lineage, serial = found[0].lineage, found[0].serial
        check_replaceable(self.description, lineage, serial, state)

    def _keep_backup(self, current: Path) -> None:
        """Make `<file>.backup` the current state file (hard link, or a copy where links fail)."""
        directory = self.path.parent
        tmp = directory / f".{self.backup_path.name}.{uuid.uuid4().hex}.tmp"
        try:
            os.link(current, tmp)  # `current` is never a link: link(2) would copy the link itself
        except FileNotFoundError:
            return
        except OSError:
            data = current.read_bytes()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, self.backup_path)

    def write(self, state: State) -> State:
        with self._mutex:
            self._check_replaceable(state)
            new = replace(state, serial=state.serial + 1, version=STATE_FORMAT_VERSION, planner_version=__version__)
            data = write_state(new)
            self._ensure_dir()
            target = self._real_path()
            directory = target.parent
            fresh = not target.exists()
            try:
                fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
            except OSError as err:
                raise StateError(f"cannot write state {self.description}: {err.strerror}") from err
            tmp = Path(tmp_name)
            try:
                try:
                    os.fchmod(fd, FILE_MODE)
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._keep_backup(target)
                os.replace(tmp, target)
                _fsync_dir(directory)
            except OSError as err:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise StateError(f"cannot write state {self.description}: {err.strerror}") from err
            with contextlib.suppress(OSError):
                os.chmod(self.backup_path, FILE_MODE)
            self._base, self._seen = (new.lineage, new.serial), _signature(os.stat(self.path))
            if fresh:
                self._set_orphan_journal_aside()
            self._clear_journal()
            return new

    # --- journal ------------------------------------------------------------------------------------

    def _close_journal(self) -> None:
        with self._sync_cond:
            while self._syncing:  # never close the descriptor under a running fsync
                self._sync_cond.wait()
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    def _set_orphan_journal_aside(self) -> None:
        # A journal found beside no state (accepted with --ignore-backup) is kept, not deleted.
        with contextlib.suppress(OSError):
            if self.journal_path.stat().st_size:
                self._close_journal()
                os.replace(self.journal_path, self.journal_path.with_name(self.journal_path.name + ".orphaned"))

    def _clear_journal(self) -> None:
        # Lines tagged with the old serial no longer apply; removing them is tidiness only.
        self._close_journal()
        with self._sync_cond:
            self._synced = self._written  # what they recorded is in the state file just written
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()

    def _open_journal(self) -> int:
        if self._journal_fd is not None:
            return self._journal_fd
        self._ensure_dir()
        created = not self.journal_path.exists()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            self._journal_end = self._cut_torn_tail(fd, size) if size else 0
            if created:
                _fsync_dir(self.path.parent)
        except OSError:
            os.close(fd)
            raise
        self._journal_fd = fd
        return fd

    def _cut_torn_tail(self, fd: int, size: int) -> int:
        """Drop an unterminated last line (left by a crash) so new records start cleanly; the size kept."""
        with open(self.journal_path, "rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return size
            fh.seek(0)
            raw = fh.read(size)
        keep = raw.rfind(b"\n") + 1
        os.ftruncate(fd, keep)
        os.fsync(fd)
        return keep

    def _current_base(self) -> tuple[str, int]:
        if self._base is not None:
            return self._base
        found = self._read_state_file()
        if found is None:
            raise StateError(
                f"cannot journal a step for {self.description}: no state has been written yet "
                "(write the initial state before appending)"
            )
        state, sig = found
        self._base, self._seen = (state.lineage, state.serial), sig
        return self._base

    def append(self, *entries: JournalEntry) -> None:
        """Write records in order and return once they are durable (group commit: see `_sync`).

        The records of one call go out in one write: on a failure none of them is recorded.
        """
        base = self._base
        # Encoding outside the lock: parallel writers wait for each other only to write.
        data = self._lines(entries, base) if base is not None else None
        with self._mutex:
            if self._journal_broken is not None:
                raise StateError(
                    f"cannot append to state journal {self.journal_path}: an earlier fsync failed "
                    f"({self._journal_broken}); nothing more is recorded there by this run"
                )
            current = self._current_base()
            if data is None or base != current:
                data = self._lines(entries, current)
            try:
                fd = self._open_journal()
                if self._journal_torn:
                    self._cut_back(fd)
                try:
                    _write_all(fd, data)
                except OSError:
                    # A short write (a full disk) leaves part of a record: cut it off now, or
                    # before the next append if even that fails, so no record is glued onto it.
                    self._journal_torn = True
                    with contextlib.suppress(OSError):
                        self._cut_back(fd)
                    raise
            except OSError as err:
                raise StateError(f"cannot append to state journal {self.journal_path}: {err.strerror}") from err
            self._journal_end += len(data)
            self._written += 1
            ticket = self._written
        self._sync(ticket)

    @staticmethod
    def _lines(entries: tuple[JournalEntry, ...], base: tuple[str, int]) -> bytes:
        lineage, serial = base
        return b"".join(journal_line(entry, lineage=lineage, serial=serial) for entry in entries)

    def _cut_back(self, fd: int) -> None:
        os.ftruncate(fd, self._journal_end)
        self._journal_torn = False

    def _sync(self, ticket: int) -> None:
        """Return once record number `ticket` is durable; one fsync covers every record written before it.

        The first waiter to find no fsync running starts one for everything written so far;
        records written meanwhile wait for the next one. So concurrent steps share an fsync
        and a record is still durable before its step is reported done.
        """
        with self._sync_cond:
            while self._synced < ticket:
                if self._journal_broken is not None:
                    raise StateError(
                        f"cannot append to state journal {self.journal_path}: fsync failed ({self._journal_broken})"
                    )
                if not self._syncing:
                    break
                self._sync_cond.wait()
            else:
                return
            self._syncing = True
            target = self._written  # every record up to this one has been written
            fd = self._journal_fd
        error: OSError | None = None
        try:
            assert fd is not None
            os.fsync(fd)
        except OSError as err:
            error = err
        with self._sync_cond:
            self._syncing = False
            if error is None:
                self._synced = max(self._synced, target)
            else:
                # After a failed fsync the kernel may have dropped the pages: trust nothing more.
                self._journal_broken = error.strerror or str(error)
            self._sync_cond.notify_all()
        if error is not None:
            raise StateError(f"cannot append to state journal {self.journal_path}: {error.strerror}") from error

    # --- locking (planner.state.flock) ------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float) -> str:
        self._ensure_dir()
        return self._lock.lock(info, timeout)

    def unlock(self, lock_id: str) -> None:
        self._lock.unlock(lock_id)

    def force_unlock(self, lock_id: str) -> None:
        self._lock.force_unlock(lock_id)

    def lock_info(self) -> LockInfo | None:
        return self._lock.holder()
