"""What an append accepts, turned into the record batches the log stores.

A stored row is the 64-byte event record (the columns of ``EVENT_SCHEMA``), then
``payload_data`` (nullable bytes: the custom payload stored with its event), then any extra
columns a caller's Arrow batch brought (the schema can grow; rows from before a column existed
read back as null).

Payloads are bytes; ``str`` is stored as UTF-8 and any other JSON value (dict, list, number,
bool) as compact JSON with sorted keys. A row with a payload gets the ``HAS_PAYLOAD`` flag; the
``payload`` slot keeps whatever handle the caller put there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from admf._core import Event
from admf.events import (
    EVENT_DTYPE,
    EVENT_SCHEMA,
    FIELD_NAMES,
    EventArray,
    Flag,
    check_event_array,
    to_record_batch,
)

PAYLOAD_COLUMN: Final[str] = "payload_data"
PAYLOAD_FIELD: Final[pa.Field] = pa.field(PAYLOAD_COLUMN, pa.binary(), nullable=True)
LOG_SCHEMA: Final[pa.Schema] = pa.schema([*EVENT_SCHEMA, PAYLOAD_FIELD])
"""The columns every row of a log has (extra columns may follow)."""

Payload: TypeAlias = bytes | bytearray | memoryview | str | dict[str, Any] | list[Any] | int | float
Appendable: TypeAlias = EventArray | pa.RecordBatch | pa.Table | Event | Sequence[Event]


def encode_payload(value: Payload | None) -> bytes | None:
    """The bytes stored for a payload value (None: no payload)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"a payload must be bytes, str or a JSON value, got {type(value).__name__}: {exc}"
        ) from exc


def _events_from_objects(events: Sequence[Event]) -> EventArray:
    for i, event in enumerate(events):
        if not isinstance(event, Event):
            raise TypeError(f"expected admf.Event objects, item {i} is a {type(event).__name__}")
    raw = b"".join(event.to_bytes() for event in events)
    return np.frombuffer(raw, dtype=EVENT_DTYPE).copy()


def _check_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Checks the event columns of a caller's batch and puts the columns in log order."""
    names = batch.schema.names
    missing = [name for name in FIELD_NAMES if name not in names]
    if missing:
        raise TypeError(
            "an appended batch needs the columns of admf.EVENT_SCHEMA; missing "
            + ", ".join(missing)
        )
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for want in EVENT_SCHEMA:
        column = batch.column(want.name)
        if column.null_count:
            raise ValueError(
                f"column {want.name!r} has {column.null_count} nulls; events have none"
            )
        if column.type != want.type:
            ok = want.name == "ts" and (
                column.type == pa.int64()
                or (pa.types.is_timestamp(column.type) and column.type.unit == "ns")
            )
            if not ok:
                raise TypeError(f"column {want.name!r} must be {want.type}, got {column.type}")
            column = column.view(pa.int64()) if column.type != pa.int64() else column
            column = column.view(want.type)
        arrays.append(column)
        fields.append(want)
    if PAYLOAD_COLUMN in names:
        column = batch.column(PAYLOAD_COLUMN)
        if column.type != pa.binary():
            if not (
                pa.types.is_binary(column.type)
                or pa.types.is_string(column.type)
                or pa.types.is_large_binary(column.type)
                or pa.types.is_large_string(column.type)
            ):
                raise TypeError(f"column {PAYLOAD_COLUMN!r} must be binary, got {column.type}")
            column = column.cast(pa.binary())
    else:
        column = pa.nulls(batch.num_rows, pa.binary())
    arrays.append(column)
    fields.append(PAYLOAD_FIELD)
    for extra in batch.schema:
        if extra.name not in FIELD_NAMES and extra.name != PAYLOAD_COLUMN:
            if extra.name == "run":
                raise ValueError("column name 'run' is reserved for the run id in SQL")
            arrays.append(batch.column(extra.name))
            fields.append(extra.with_nullable(True))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def to_log_batch(
    events: Appendable, payloads: Sequence[Payload | None] | Payload | None = None
) -> pa.RecordBatch:
    """The record batch a log stores for ``events`` with their ``payloads``.

    ``events``: a numpy ``EVENT_DTYPE`` array, an Arrow batch or table with the
    ``EVENT_SCHEMA`` columns (and optionally ``payload_data`` and extra columns), one
    ``admf.Event`` or a sequence of them. ``payloads``: for one ``Event`` a single payload,
    otherwise None or one payload (or None) per event."""
    single = isinstance(events, Event)
    if single:
        batch = to_record_batch(_events_from_objects([events]))  # type: ignore[list-item]
    elif isinstance(events, np.ndarray):
        batch = to_record_batch(check_event_array(events))
    elif isinstance(events, pa.RecordBatch):
        batch = events
    elif isinstance(events, pa.Table):
        combined = events.combine_chunks()
        batches = combined.to_batches()
        batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=combined.schema)
    elif isinstance(events, Sequence):
        batch = to_record_batch(_events_from_objects(events))
    else:
        raise TypeError(
            "expected a numpy array of admf.EVENT_DTYPE, a pyarrow.RecordBatch/Table of "
            f"admf.EVENT_SCHEMA, an admf.Event or a list of them, got {type(events).__name__}"
        )
    batch = _check_columns(batch)
    if payloads is None:
        return batch
    if PAYLOAD_COLUMN in (
        events.schema.names if isinstance(events, pa.RecordBatch | pa.Table) else []
    ):
        raise ValueError(f"payloads given twice: as an argument and as a {PAYLOAD_COLUMN!r} column")
    if single:
        values: list[bytes | None] = [encode_payload(payloads)]  # type: ignore[arg-type]
    else:
        if isinstance(payloads, bytes | bytearray | memoryview | str | dict):
            raise TypeError("payloads must be a sequence with one payload (or None) per event")
        assert isinstance(payloads, Sequence)
        if len(payloads) != batch.num_rows:
            raise ValueError(f"{len(payloads)} payloads given for {batch.num_rows} events")
        values = [encode_payload(value) for value in payloads]
    data = pa.array(values, type=pa.binary())
    flags = batch.column("flags")
    has = pc.is_valid(data)
    flags = pc.if_else(
        has, pc.bit_wise_or(flags, pa.scalar(int(Flag.HAS_PAYLOAD), pa.uint16())), flags
    )
    index = batch.schema.get_field_index("flags")
    batch = batch.set_column(index, batch.schema.field("flags"), flags)
    return batch.set_column(batch.schema.get_field_index(PAYLOAD_COLUMN), PAYLOAD_FIELD, data)
