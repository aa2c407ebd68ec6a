"""The event record seen from Python: kinds, sides, flags, the numpy dtype and the Arrow schema.

One record is 64 bytes (see ``rust/src/event.rs`` for the layout and the slot table).
``EVENT_DTYPE`` describes those bytes for numpy and ``EVENT_SCHEMA`` the same fields for Arrow,
so a batch converts column for column without a Python object per event. Prices, quantities
and money are fixed-point integers with ``SCALE`` units per whole.
"""

from __future__ import annotations

import enum
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from admf import _core

SCALE: Final[int] = _core.SCALE
"""Fixed-point units per whole (1e9: nine decimal places)."""

EVENT_SIZE: Final[int] = _core.EVENT_SIZE


class Kind(enum.IntEnum):
    """What an event is. The codes are part of the log format."""

    NONE = 0
    BAR = 1
    QUOTE = 2
    TRADE = 3
    BOOK_ADD = 10
    BOOK_CANCEL = 11
    BOOK_MODIFY = 12
    BOOK_EXECUTE = 13
    BOOK_CLEAR = 14
    ORDER_SUBMIT = 20
    ORDER_CANCEL = 21
    ORDER_MODIFY = 22
    ORDER_ACCEPTED = 23
    ORDER_REJECTED = 24
    ORDER_CANCELED = 25
    ORDER_EXPIRED = 26
    ORDER_MODIFIED = 27
    FILL = 28
    SIGNAL = 40
    TIMER = 41
    RISK = 42
    ERROR = 43
    CLOCK = 44
    CUSTOM = 50


class Side(enum.IntEnum):
    """The side of an order, a delta, a trade's aggressor or a fill."""

    NONE = 0
    BUY = 1
    SELL = 2


class Flag(enum.IntFlag):
    """Bits of ``Event.flags``. Part of the log format."""

    LAST = 1 << 0
    SNAPSHOT = 1 << 1
    HAS_PAYLOAD = 1 << 2
    MARKET = 1 << 3
    IOC = 1 << 4
    FOK = 1 << 5
    POST_ONLY = 1 << 6
    OWN = 1 << 7
    AGGRESSOR = 1 << 8
    INPUT = 1 << 9


# Plain ints of the hot codes: enum arithmetic costs a microsecond a time in CPython, and
# order paths run it several times per order.
BUY: Final[int] = int(Side.BUY)
SELL: Final[int] = int(Side.SELL)
F_MARKET: Final[int] = int(Flag.MARKET)
F_IOC_FOK: Final[int] = int(Flag.IOC | Flag.FOK)
F_OWN: Final[int] = int(Flag.OWN)
F_AGGRESSOR: Final[int] = int(Flag.AGGRESSOR)
F_HAS_PAYLOAD: Final[int] = int(Flag.HAS_PAYLOAD)
F_IOC: Final[int] = int(Flag.IOC)
F_FOK: Final[int] = int(Flag.FOK)
F_POST_ONLY: Final[int] = int(Flag.POST_ONLY)
K_FILL: Final[int] = int(Kind.FILL)
K_RISK: Final[int] = int(Kind.RISK)
K_ORDER_SUBMIT: Final[int] = int(Kind.ORDER_SUBMIT)
K_ORDER_CANCEL: Final[int] = int(Kind.ORDER_CANCEL)
K_ORDER_MODIFY: Final[int] = int(Kind.ORDER_MODIFY)
K_ORDER_ACCEPTED: Final[int] = int(Kind.ORDER_ACCEPTED)
K_ORDER_REJECTED: Final[int] = int(Kind.ORDER_REJECTED)
K_ORDER_CANCELED: Final[int] = int(Kind.ORDER_CANCELED)
K_ORDER_EXPIRED: Final[int] = int(Kind.ORDER_EXPIRED)
K_ORDER_MODIFIED: Final[int] = int(Kind.ORDER_MODIFIED)
K_SIGNAL: Final[int] = int(Kind.SIGNAL)
K_CUSTOM: Final[int] = int(Kind.CUSTOM)

_ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "seq": pa.uint64(),
    "ts": pa.timestamp("ns", tz="UTC"),
    "order_id": pa.int64(),
    "price": pa.int64(),
    "qty": pa.int64(),
    "aux": pa.int64(),
    "payload": pa.int64(),
    "instrument": pa.uint32(),
    "kind": pa.uint8(),
    "side": pa.uint8(),
    "flags": pa.uint16(),
}

EVENT_DTYPE: Final[np.dtype[np.void]] = np.dtype(
    {
        "names": [name for name, _, _ in _core.FIELDS],
        "formats": [code for _, _, code in _core.FIELDS],
        "offsets": [offset for _, offset, _ in _core.FIELDS],
        "itemsize": EVENT_SIZE,
    }
)
"""numpy structured dtype of one record, byte for byte the Rust layout."""

