"""Crash-safe and concurrency-safe file writes: the one place rlsched writes a file that others read.

- `atomic_write_text` / `atomic_write_bytes` / `atomic_write_json`: a temporary file in the same folder, fsynced,
  then `os.replace`d into place. A kill leaves the old file or the new one, never a mix, and two writers of the
  same file each leave a whole file (the last one wins).
- `complete_lines` / `repair_partial_line`: a CSV appended to line by line may end in a partial line when its
  writer was killed mid-write; it is dropped (the row counts as not written).
- `locked(path)`: a `filelock.FileLock` on `<path>.lock`, for read-modify-write sequences (appending a row to a
  results file two benchmarks share). The lock is an OS lock (flock), released by the kernel when its holder
  dies, so a killed writer never leaves a folder locked.
- `FolderLock`: one process at a time in a folder (a training run), refused at once naming the holder (pid, host,
  start time, read from `<lock>.json`); a holder record left by a dead process is taken over with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout


def _synced_temp(path: Path, data: bytes) -> str:
    """A temporary file beside `path` holding `data`, flushed to disk; the caller moves or removes it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and os.replace."""
    path = Path(path)
    tmp = _synced_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any, **dumps_kwargs: Any) -> None:
    atomic_write_text(path, json.dumps(obj, **{"indent": 2, **dumps_kwargs}) + "\n")


def create_text_exclusive(path: str | Path, text: str) -> bool:
    """Write `path` whole if it does not exist yet (atomically: of two racing writers exactly one wins);
    False, leaving the file alone, when it already exists."""
    path = Path(path)
    tmp = _synced_temp(path, text.encode())
    try:
        os.link(tmp, path)  # fails if the file exists: an atomic "create if absent" of a complete file
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def complete_lines(text: str) -> tuple[str, str]:
    """(`text` up to its last newline, the partial line after it): "" for the second when `text` is whole."""
    kept = text[: text.rfind("\n") + 1]  # "" when not even a first line was finished
    return kept, text[len(kept) :]


def repair_partial_line(path: str | Path, warn: bool = True) -> str:
    """Cut a partial last line (a writer killed mid-append) off the file at `path`; returns the kept text."""
    path = Path(path)
    if not path.is_file():
        return ""
    text = path.read_text()
    kept, partial = complete_lines(text)
    if partial:
        if warn:
            warnings.warn(
                f"{path}: dropped a partial last line {partial[:80]!r} (a run killed while writing it); "
                "that row counts as not written",
                stacklevel=2,
            )
        atomic_write_text(path, kept)
    return kept


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.lock")


@contextmanager
def locked(path: str | Path, timeout: float = 600.0) -> Iterator[None]:
    """Hold the lock of `path` (`<path>.lock`) for the block: one read-modify-write of `path` at a time."""
    lock = FileLock(lock_path(path), timeout=timeout)
    try:
        with lock:
            yield
    except Timeout as err:
        raise TimeoutError(
            f"waited {timeout:.0f} s for the lock {lock_path(path)} of {path}; another process holds it"
        ) from err


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


class FolderBusyError(RuntimeError):
    """Another process works in this folder (it holds the folder's lock)."""


class FolderLock:
    """An exclusive, non-blocking lock of one folder, recording its holder for the refusal message.

    `acquire()` raises FolderBusyError at once when another process holds it. The OS releases the lock when the
    holder dies; the holder record (`<name>.json`) it leaves is then stale and is replaced with a warning.
    """

    def __init__(self, folder: str | Path, name: str = ".rlsched.lock", what: str = "a run"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / name
        self.info_path = self.folder / f"{name}.json"
        self._lock = FileLock(self.path, timeout=0)

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.info_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def describe_holder(self) -> str:
        h = self.holder()
        if not h:
            return "another process (no holder record)"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.get("since", 0)))
        return f"pid {h.get('pid')} on host {h.get('host')} (since {since})"

    def is_held(self) -> bool:
        """Whether another process holds the lock now (reads only: creates nothing when no lock file exists)."""
        if self._lock.is_locked or not self.path.exists():
            return False
        probe = FileLock(self.path, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        return False

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise FolderBusyError(
                f"{self.folder} is in use by {self.what} of {self.describe_holder()}; wait for it to finish, "
                "or choose another out_dir=..."
            ) from None
        old, host = self.holder(), socket.gethostname()
        if old and (old.get("pid"), old.get("host")) != (os.getpid(), host):
            # We hold the OS lock, so its previous holder is gone: it died without removing its record.
            alive = old.get("host") == host and _pid_alive(int(old.get("pid", 0)))
            state = "a process with that pid runs, but it does not hold the lock" if alive else "no longer running"
            warnings.warn(
                f"{self.folder}: taking over a stale lock left by pid {old.get('pid')} on {old.get('host')} ({state})",
                stacklevel=2,
            )
        atomic_write_json(self.info_path, {"pid": os.getpid(), "host": host, "since": time.time()})

    def release(self) -> None:
        if self._lock.is_locked:
            self.info_path.unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def ensure_writable(out_dir: str | Path) -> Path:
    """Create `out_dir` and prove it is writable, before any training time is spent."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # A probe of our own (not a fixed name): two runs starting in one folder must not delete each other's.
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write_test"):
            pass
    except OSError as err:
        raise PermissionError(
            f"results folder {out} cannot be written ({err}); choose another with out_dir=..."
        ) from err
    return out
