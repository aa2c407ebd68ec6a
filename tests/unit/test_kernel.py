"""The kernel: sequencing, dispatch order, timers, errors, statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import admf
from admf import Event, Kind
from admf.errors import AdmfError
from admf.kernel import SAMPLE_EVERY, Kernel


def stream(kinds: list[Kind], start: int = 1_000) -> np.ndarray:
    events = admf.empty_events(len(kinds))
    events["kind"] = [int(k) for k in kinds]
    events["ts"] = start + np.arange(len(kinds)) * 10
    return events


def collect() -> tuple[list[np.ndarray], object]:
    chunks: list[np.ndarray] = []

    def sink(events: np.ndarray, payloads: object) -> None:
        chunks.append(events.copy())

    return chunks, sink


def test_only_subscribed_inputs_reach_python_and_every_event_is_sequenced() -> None:
    chunks, sink = collect()
    k = Kernel([stream([Kind.BOOK_ADD, Kind.BAR, Kind.BOOK_ADD, Kind.BAR])], sink=sink)  # type: ignore[arg-type]
    seen: list[int] = []
    k.subscribe(Kind.BAR, lambda e: seen.append(e.seq), "bars")
    k.run()
    assert seen == [2, 4]
    out = np.concatenate(chunks)
    assert list(out["seq"]) == [1, 2, 3, 4]
    assert all(out["flags"] & admf.Flag.INPUT)
    assert k.kind_counts() == {"BAR": 2, "BOOK_ADD": 2}


def test_what_a_handler_causes_is_applied_before_the_next_handler() -> None:
    chunks, sink = collect()
    k = Kernel([stream([Kind.BAR, Kind.BAR])], sink=sink)  # type: ignore[arg-type]
    order: list[str] = []

    def first(e: Event) -> None:
        order.append(f"first {e.seq}")
        k.emit(Event(Kind.SIGNAL, 0, price=e.seq))

    k.subscribe(Kind.BAR, first, "first")
    k.subscribe(Kind.SIGNAL, lambda e: order.append(f"signal {e.seq}"), "signals")
    k.subscribe(Kind.BAR, lambda e: order.append(f"second {e.seq}"), "second")
    k.run()
    assert order == ["first 1", "signal 2", "second 1", "first 3", "signal 4", "second 3"]
    out = np.concatenate(chunks)
    assert list(out["kind"]) == [Kind.BAR, Kind.SIGNAL, Kind.BAR, Kind.SIGNAL]
    # Commands take the kernel's time and are not inputs.
    assert out["ts"][1] == out["ts"][0]
    assert not out["flags"][1] & admf.Flag.INPUT


def test_timers_fire_between_inputs_at_their_time() -> None:
    chunks, sink = collect()
    k = Kernel([stream([Kind.BAR] * 5)], sink=sink)  # type: ignore[arg-type]
    fired: list[tuple[int, int]] = []

    def on_bar(e: Event) -> None:
        if e.seq == 1:
            k.set_timer(e.ts + 25)

    k.subscribe(Kind.BAR, on_bar, "bars")
    k.subscribe(Kind.TIMER, lambda e: fired.append((e.ts, e.order_id)), "timers")
    k.run()
    assert fired == [(1_025, 1)]
    out = np.concatenate(chunks)
    assert list(out["kind"]) == [Kind.BAR] * 3 + [Kind.TIMER] + [Kind.BAR] * 2
    assert list(out["ts"]) == sorted(out["ts"])
    with pytest.raises(AdmfError, match="past"):
        k.set_timer(0)


def test_a_raising_handler_is_logged_and_the_run_goes_on() -> None:
    payloads: dict[int, object] = {}

    def sink(events: np.ndarray, chunk_payloads: list[object] | None) -> None:
        for row, p in zip(events, chunk_payloads or [None] * len(events), strict=True):
            if p is not None:
                payloads[int(row["seq"])] = p

    k = Kernel([stream([Kind.BAR] * 3)], sink=sink)
    calls = []

    def flaky(e: Event) -> None:
        calls.append(e.seq)
        if e.seq == 2:
            raise ZeroDivisionError("boom")

    sub = k.subscribe(Kind.BAR, flaky, "Flaky.on_bar")
    k.run()
    assert calls == [1, 2, 4]
    (stats,) = k.stats
    assert stats is sub.stats
    assert k.errors == 1
    assert stats.errors == 1
    assert stats.calls == 3
    error = payloads[3]
    assert isinstance(error, dict)
    assert error["handler"] == "Flaky.on_bar"
    assert error["event_seq"] == 2
    assert "ZeroDivisionError: boom" in error["traceback"]


def test_on_error_stop_ends_the_run_after_logging() -> None:
    chunks, sink = collect()
    k = Kernel([stream([Kind.BAR] * 5)], on_error="stop", sink=sink)  # type: ignore[arg-type]

    def bad(e: Event) -> None:
        if e.seq == 2:
            raise ValueError("bad bar")

    k.subscribe(Kind.BAR, bad, "bad")
    k.run()
    assert k.stopped == "bad raised ValueError: bad bar on event seq 2"
    out = np.concatenate(chunks)
    assert list(out["seq"]) == [1, 2, 3]
    assert Kind.ERROR in out["kind"]


def test_sources_merge_by_time_then_source() -> None:
    chunks, sink = collect()
    a = stream([Kind.BAR] * 3, start=0)
    b = stream([Kind.TRADE] * 3, start=5)
    b["ts"][0] = 0
    k = Kernel([a, b], sink=sink)  # type: ignore[arg-type]
    k.run()
    out = np.concatenate(chunks)
    assert list(out["kind"]) == [Kind.BAR, Kind.TRADE, Kind.BAR, Kind.TRADE, Kind.BAR, Kind.TRADE]


def test_unsorted_source_is_a_clear_error() -> None:
    bad = stream([Kind.BAR] * 3)
    bad["ts"] = [3, 2, 1]
    with pytest.raises(AdmfError, match="source 0 is not in time order: row 1"):
        Kernel([bad])


def test_handler_statistics_count_calls_and_time() -> None:
    k = Kernel([stream([Kind.BAR] * 1_000)])
    k.subscribe(Kind.BAR, lambda e: None, "noop")
    k.run()
    (stats,) = k.stats
    assert dataclasses.astuple(stats)[:3] == ("noop", "BAR", 1_000)
    assert stats.sampled_calls == 1_000 // SAMPLE_EVERY
    assert stats.ns > 0


def test_inactive_subscriptions_are_skipped_and_counted_apart() -> None:
    k = Kernel([stream([Kind.BAR] * 10)])
    seen: list[int] = []
    sub = k.subscribe(Kind.BAR, lambda e: seen.append(e.seq), "sometimes", active=False)

    def toggle(e: Event) -> None:
        sub.active = e.seq in (3, 4, 5)

    k.subscribe(Kind.BAR, toggle, "toggle")
    k.run()
    # Activated while bar 3 was being dispatched: from bar 4 on, until bar 6 switched it off.
    assert seen == [4, 5, 6]
    assert k.stats[0].calls == 3


def test_batch_handlers_get_numpy_arrays_after_each_flush() -> None:
    k = Kernel([stream([Kind.BAR, Kind.BOOK_ADD] * 50)], flush_at=32)
    batches: list[np.ndarray] = []
    k.subscribe_batches(Kind.BOOK_ADD, batches.append, "recorder")
    k.run()
    assert len(batches) > 1
    got = np.concatenate(batches)
    assert (got["kind"] == Kind.BOOK_ADD).all()
    assert len(got) == 50
    assert list(got["seq"]) == sorted(got["seq"])
    # Only batch handlers want book deltas: none crossed into Python one by one.
    assert all(s.name != "recorder" for s in k.stats)


def test_async_handlers_run_on_their_loop_without_blocking_the_run() -> None:
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    seen: list[int] = []
    done = threading.Event()

    async def forward(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.seq)
        if len(seen) == 20:
            done.set()

    k = Kernel([stream([Kind.BAR] * 20)])
    stats = k.subscribe_async(Kind.BAR, forward, "dashboard", loop)
    k.run()
    assert done.wait(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    assert sorted(seen) == list(range(1, 21))
    assert stats.calls == 20


def test_one_source_is_streamed_in_chunks_with_the_same_outputs_as_a_merged_copy() -> None:
    # A single source is read in place a chunk at a time (`Streamed` in
    # rust/src/py/kernel.rs); several are merged into a copy. The same inputs must give the
    # same run either way, across chunk boundaries, with timers due between chunks, unsorted
    # rows found wherever they are, and progress counting what is not loaded yet.
    n = 50_000
    events = stream([Kind.BAR, Kind.TRADE] * (n // 2))

    def run(sources: list[np.ndarray]) -> tuple[bytes, list[tuple[int, int]], list[int]]:
        chunks, sink = collect()
        k = Kernel(sources, sink=sink, flush_at=7_000)  # type: ignore[arg-type]
        fired: list[tuple[int, int]] = []
        left: list[int] = []
        k.progress = left.append

        def on_bar(e: Event) -> None:
            if e.seq % 4_001 == 0:
                k.set_timer(e.ts + 5)

        k.subscribe(Kind.BAR, on_bar, "bars")
        k.subscribe(Kind.TIMER, lambda e: fired.append((e.ts, e.seq)), "timers")
        k.run()
        out = np.concatenate(chunks)
        assert len(out) == n + len(fired)
        return out.tobytes(), fired, left

    streamed = run([events])
    merged = run([events, events[:0]])
    assert streamed == merged
    assert len(streamed[1]) > 5
    assert streamed[2][0] > 16_384  # the first flush: most of the source not loaded yet
    assert streamed[2][-1] == 0
    late = events.copy()
    late["ts"][40_000] = 0
    with pytest.raises(AdmfError, match="source 0 is not in time order: row 40000"):
        Kernel([late])
