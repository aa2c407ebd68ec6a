"""How a writer commits and rotates: one frozen `LogOptions` instead of keyword arguments
repeated on every constructor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from admf.errors import AdmfError

FsyncPolicy = Literal["always", "group", "never"]


class LogOptionsError(AdmfError, ValueError):
    """A `LogOptions` field out of range; raised when the options are built, before a log
    is touched."""


@dataclass(frozen=True, slots=True)
class LogOptions:
    """Commit and rotation settings of a log writer (a reader ignores them).

    ``fsync``: ``"group"`` (one fsync per commit group, the default), ``"always"`` (every
    append is its own group) or ``"never"`` (survives a crash of the process, not of the
    machine). A group closes at ``group_events`` events or ``group_ms`` after its first
    append. A segment is closed (and, with ``auto_seal``, sealed into Parquet in the
    background) once it holds ``segment_events`` events or ``segment_bytes`` bytes."""

    group_events: int = 10_000
    group_ms: float = 5.0
    fsync: FsyncPolicy = "group"
    segment_events: int = 1_000_000
    segment_bytes: int = 128 << 20
    auto_seal: bool = True

    def __post_init__(self) -> None:
        if self.fsync not in get_args(FsyncPolicy):
            raise LogOptionsError(
                f"fsync must be one of {get_args(FsyncPolicy)}, got {self.fsync!r}"
            )
        for name in ("group_events", "segment_events", "segment_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise LogOptionsError(f"{name} must be an integer >= 1, got {value!r}")
        if self.group_ms < 0:
            raise LogOptionsError(f"group_ms must be >= 0, got {self.group_ms!r}")

    @property
    def durable(self) -> bool:
        """Whether commits fsync (policy other than ``"never"``)."""
        return self.fsync != "never"
