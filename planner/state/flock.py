"""The lock of a local state: `fcntl.flock` on `<file>.lock` plus the holder's `LockInfo` in it.

The kernel releases the flock when its holder dies; holder info left by a killed process is
stale and is overwritten by the next holder. So `force_unlock(ID)` only clears stale info (or
releases this lock's own hold): a lock held by a running process cannot be broken by another
one, as in Terraform's local backend. Where the state's files live is `local`'s business.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from planner.errors import StateError, StateLockedError
from planner.state.lock import LockInfo, locked_error

FILE_MODE = 0o600


class FileLock:
    """One state's lock file; `description` names the state in messages."""

    def __init__(self, path: Path, description: str, *, poll_interval: float = 0.05) -> None:
        self.path = path
        self.description = description
        self.poll_interval = poll_interval
        self._mutex = threading.RLock()
        self._fd: int | None = None
        self._info: LockInfo | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _read_holder(self) -> LockInfo | None:
        try:
            raw = self.path.read_bytes()
        except OSError:
            return None
        if not raw.strip():
            return None
        try:
            return LockInfo.from_bytes(raw, str(self.path))
        except StateError:
            return None

    def _held_by_live_process(self) -> bool:
        """True if some open file description holds the flock (a running process)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also drops the shared lock if we got it
        return False

    def _try_lock(self, info: LockInfo) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        # The previous holder may have unlinked the file between our open and our flock:
        # then we locked an orphan inode and must retry on the file now at the path.
        try:
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try_lock(info)
        try:
            os.fchmod(fd, FILE_MODE)
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.to_bytes(), 0)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._info = fd, info
        return True

    def lock(self, info: LockInfo, timeout: float) -> str:
        info = info.with_id(info.id or str(uuid.uuid4()))
        if not info.path:
            info = replace(info, path=self.description)
        started = time.monotonic()
        delay = self.poll_interval
        vanished = 0
        while True:
            try:
                if self._try_lock(info):
                    return info.id
            except OSError as err:
                raise StateError(f"cannot lock state {self.description} ({self.path}): {err.strerror}") from err
            waited = time.monotonic() - started
            if waited >= timeout:
                holder = self._read_holder()
                if holder is None and vanished < 3:
                    vanished += 1
                    continue  # released between our attempt and the look: the lock is free, try again
                raise locked_error(self.description, holder, waited)
            time.sleep(min(delay, max(timeout - waited, 0.0)))
            delay = min(delay * 2, 0.5)

    def release(self) -> None:
        fd = self._fd
        assert fd is not None
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)  # still holding the flock, so nobody else owns this path
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
            self._fd, self._info = None, None

    def unlock(self, lock_id: str) -> None:
        with self._mutex:
            if self._fd is None or self._info is None:
                raise StateError(f"cannot unlock state {self.description}: this run does not hold its lock")
            if lock_id != self._info.id:
                raise StateError(
                    f"cannot unlock state {self.description}: lock ID {lock_id} does not match "
                    f"the lock this run holds ({self._info.id})"
                )
            self.release()

    def force_unlock(self, lock_id: str) -> None:
        with self._mutex:
            if self._fd is not None and self._info is not None and self._info.id == lock_id:
                self.release()
                return
            holder = self._read_holder()
            if holder is None:
                raise StateError(f"cannot force-unlock state {self.description}: it is not locked")
            if holder.id != lock_id:
                raise StateError(
                    f"cannot force-unlock state {self.description}: lock ID {lock_id} does not match "
                    f"the current lock ({holder.describe()})"
                )
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                raise StateError(f"cannot force-unlock state {self.description}: it is not locked") from None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StateLockedError(
                        f"cannot force-unlock state {self.description}: the lock ({holder.describe()}) is held "
                        "by a running process; a local lock is released by the operating system when its "
                        f"process exits, so stop that process (pid {holder.pid} on {holder.host}) instead",
                        lock_info=holder.to_json(),
                    ) from None
                # The holder died: its info is stale and nobody else holds the flock (we do now).
                # Removing the file is tidiness; the next lock() would overwrite it anyway.
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                        os.unlink(self.path)
            finally:
                os.close(fd)

    def holder(self) -> LockInfo | None:
        with self._mutex:
            if self._info is not None:
                return self._info
        if not self._held_by_live_process():
            return None
        holder = self._read_holder()
        if holder is None:  # the holder has the flock but has not written its info yet
            return LockInfo("", "", "", "", 0, "", "", self.description)
        return holder
