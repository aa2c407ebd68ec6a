"""The ``replay`` data adapter: history played as live market data (a dry run).

It plays data files (bars, quotes, trades, as ``admf backtest`` reads them; option ``data``,
paths joined by ``+`` on the command line) or the market data of a recorded session's log
(option ``log``), at real time times ``speed`` (``speed=0``: as fast as the node takes
them); a resumed session goes on after the last market data its log holds. Each message is
stamped with the local time it is pushed at, like a venue's; its recorded time is kept as
the venue's time (quotes and trades: the ``payload`` slot; bars: a ``CLOCK`` reading before
each bar time, recorded time in ``aux``).

Data files are read with aiofiles, in chunks, so the event loop never waits on the disk;
their bytes go to the same readers ``admf backtest`` uses (``admf.data.DataFile``), which
parse them in a worker thread (parsing is CPU work), each file as soon as it is read, while
the next ones are still being read. A log's files (those `EventLog.files` lists) are read
with aiofiles too, and their bytes go to the log's own reader (`EventLog.open`'s
``contents``), which verifies them as it verifies the files (hashes against the shape
record, every segment frame's checksums; a torn tail is skipped) and decodes them, in a
worker thread. Nothing is conflated: a replay waits for room in the queue instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
import numpy as np

from admf._core import Event, merge
from admf.clock import clock_event
from admf.data.file import DataFile
from admf.data.source import companions, load_source
from admf.errors import AdmfError
from admf.events import EVENT_DTYPE, EventArray, Flag, Kind
from admf.live.adapter import AdapterContext, LiveSetupError

_BATCH = 256
"""Messages pushed per look at the clock when behind."""
_CHUNK = 1 << 20
"""Bytes per read of a data file: the event loop runs between two reads."""


async def _read_bytes(path: Path) -> bytes:
    if not await aiofiles.os.path.isfile(path):
        raise AdmfError(f"replay adapter: no data file at {path}")
    return await _read_file(path)


async def _read_file(path: Path) -> bytes:
    parts: list[bytes] = []
    async with aiofiles.open(path, "rb") as f:
        while chunk := await f.read(_CHUNK):
            parts.append(chunk)
    return b"".join(parts)


async def _read_source(path: Path, instrument: int) -> EventArray:
    """One data file (and the files read with it) read with aiofiles, then parsed by its
    reader in a worker thread."""
    siblings = {
        p.name: await _read_bytes(p)
        for p in companions(path)
        if await aiofiles.os.path.isfile(p)  # else its reader says what is missing
    }
    data = DataFile(path, await _read_bytes(path), siblings)
    return (await asyncio.to_thread(load_source, data, instrument)).events


async def load_files(paths: list[str], count: int) -> EventArray:
    """The data files (one per symbol, instrument ``i + 1`` for the i-th), merged in time
    order."""
    if len(paths) != count:
        raise LiveSetupError(
            f"replay adapter: {len(paths)} data files for {count} symbols; give one per symbol"
        )
    sources = await asyncio.gather(*(_read_source(Path(p), i) for i, p in enumerate(paths, 1)))
    merged = merge([np.ascontiguousarray(s).view(np.uint8) for s in sources])
    return np.frombuffer(merged, dtype=EVENT_DTYPE).copy()


async def load_log(path: str) -> EventArray:
    """The market data of the recorded session at ``path``, its files read with aiofiles and
    verified by the log's reader."""
    from admf.log import EventLog
    from admf.replay import MARKET_KINDS, read_recording

    names = await asyncio.to_thread(EventLog.files, path)
    contents: dict[str, bytes] = {}
    for name in names:
        file = Path(path) / name
        # one gone since the listing (sealed meanwhile): the log's reader reads what is there
        with contextlib.suppress(FileNotFoundError):
            contents[name] = await _read_file(file)
    rec = await asyncio.to_thread(read_recording, path, contents=contents)
    inputs = rec.inputs
    market = inputs[np.isin(inputs["kind"], [int(k) for k in MARKET_KINDS])].copy()
    market["flags"] &= ~np.uint16(Flag.INPUT)
    return market


class ReplayData:
    """See the module docstring."""

    def __init__(self, context: AdapterContext) -> None:
        options = dict(context.options)
        self.context = context
        self.inbox = context.inbox
        data = options.get("data")
        log = options.get("log")
        if (data is None) == (log is None):
            raise LiveSetupError("replay adapter: give exactly one of the options data and log")
        self.paths: list[str] = (
            [p for p in data.split("+") if p] if isinstance(data, str) else list(data or [])
        )
        # Checked before the session starts (the files are read once it runs).
        missing = [p for p in self.paths if not Path(p).is_file()]
        if missing:
            raise LiveSetupError(f"replay adapter: no data file at {', '.join(missing)}")
        if data is not None and len(self.paths) != len(context.symbols):
            raise LiveSetupError(
                f"replay adapter: {len(self.paths)} data files for {len(context.symbols)} "
                "symbols; give one per symbol"
            )
        self.log_path = log
        try:
            self.speed = float(options.get("speed", 1.0))
        except (TypeError, ValueError):
            raise LiveSetupError(
                f"replay adapter: speed must be a number >= 0, got {options.get('speed')!r}"
            ) from None
        if not self.speed >= 0:
            raise LiveSetupError(f"replay adapter: speed must be >= 0, got {self.speed}")
        self.events: EventArray | None = None
        self.played = 0

    async def connect(self) -> None:
        if self.log_path is not None:
            self.events = await load_log(str(self.log_path))
        else:
            self.events = await load_files(self.paths, len(self.context.symbols))

    async def run(self) -> None:
        assert self.events is not None
        events = self.events
        if self.context.after_ns:
            # A resumed session: go on after what its log already holds.
            events = events[events["ts"] > self.context.after_ns]
        if not len(events):
            return
        loop = asyncio.get_running_loop()
        inbox = self.inbox
        start_wall = loop.time()
        first = int(events["ts"][0])
        last_clock = None
        for i in range(len(events)):
            row = events[i]
            venue_ts = int(row["ts"])
            if self.speed > 0:
                due = start_wall + (venue_ts - first) / 1e9 / self.speed
                delay = due - loop.time()
                if delay > 0:
                    inbox.hand_off()  # what came before this pause is applied first
                    await asyncio.sleep(delay)
            elif i % _BATCH == 0:
                inbox.hand_off()
                await asyncio.sleep(0)
            now = inbox.now()
            kind = int(row["kind"])
            if kind == Kind.BAR:
                if venue_ts != last_clock:
                    inbox.push(clock_event(now, venue_ts))
                    last_clock = venue_ts
                payload = int(row["payload"])
            elif kind in (Kind.QUOTE, Kind.TRADE):
                payload = venue_ts
            else:
                payload = int(row["payload"])
            inbox.push(
                Event(
                    kind,
                    now,
                    instrument=int(row["instrument"]),
                    side=int(row["side"]),
                    price=int(row["price"]),
                    qty=int(row["qty"]),
                    aux=int(row["aux"]),
                    order_id=int(row["order_id"]),
                    payload=payload,
                    flags=int(row["flags"]) & ~int(Flag.HAS_PAYLOAD),
                )
            )
            self.played += 1

    async def disconnect(self) -> None:
        return None


def make_adapter(context: AdapterContext) -> Any:
    if context.tracker is not None:
        return None  # no execution side: ``--exec-adapter sim`` simulates it
    return ReplayData(context)