EVENT_SCHEMA: Final[pa.Schema] = pa.schema(
    [pa.field(name, _ARROW_TYPES[name], nullable=False) for name, _, _ in _core.FIELDS]
)
"""Arrow schema of a batch of records: the same fields as ``EVENT_DTYPE``, one column each
(``ts`` is a UTC nanosecond timestamp, stored as the same int64)."""

FIELD_NAMES: Final[tuple[str, ...]] = tuple(name for name, _, _ in _core.FIELDS)

FIELD_DTYPES: Final[tuple[np.dtype[np.generic], ...]] = tuple(
    np.dtype(code) for _, _, code in _core.FIELDS
)
"""numpy dtype of each column, in ``FIELD_NAMES`` order."""


EventArray = npt.NDArray[np.void]
"""A 1-D numpy array of ``EVENT_DTYPE`` records."""


to_fixed = _core.to_fixed
"""Converts a float to fixed point, rounding half away from zero (in Rust: it is on the path
of every order a strategy sizes in units)."""


def from_fixed(value: int) -> float:
    """Converts fixed point to a float (for display and statistics, never for bookkeeping)."""
    return value / SCALE


def empty_events(n: int) -> EventArray:
    """A zeroed array of ``n`` records."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def check_event_array(events: object) -> EventArray:
    """Returns ``events`` if it is a 1-D C-contiguous ``EVENT_DTYPE`` array; raises a
    ``TypeError`` or ``ValueError`` naming what was expected otherwise."""
    if not isinstance(events, np.ndarray):
        raise TypeError(
            "expected a numpy array of admf.EVENT_DTYPE or a pyarrow.RecordBatch/Table "
            f"of admf.EVENT_SCHEMA, got {type(events).__name__}"
        )
    if events.dtype != EVENT_DTYPE:
        raise TypeError(
            f"expected an array of admf.EVENT_DTYPE ({EVENT_SIZE}-byte event records with fields "
            f"{', '.join(FIELD_NAMES)}), got dtype {events.dtype}"
        )
    if events.ndim != 1:
        raise ValueError(f"expected a 1-D array of events, got shape {events.shape}")
    if not events.flags.c_contiguous:
        events = np.ascontiguousarray(events)
    return events


def _check_schema(schema: pa.Schema) -> None:
    if schema.names != list(FIELD_NAMES):
        raise TypeError(
            f"expected the columns of admf.EVENT_SCHEMA ({', '.join(FIELD_NAMES)}), "
            f"got {', '.join(schema.names)}"
        )
    for field in schema:
        want = _ARROW_TYPES[field.name]
        ok = field.type == want or (
            field.name == "ts"
            and (
                field.type == pa.int64()
                or (pa.types.is_timestamp(field.type) and field.type.unit == "ns")
            )
        )
        if not ok:
            raise TypeError(f"column {field.name!r} must be {want}, got {field.type}")


def arrow_columns(batch: pa.RecordBatch) -> list[npt.NDArray[np.generic]]:
    """Zero-copy numpy views of a record batch's columns (copies of those not aligned for
    their type), in ``FIELD_NAMES`` order; checks the schema and that no column has nulls."""
    if not batch.schema.equals(EVENT_SCHEMA):  # the fast path skips the checks by field
        _check_schema(batch.schema)
    columns: list[npt.NDArray[np.generic]] = []
    n = batch.num_rows
    for name, dtype, column in zip(FIELD_NAMES, FIELD_DTYPES, batch.columns, strict=True):
        if column.null_count:
            raise ValueError(f"column {name!r} has {column.null_count} nulls; events have none")
        buffer = column.buffers()[1]
        if buffer is None:
            columns.append(np.empty(0, dtype=dtype))
            continue
        values = np.frombuffer(buffer, dtype=dtype, count=n, offset=column.offset * dtype.itemsize)
        # Arrow asks for aligned buffers but does not enforce it; numbers are read aligned.
        columns.append(values if values.flags.aligned else values.copy())
    return columns


def to_record_batch(events: EventArray) -> pa.RecordBatch:
    """An Arrow record batch of ``EVENT_SCHEMA`` with the records of ``events``."""
    events = check_event_array(events)
    arrays = [
        pa.Array.from_buffers(
            field.type, len(events), [None, pa.py_buffer(np.ascontiguousarray(events[field.name]))]
        )
        for field in EVENT_SCHEMA
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


def from_arrow(data: pa.RecordBatch | pa.Table) -> EventArray:
    """A numpy ``EVENT_DTYPE`` array with the records of an Arrow batch or table."""
    batches = data.to_batches() if isinstance(data, pa.Table) else [data]
    out = np.empty(sum(len(b) for b in batches), dtype=EVENT_DTYPE)
    start = 0
    for batch in batches:
        columns = arrow_columns(batch)
        end = start + len(batch)
        for name, column in zip(FIELD_NAMES, columns, strict=True):
            out[name][start:end] = column
        start = end
    return out
