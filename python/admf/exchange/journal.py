"""The exchange's own event log: every market event it played, every order, report and
fault, in an ``admf.EventLog`` (so a session can be queried in SQL afterwards).

Appends are grouped: single records gather in memory and go to the log, in the order they
happened, with the next batch of market events or at the latest on ``flush`` (the server
flushes every few milliseconds). The log's own committer makes them durable off the event
loop.
"""

from __future__ import annotations

import shutil
from concurrent.futures import Future
from typing import Any

import numpy as np

from admf._core import Event
from admf.events import EventArray, Kind
from admf.log import EventLog


class Journal:
    """Writes to an ``EventLog`` under ``log_dir`` (or only counts, without one)."""

    def __init__(self, log_dir: str | None, config: dict[str, Any], seed: int) -> None:
        self.log = EventLog.create(log_dir, config=config, seed=seed) if log_dir else None
        self._events: list[Event] = []
        self._payloads: list[Any] = []
        self._futures: list[Future[Any]] = []
        self.counts: dict[str, int] = {}
        self.faults: list[dict[str, Any]] = []
        """Every injected fault, also kept here for tests and the admin endpoint."""
        self.log_errors: list[str] = []
        """Stream errors of the exchange (a slow client cut off), also kept here."""

    def record(self, event: Event, payload: Any = None) -> None:
        self._events.append(event)
        self._payloads.append(payload)

    def market(self, events: EventArray) -> None:
        self.flush()
        if self.log is not None and len(events):
            batch = np.ascontiguousarray(events).copy()
            batch["seq"] = 0
            self._keep(self.log.append_async(batch))

    def fault(self, ts: int, name: str, **details: Any) -> None:
        entry = {"fault": name, **details}
        self.faults.append(entry)
        self.record(Event(int(Kind.CUSTOM), ts), entry)

    def error(self, ts: int, message: str) -> None:
        self.log_errors.append(message)
        self.record(Event(int(Kind.ERROR), ts), {"stream": message})

    def flush(self) -> None:
        if not self._events:
            return
        events, payloads = self._events, self._payloads
        self._events, self._payloads = [], []
        if self.log is not None:
            self._keep(self.log.append_async(events, payloads))

    def _keep(self, future: Future[Any]) -> None:
        self._futures = [f for f in self._futures if not f.done() or f.exception()]
        self._futures.append(future)

    def discard(self) -> None:
        """Closes and removes a log nothing was written to."""
        if self.log is not None:
            path = self.log.path
            self.log.close()
            shutil.rmtree(path, ignore_errors=True)
            self.log = None

    def close(self) -> None:
        self.flush()
        if self.log is None:
            return
        try:
            for future in self._futures:
                future.result()
        finally:
            self.log.close(seal=True)
