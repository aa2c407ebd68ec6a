"""hypothesis: any sequence of appends (plain, sequenced with overlaps, async, with payloads),
seals and reopens reads back exactly what was written, and SQL agrees."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from admf import EventLog, empty_events
from admf.errors import AdmfError
from admf.events import FIELD_NAMES
from admf.log import LogOptions, SeqRange


def make(first: int, n: int, salt: int) -> np.ndarray:
    ev = empty_events(n)
    i = np.arange(first, first + n, dtype=np.int64)
    ev["ts"] = i * 10 + salt
    ev["kind"] = (i * 7 + salt) % 60
    ev["price"] = i * 1_000_003 - salt
    ev["qty"] = salt
    ev["instrument"] = (i % 4).astype(np.uint32)
    return ev


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="admf-log-hyp-"))
        self.options = LogOptions(group_events=7, segment_events=20, group_ms=0.5)
        self.log = EventLog.create(self.root, "h", options=self.options)
        self.events = empty_events(0)  # the model: what the log must hold, seqs included
        self.payloads: list[bytes | None] = []

    def _model_append(self, ev: np.ndarray, payloads: list[bytes | None]) -> None:
        ev = ev.copy()
        ev["seq"] = np.arange(len(self.events) + 1, len(self.events) + 1 + len(ev))
        self.events = np.concatenate([self.events, ev])
        self.payloads += payloads

    @rule(n=st.integers(0, 30), salt=st.integers(0, 5), with_payloads=st.booleans())
    def append(self, n: int, salt: int, with_payloads: bool) -> None:
        ev = make(len(self.events) + 1, n, salt)
        payloads = [bytes([salt]) * (k % 3) if k % 2 else None for k in range(n)]
        got = self.log.append(ev, payloads=payloads if with_payloads else None)
        first = len(self.events) + 1
        assert got == SeqRange(first, first + n - 1)
        if with_payloads:
            ev["flags"] |= np.array([4 if p is not None else 0 for p in payloads], np.uint16)
        self._model_append(ev, payloads if with_payloads else [None] * n)

    @rule(sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5), salt=st.integers(0, 5))
    def append_async(self, sizes: list[int], salt: int) -> None:
        futures = []
        first = len(self.events) + 1
        for n in sizes:
            ev = make(first, n, salt)
            futures.append(self.log.append_async(ev))
            self._model_append(ev, [None] * n)
            first += n
        results = [f.result(timeout=10) for f in futures]
        assert [r.count for r in results] == sizes

    @precondition(lambda self: len(self.events) > 0)
    @rule(back=st.integers(1, 40), extra=st.integers(0, 10), salt=st.integers(0, 5))
    def append_sequenced_with_overlap(self, back: int, extra: int, salt: int) -> None:
        back = min(back, len(self.events))
        redo = self.events[len(self.events) - back :].copy()
        new = make(len(self.events) + 1, extra, salt)
        new["seq"] = np.arange(len(self.events) + 1, len(self.events) + 1 + extra)
        stored = self.payloads[len(self.events) - back :]
        batch = np.concatenate([redo, new])
        if any(p is not None for p in stored):
            # the same seq without its payload is different content: refused, nothing stored
            with pytest.raises(AdmfError, match="different content"):
                self.log.append(batch)
            got = self.log.append(batch, payloads=stored + [None] * extra)
        else:
            got = self.log.append(batch)
        assert got == SeqRange(int(redo["seq"][0]), len(self.events) + extra)
        self._model_append(new, [None] * extra)

    @rule()
    def seal(self) -> None:
        self.log.seal()
        assert not [p for p in (self.log.path / "tail").iterdir() if p.stat().st_size > 16]

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = EventLog.open(self.log.path, options=self.options)
        assert self.log.recovery == []

    @invariant()
    def reads_back_exactly(self) -> None:
        table = self.log.read()
        assert len(self.log) == len(self.events)
        got = table.select(list(FIELD_NAMES))
        want = pa.Table.from_batches([_batch(self.events)])
        assert got.equals(want)
        assert table.column("payload_data").to_pylist() == self.payloads

    @invariant()
    def sql_agrees(self) -> None:
        if len(self.events) % 3:  # SQL is slower: check a share of the steps
            return
        row = self.log.sql("SELECT count(*) AS n, coalesce(sum(price), 0) AS s FROM events")
        assert row.to_pylist() == [{"n": len(self.events), "s": int(self.events["price"].sum())}]

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _batch(ev: np.ndarray) -> pa.RecordBatch:
    from admf import to_record_batch

    return to_record_batch(ev)


LogMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogMachine = LogMachine.TestCase
