"""The single-writer lock of a log.

The lock is an ``flock`` on the run directory itself, not on a file inside it: deleting or
replacing ``LOCK`` (or any other file) cannot hand the log to a second writer, because the
directory the second writer opens is the one the first still holds. ``LOCK`` only says which
process holds the lock, for the error message. The descriptor is closed (and the lock
released) by `WriterLock.release`, or by the garbage collector if the writer is dropped
without being closed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import weakref
from pathlib import Path
from typing import Final

from admf.errors import AdmfError

LOCK_NAME: Final[str] = "LOCK"


class LogLockedError(AdmfError):
    """Another process (or another `EventLog` in this one) is writing to the log."""


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing held
        os.close(fd)


class WriterLock:
    """The exclusive lock on one run directory, held until `release`."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir
        info = run_dir / LOCK_NAME
        if info.is_dir() or info.is_symlink():
            raise AdmfError(
                f"{info} is a {'directory' if info.is_dir() else 'symbolic link'}, not the "
                "log's lock file; remove it and open the log again"
            )
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise LogLockedError(
                f"the event log {run_dir} is already open for writing (by process "
                f"{_holder(info)}); a log has one writer at a time: close the other writer, "
                "or open this one with read_only=True"
            ) from None
        self._fd = fd
        self._finalizer = weakref.finalize(self, _close, fd)
        try:
            tmp = run_dir / (LOCK_NAME + ".tmp")
            tmp.write_text(f"{os.getpid()}\n")
            os.replace(tmp, info)
        except BaseException:
            self.release()
            raise

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        """Closes the directory descriptor, which releases the flock."""
        self._finalizer()


def _holder(info: Path) -> str:
    try:
        return info.read_text(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"
