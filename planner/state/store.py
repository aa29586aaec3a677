"""What every state store offers (`StateStore`); the local and GCS stores implement it."""

from __future__ import annotations

from typing import Protocol

from planner.state.lock import LockInfo
from planner.state.model import JournalEntry, State


class StateStore(Protocol):
    """Where a workspace's state lives, with its backup, step journal and lock.

    - `read()` returns None when no state exists yet; otherwise the stored state with any
      journal left by an interrupted run folded in (in memory), at the stored serial.
    - `write(state)` durably replaces the stored state, keeping the previous one as backup,
      and clears the journal. It returns the state as written: serial + 1, same lineage. It
      refuses (StateError) a state of another lineage, or one older than what is stored
      (someone else wrote meanwhile).
    - `append(*entries)` durably records step results in order, in time proportional to
      the entries; when it raises, a record it was given may or may not have been kept
      (folding a record twice changes nothing). A state must have been written before the
      first append.
    - `lock(info, timeout)` returns the lock ID, retrying until `timeout` seconds, then raises
      StateLockedError naming the holder. `unlock(ID)` releases this run's lock;
      `force_unlock(ID)` removes a lock only if its ID matches.
    """

    description: str

    def read(self) -> State | None: ...

    def write(self, state: State) -> State: ...

    def append(self, *entries: JournalEntry) -> None: ...

    def lock(self, info: LockInfo, timeout: float) -> str: ...

    def unlock(self, lock_id: str) -> None: ...

    def force_unlock(self, lock_id: str) -> None: ...

    def lock_info(self) -> LockInfo | None: ...
