"""The durable record of a sweep: what it is (``sweep.json``) and every trial as it finished
(``trials.jsonl``, one JSON line per trial, flushed and fsynced before the next is taken).

A sweep interrupted at any point (SIGINT, a crash, ``kill -9``) keeps every trial recorded
before it; a torn last line (the process died while writing it) is ignored. Run again with the
same command, the sweep finds its record, checks that it is the same sweep, and runs only the
trials that are not in it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final, TextIO

from admf.errors import AdmfError
from admf.log.manifest import canonical_json
from admf.log.segment import fsync_dir
from admf.sweep.trial import TrialResult

SPEC_NAME: Final[str] = "sweep.json"
JOURNAL_NAME: Final[str] = "trials.jsonl"


def write_atomic(path: Path, data: bytes) -> None:
    """Writes ``path`` whole or not at all (temp file, fsync, rename, fsync of the folder)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def check_or_write_spec(root: Path, spec: dict[str, Any]) -> bool:
    """Records the sweep's definition in a new sweep directory, or checks that an existing
    one holds the same sweep. True when resuming."""
    path = root / SPEC_NAME
    if path.is_file():
        recorded = json.loads(path.read_text())
        if canonical_json(recorded) != canonical_json(spec):
            differ = sorted(k for k in set(recorded) | set(spec) if recorded.get(k) != spec.get(k))
            raise AdmfError(
                f"{root} holds another sweep (it differs in: {', '.join(differ)}); "
                "choose another --out, or remove that directory to start over"
            )
        return True
    if root.exists() and any(root.iterdir()):
        raise AdmfError(f"{root} exists and is not a sweep directory (no {SPEC_NAME})")
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode())
    return False


def read_journal(root: Path) -> dict[str, TrialResult]:
    """The trials recorded so far, by id (the last record of a trial wins)."""
    path = root / JOURNAL_NAME
    out: dict[str, TrialResult] = {}
    if not path.is_file():
        return out
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            result = TrialResult.from_json(json.loads(line))
        except (ValueError, TypeError):
            if n == len(lines) - 1:
                break  # torn by a crash while it was written: that trial runs again
            raise AdmfError(f"{path}: line {n + 1} is not a trial record") from None
        out[result.trial] = result
    return out


class Journal:
    """Appends finished trials durably."""

    def __init__(self, root: Path) -> None:
        path = root / JOURNAL_NAME
        # A torn last line (no newline) is cut off so the next record starts on its own line.
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
        self._file: TextIO = open(path, "a")  # noqa: SIM115 (closed by close())

    def append(self, result: TrialResult) -> None:
        # Keys in their own order: the parameters keep the order of the space.
        self._file.write(json.dumps(result.to_json()) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
