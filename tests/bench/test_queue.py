"""Queue figures through Python (run by `make bench`; disabled in the test run).

The same operations as the criterion bench `queue/pair_same_thread`, so the cost of crossing
into Python is visible, and `queue.Queue` / `collections.deque` doing the same work.
"""

from __future__ import annotations

import collections
import queue
from typing import Any

import pytest

import admf
from admf import Event, EventQueue, Kind

PAIRS = 100_000
BATCH = 65_536


def _pairs(push: Any, pop: Any) -> None:
    event = Event(Kind.TRADE, 1, price=1)
    for _ in range(PAIRS):
        push(event)
        pop()


@pytest.fixture
def pairs_benchmark(benchmark: Any) -> Any:
    benchmark.extra_info["elements"] = PAIRS
    return benchmark


def test_queue_push_pop_one(pairs_benchmark: Any) -> None:
    q = EventQueue(1024)
    pairs_benchmark.pedantic(_pairs, args=(q.push, q.pop), rounds=15, warmup_rounds=1)
    assert q.pop() is None


def test_stdlib_queue_pair(pairs_benchmark: Any) -> None:
    q: queue.Queue[Event] = queue.Queue()
    pairs_benchmark.pedantic(_pairs, args=(q.put_nowait, q.get_nowait), rounds=5)


def test_deque_pair(pairs_benchmark: Any) -> None:
    d: collections.deque[Event] = collections.deque()
    pairs_benchmark.pedantic(_pairs, args=(d.append, d.popleft), rounds=15)


def _batches(benchmark: Any, batch: Any, pop: str) -> None:
    """Pushes ``batch`` and pops it back (``pop``: the method), 50 rounds."""
    q = EventQueue(BATCH)
    pop_method = getattr(q, pop)

    def run() -> None:
        q.push_batch(batch)
        pop_method()

    benchmark.extra_info["elements"] = BATCH
    benchmark.pedantic(run, rounds=50, warmup_rounds=2)


def test_queue_batch_numpy(benchmark: Any) -> None:
    _batches(benchmark, admf.empty_events(BATCH), "pop_batch")


def test_queue_batch_arrow(benchmark: Any) -> None:
    _batches(benchmark, admf.to_record_batch(admf.empty_events(BATCH)), "pop_record_batch")


def test_queue_batch_arrow_in_numpy_out(benchmark: Any) -> None:
    _batches(benchmark, admf.to_record_batch(admf.empty_events(BATCH)), "pop_batch")
