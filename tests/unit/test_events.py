"""The event record: the numpy dtype and Arrow schema match the Rust layout byte for byte."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

import admf
from admf import _core
from admf.events import FIELD_NAMES


def test_dtype_matches_the_rust_layout() -> None:
    assert admf.EVENT_DTYPE.itemsize == _core.EVENT_SIZE == 64
    for name, offset, code in _core.FIELDS:
        dtype, dtype_offset = admf.EVENT_DTYPE.fields[name][:2]
        assert dtype_offset == offset
        assert dtype == np.dtype(code)


def test_schema_has_the_same_fields_and_widths() -> None:
    assert admf.EVENT_SCHEMA.names == list(FIELD_NAMES)
    for field in admf.EVENT_SCHEMA:
        assert field.type.bit_width // 8 == admf.EVENT_DTYPE.fields[field.name][0].itemsize
        assert not field.nullable


def test_kinds_and_flags_match_the_compiled_core() -> None:
    assert {k.name: int(k) for k in admf.Kind} == dict(_core.KINDS)
    assert {f.name: int(f) for f in admf.Flag} == dict(_core.FLAGS)


def test_event_bytes_are_the_dtype_bytes() -> None:
    event = admf.Event(
        admf.Kind.FILL,
        123,
        instrument=7,
        order_id=-5,
        side=admf.Side.SELL,
        price=101 * admf.SCALE,
        qty=3,
        aux=-1,
        payload=99,
        flags=admf.Flag.OWN | admf.Flag.LAST,
        seq=2**64 - 1,
    )
    row = np.frombuffer(event.to_bytes(), dtype=admf.EVENT_DTYPE)[0]
    for name in FIELD_NAMES:
        # Prices and quantities read in units; their `_fx` twins are the record's integers.
        assert row[name] == getattr(event, f"{name}_fx", getattr(event, name)), name
    assert admf.Event.from_bytes(row.tobytes()) == event


def test_event_named_slots_for_bars_and_quotes() -> None:
    bar = admf.Event(admf.Kind.BAR, price=4, qty=5, aux=1, order_id=2, payload=3)
    assert (bar.open_fx, bar.high_fx, bar.low_fx, bar.close_fx, bar.volume_fx) == (1, 2, 3, 4, 5)
    quote = admf.Event(admf.Kind.QUOTE, price=10, qty=1, aux=11, order_id=2)
    assert (quote.bid_fx, quote.bid_size_fx, quote.ask_fx, quote.ask_size_fx) == (10, 1, 11, 2)
    # A strategy reads them in units.
    unit = admf.Event(admf.Kind.BAR, price=12_340_000_000, qty=5 * admf.SCALE, aux=admf.SCALE)
    assert (unit.close, unit.volume, unit.open, unit.price, unit.qty) == (
        12.34,
        5.0,
        1.0,
        12.34,
        5.0,
    )


def test_event_is_immutable_hashable_and_picklable() -> None:
    event = admf.Event(admf.Kind.TRADE, 1, price=5)
    with pytest.raises(AttributeError):
        event.price = 6  # type: ignore[misc]
    assert hash(event) == hash(admf.Event(admf.Kind.TRADE, 1, price=5))
    assert pickle.loads(pickle.dumps(event)) == event
    assert event.replace(price=6).price_fx == 6
    assert event.price_fx == 5
    assert "TRADE" in repr(event)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": 99}, "unknown event kind 99"),
        ({"kind": 1, "side": 3}, "unknown side 3"),
    ],
)
def test_event_rejects_unknown_codes(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        admf.Event(**kwargs)


def test_event_rejects_out_of_range_values() -> None:
    with pytest.raises(OverflowError):
        admf.Event(admf.Kind.TRADE, price=2**63)
    with pytest.raises(ValueError, match="64 bytes"):
        admf.Event.from_bytes(b"short")


def test_fixed_point_conversions() -> None:
    assert admf.to_fixed(1.5) == 1_500_000_000
    assert admf.to_fixed(-0.1) == -100_000_000
    assert admf.from_fixed(2_250_000_000) == 2.25
    with pytest.raises(ValueError, match="fixed point"):
        admf.to_fixed(float("nan"))


def test_arrow_round_trip_keeps_every_bit() -> None:
    events = admf.empty_events(3)
    events["seq"] = [0, 1, 2**64 - 1]
    events["ts"] = [-(2**63), 0, 2**63 - 1]
    events["flags"] = [0, 1, 2**16 - 1]
    batch = admf.to_record_batch(events)
    assert batch.schema == admf.EVENT_SCHEMA
    assert batch.column("ts").type == pa.timestamp("ns", tz="UTC")
    assert admf.from_arrow(batch).tobytes() == events.tobytes()
    assert admf.from_arrow(pa.Table.from_batches([batch, batch])).tobytes() == events.tobytes() * 2


def test_from_arrow_names_what_is_wrong() -> None:
    batch = admf.to_record_batch(admf.empty_events(2))
    with pytest.raises(TypeError, match=r"columns of admf\.EVENT_SCHEMA"):
        admf.from_arrow(batch.drop_columns(["flags"]))
    wrong_type = batch.set_column(3, "price", pa.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="column 'price' must be int64, got double"):
        admf.from_arrow(wrong_type)
    with_null = batch.set_column(3, "price", pa.array([1, None], type=pa.int64()))
    with pytest.raises(ValueError, match="column 'price' has 1 nulls"):
        admf.from_arrow(with_null)
    micro = batch.set_column(1, "ts", pa.array([1, 2], type=pa.timestamp("us")))
    with pytest.raises(TypeError, match="column 'ts'"):
        admf.from_arrow(micro)


def test_sliced_arrow_batches_respect_their_offset() -> None:
    events = admf.empty_events(10)
    events["seq"] = np.arange(10)
    batch = admf.to_record_batch(events).slice(3, 4)
    assert list(admf.from_arrow(batch)["seq"]) == [3, 4, 5, 6]
