"""Batch round trips keep every bit: Arrow <-> numpy <-> queue."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import admf
from tests.conftest import event_arrays


@settings(max_examples=150, deadline=None)
@given(events=event_arrays())
def test_numpy_arrow_numpy(events: np.ndarray) -> None:
    batch = admf.to_record_batch(events)
    assert admf.from_arrow(batch).tobytes() == events.tobytes()


@settings(max_examples=150, deadline=None)
@given(events=event_arrays(), via_arrow=st.booleans(), out_arrow=st.booleans())
def test_queue_round_trip(events: np.ndarray, via_arrow: bool, out_arrow: bool) -> None:
    q = admf.EventQueue(256)
    pushed = q.push_batch(admf.to_record_batch(events) if via_arrow else events)
    assert pushed == len(events)
    out = admf.from_arrow(q.pop_record_batch()) if out_arrow else q.pop_batch()
    assert out.tobytes() == events.tobytes()


@settings(max_examples=100, deadline=None)
@given(events=event_arrays(max_size=50), capacity=st.integers(1, 64))
def test_single_events_round_trip(events: np.ndarray, capacity: int) -> None:
    q = admf.EventQueue(capacity)
    out = []
    for row in events:
        event = admf.Event.from_bytes(row.tobytes())
        if not q.push(event):
            while (popped := q.pop()) is not None:
                out.append(popped.to_bytes())
            assert q.push(event)
    while (popped := q.pop()) is not None:
        out.append(popped.to_bytes())
    assert b"".join(out) == events.tobytes()
