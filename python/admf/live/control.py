"""Control of a running session from another terminal: ``admf live ctl LOG COMMAND``.

A command is a small file dropped (atomically: written, then renamed) into the session's
``control/`` directory; the session reads and removes it within ``POLL`` seconds and records
it as an event (``PAUSE``, ``RESUME``, ``FLATTEN``; ``stop`` becomes the ``STOP`` record of
the shutdown it starts). Files need no socket path (Unix sockets are limited to 108
characters) and work for any process that may write to the log directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import aiofiles
import aiofiles.os

from admf.errors import AdmfError
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox

COMMANDS: Final[dict[str, LiveCode | None]] = {
    "pause": LiveCode.PAUSE,
    "resume": LiveCode.RESUME,
    "flatten": LiveCode.FLATTEN,
    "stop": None,
}
CONTROL_DIR: Final = "control"
POLL: Final = 0.1
SUFFIX: Final = ".cmd"


class ControlWatcher:
    """Reads the commands dropped into a session's ``control/`` directory."""

    def __init__(self, run_dir: Path, inbox: Inbox, stop: Callable[[str], None]) -> None:
        self.dir = run_dir / CONTROL_DIR
        self.inbox = inbox
        self.stop = stop
        self.dir.mkdir(exist_ok=True)

    async def run(self) -> None:
        while True:
            for name in sorted(await aiofiles.os.listdir(self.dir)):
                if name.endswith(SUFFIX):
                    await self._take(self.dir / name)
            await asyncio.sleep(POLL)

    async def _take(self, path: Path) -> None:
        async with aiofiles.open(path) as f:
            command = (await f.read()).strip()
        await aiofiles.os.remove(path)
        if command not in COMMANDS:
            self.inbox.record(LiveCode.VENUE_ERROR, {"control": command, "error": "unknown"})
            return
        code = COMMANDS[command]
        if code is None:
            self.stop("admf live ctl stop")
        else:
            self.inbox.record(code, {"control": command})


def send_command(run_dir: str | os.PathLike[str], command: str, timeout: float = 5.0) -> None:
    """Drops ``command`` for the session logging to ``run_dir`` and waits until it has taken
    it; an `AdmfError` if no session does within ``timeout`` seconds."""
    if command not in COMMANDS:
        raise AdmfError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    directory = Path(run_dir) / CONTROL_DIR
    if not (Path(run_dir) / "manifest.json").is_file():
        raise AdmfError(f"{run_dir} is not a run's log directory (no manifest.json)")
    directory.mkdir(exist_ok=True)
    stem = f"{time.time_ns()}-{os.getpid()}"
    temp = directory / f"{stem}.tmp"
    temp.write_text(command)
    final = directory / f"{stem}{SUFFIX}"
    temp.rename(final)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not final.exists():
            return
        time.sleep(POLL / 2)
    final.unlink(missing_ok=True)
    raise AdmfError(
        f"no live session took the command within {timeout:g} s: is one running on {run_dir}?"
    )
