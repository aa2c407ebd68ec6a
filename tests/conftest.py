"""Shared fixtures: strategies for random event records."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import admf

FIELD_BOUNDS = {
    "seq": (0, 2**64 - 1),
    "ts": (-(2**63), 2**63 - 1),
    "order_id": (-(2**63), 2**63 - 1),
    "price": (-(2**63), 2**63 - 1),
    "qty": (-(2**63), 2**63 - 1),
    "aux": (-(2**63), 2**63 - 1),
    "payload": (-(2**63), 2**63 - 1),
    "instrument": (0, 2**32 - 1),
    "kind": (0, 255),
    "side": (0, 255),
    "flags": (0, 2**16 - 1),
}


@st.composite
def event_arrays(draw: st.DrawFn, max_size: int = 200) -> np.ndarray:
    """Arrays of EVENT_DTYPE with any bit pattern in every field."""
    n = draw(st.integers(0, max_size))
    out = admf.empty_events(n)
    for name, (lo, hi) in FIELD_BOUNDS.items():
        values = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
        out[name] = np.array(values, dtype=out.dtype.fields[name][0])
    return out


def make_events(n: int, producer: int = 0) -> np.ndarray:
    """``n`` trades numbered 0..n-1 in ``seq``, tagged with ``producer`` in ``instrument``."""
    out = admf.empty_events(n)
    out["seq"] = np.arange(n, dtype=np.uint64)
    out["kind"] = admf.Kind.TRADE
    out["instrument"] = producer
    out["price"] = np.arange(n) * admf.SCALE
    return out
