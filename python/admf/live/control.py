"""Control of a running session from another terminal: ``admf live ctl LOG COMMAND``.

A command is a small file dropped (atomically: written, then renamed) into the session's
``control/`` directory; the session reads and removes it within ``POLL`` seconds and records
it as an event (``PAUSE``, ``RESUME``, ``FLATTEN``; ``stop`` becomes the ``STOP`` record of
the shutdown it starts). Files need no socket path (Unix sockets are limited to 108
characters) and work for any process that may write to the log directory.

On a venue, a flatten is followed until it is flat (`Flattener`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import aiofiles
import aiofiles.os

from admf.errors import AdmfError
from admf.exchange.wire import fixed_to_str
from admf.live.codes import LiveCode
from admf.live.inbox import Inbox
from admf.live.tracker import OrderTracker

COMMANDS: Final[dict[str, LiveCode | None]] = {
    "pause": LiveCode.PAUSE,
    "resume": LiveCode.RESUME,
    "flatten": LiveCode.FLATTEN,
    "stop": None,
}
CONTROL_DIR: Final = "control"
POLL: Final = 0.1
SUFFIX: Final = ".cmd"
FOLLOW_UPS: Final = 3
"""The most ``FLATTEN`` records a session adds after one flatten command (`Flattener`)."""


class ControlWatcher:
    """Reads the commands dropped into a session's ``control/`` directory."""

    def __init__(
        self,
        run_dir: Path,
        inbox: Inbox,
        stop: Callable[[str], None],
        flattener: Flattener | None = None,
    ) -> None:
        self.dir = run_dir / CONTROL_DIR
        self.inbox = inbox
        self.stop = stop
        self.flattener = flattener
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
        elif code == LiveCode.FLATTEN and self.flattener is not None:
            self.flattener.record({"control": command})
        else:
            self.inbox.record(code, {"control": command})


class Flattener:
    """Makes a flatten on a venue end flat.

    The gate cancels every open order and closes each position as the portfolio holds it when
    ``FLATTEN`` is applied. On a venue, an order its cancel does not reach in time still fills
    (an entry on its way), and leaves a position behind. So once every order has its answer,
    what is left is closed by another ``FLATTEN`` record (``aux`` 1, with the positions it
    found), at most `FOLLOW_UPS` times per command. The records are inputs: a replay decides
    the same without this."""

    def __init__(self, inbox: Inbox, tracker: OrderTracker, busy: Callable[[], bool]) -> None:
        self.inbox = inbox
        self.tracker = tracker
        self.busy = busy
        self.follow_ups = 0
        self.task: asyncio.Task[None] | None = None
        self.recorded = 0
        """``FLATTEN`` records made (by the event loop)."""
        self.applied_count = 0
        """Those the kernel applied (counted by the kernel thread; each counter has one
        writer): while they are equal, the log sink need not look for one."""

    def record(self, payload: dict[str, Any], aux: int = 0) -> None:
        self.recorded += 1
        self.inbox.record(LiveCode.FLATTEN, payload, aux=aux)

    def waiting(self) -> bool:
        """Whether a ``FLATTEN`` record may be in the kernel's next batches."""
        return self.recorded > self.applied_count

    def applied(self, aux: int) -> None:
        """The kernel applied a ``FLATTEN`` of this session (its commands already handed to
        the venue adapter); called on the event loop."""
        if aux == 0:
            self.follow_ups = 0  # a new command
        self.close()
        self.task = asyncio.get_running_loop().create_task(self._settle())

    async def _settle(self) -> None:
        while self.busy() or self.tracker.open_orders():
            await asyncio.sleep(POLL / 4)
        left = {i: q for i, q in sorted(self.tracker.positions.items()) if q}
        if not left or self.follow_ups >= FOLLOW_UPS:
            return
        self.follow_ups += 1
        found = {str(i): fixed_to_str(q) for i, q in left.items()}
        self.record({"control": "flatten", "left": found}, aux=1)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None


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
