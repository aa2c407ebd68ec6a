"""Readers for bar, quote and trade files: CSV and Parquet into ``EVENT_DTYPE`` arrays.

``read_market_data(path)`` detects the format from the file's header (or Parquet schema) and
returns ``(kind, events)``; ``read_bars``, ``read_quotes`` and ``read_trades`` do the same and
check the kind. ``detect_format(path)`` tells what a file is without reading it all. An unknown
layout raises ``AdmfError`` naming the file and the columns found.

Formats understood (those of ``data/market/`` in the project's shared data):

============================  ======  ============================================  ========
format                        kind    header                                        stamped
============================  ======  ============================================  ========
``backtrader-daily``          bar     ``Date,Open,High,Low,Close,Adj Close,Volume``  day
                                      or ``...,Volume,OpenInterest`` with dates
``backtrader-intraday``       bar     ``Date,Open,...,OpenInterest`` but rows of     close
                                      ``date,time,o,h,l,c,v,oi``
``backtrader-datetime``       bar     ``Datetime,Open,High,Low,Close,Volume,...``    close
``nautilus-ohlc``             bar     ``timestamp,open,high,low,close`` (FXCM)       open
``nautilus-ohlcv``            bar     ``timestamp,open,high,low,close,volume`` (FTX) open
``nautilus-bid-ask``          quote   ``timestamp,bid,ask`` (TrueFX)                 -
``nautilus-quote-ticks``      quote   no header: ``YYYYMMDD HHMMSSmmm,bid,ask,vol``  -
``binance-quotes`` (Parquet)  quote   ``timestamp, ask_size, ask, bid_size, bid``    -
``binance-trades`` (Parquet)  trade   ``timestamp, trade_id, price, quantity,        -
                                      buyer_maker``
============================  ======  ============================================  ========

Slots (see ``rust/src/event.rs``): a bar has ``price`` = close, ``qty`` = volume, ``aux`` =
open, ``order_id`` = high, ``payload`` = low; a quote ``price`` = bid, ``qty`` = bid size,
``aux`` = ask, ``order_id`` = ask size; a trade ``price``, ``qty``, ``side`` = the aggressor
(Binance's ``buyer_maker`` means the seller aggressed) and ``order_id`` = the trade id.

Time: ``ts`` is nanoseconds since the epoch, UTC. **A bar is stamped at its close**, the end
of the half-open interval ``[open, open + interval)`` it covers, so nothing in a bar is
visible before the bar is complete: a daily bar of 1995-01-03 has ``ts`` = 1995-01-04 00:00
(in ``tz``), a one-minute bar opening at 00:00 has ``ts`` = 00:01. Files that stamp bars at
their open (the ``stamped`` column above) are shifted by the bar interval; the open time is
``ts - interval`` (``bar_open_ts``), where ``MarketData.interval_ns`` is the interval (one
day for daily bars, else the smallest positive spacing of the file's timestamps, 0 for
backtrader's tick rows). Timestamps without a zone are read in ``tz`` (default UTC);
timestamps with an offset keep it.

Numbers are converted to fixed point exactly: CSV decimals are parsed by Arrow as
``decimal128(38, 9)`` whose unscaled integer *is* the fixed-point value (no float round trip;
a file with float artifacts beyond 9 decimals, such as ``218102.59507500002``, is parsed
exactly at 18 decimals and rounded half away from zero to 9). Parquet doubles are rounded to
the nearest 1e-9, which recovers the decimal the exchange sent for any price with at most 9
decimals below about 9e6. Rows are returned in time order (a stable sort when the file is
not sorted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from admf.errors import AdmfError
from admf.events import EVENT_DTYPE, SCALE, EventArray, Kind, Side

DAY_NS: Final[int] = 86_400 * 1_000_000_000
_FIXED: Final[pa.DataType] = pa.decimal128(38, 9)
_I64_MAX: Final[int] = 2**63 - 1


@dataclass(frozen=True, slots=True)
class MarketFormat:
    """A file layout the readers understand."""

    name: str
    kind: Kind
    description: str
    stamped: str
    """Where the file's timestamps sit in a bar: ``"open"``, ``"close"``, ``"day"`` (dates
    only) or ``"-"`` (not bars)."""


FORMATS: Final[dict[str, MarketFormat]] = {
    f.name: f
    for f in (
        MarketFormat("backtrader-daily", Kind.BAR, "backtrader/Yahoo daily OHLCV", "day"),
        MarketFormat(
            "backtrader-intraday", Kind.BAR, "backtrader intraday OHLCV (date,time,...)", "close"
        ),
        MarketFormat("backtrader-datetime", Kind.BAR, "backtrader OHLCV with datetimes", "close"),
        MarketFormat("nautilus-ohlc", Kind.BAR, "OHLC bars without volume (FXCM)", "open"),
        MarketFormat("nautilus-ohlcv", Kind.BAR, "OHLCV bars (FTX)", "open"),
        MarketFormat("nautilus-bid-ask", Kind.QUOTE, "timestamp,bid,ask quotes (TrueFX)", "-"),
        MarketFormat(
            "nautilus-quote-ticks", Kind.QUOTE, "headerless YYYYMMDD HHMMSSmmm,bid,ask,volume", "-"
        ),
        MarketFormat("binance-quotes", Kind.QUOTE, "Binance book ticker (Parquet)", "-"),
        MarketFormat("binance-trades", Kind.TRADE, "Binance trades (Parquet)", "-"),
    )
}


@dataclass(frozen=True, slots=True)
class MarketData:
    """What ``load_market_data`` read: the events and how they were made."""

    format: MarketFormat
    events: EventArray
    interval_ns: int
    """The bar interval (0 for quotes, trades and tick rows); ``ts - interval_ns`` is a bar's
    open time."""

    @property
    def kind(self) -> Kind:
        return self.format.kind


_QUOTE_TICK_LINE: Final[re.Pattern[str]] = re.compile(r"^\d{8} \d{9},")
_TIME_FIELD: Final[re.Pattern[str]] = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")


def _header_key(names: list[str]) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in names)


_CSV_HEADERS: Final[dict[tuple[str, ...], str]] = {
    ("date", "open", "high", "low", "close", "adj close", "volume"): "backtrader-daily",
    ("date", "open", "high", "low", "close", "volume", "openinterest"): "backtrader-daily",
    ("datetime", "open", "high", "low", "close", "volume", "openinterest"): "backtrader-datetime",
    ("timestamp", "open", "high", "low", "close"): "nautilus-ohlc",
    ("timestamp", "open", "high", "low", "close", "volume"): "nautilus-ohlcv",
    ("timestamp", "bid", "ask"): "nautilus-bid-ask",
}

_PARQUET_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "binance-quotes": frozenset({"timestamp", "ask_size", "ask", "bid_size", "bid"}),
    "binance-trades": frozenset({"timestamp", "trade_id", "price", "quantity", "buyer_maker"}),
}


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


def _expected() -> str:
    return "; ".join(f"{f.name} ({f.description})" for f in FORMATS.values())


def detect_format(path: str | Path) -> MarketFormat:
    """The format of a market data file, from its header or Parquet schema."""
    path = Path(path)
    if _is_parquet(path):
        try:
            names = pq.read_schema(path).names
        except (pa.ArrowException, OSError) as exc:
            raise AdmfError(f"{path}: not a readable Parquet file: {exc}") from exc
        for name, needed in _PARQUET_COLUMNS.items():
            if needed <= set(names):
                return FORMATS[name]
        raise AdmfError(
            f"{path}: unknown market data format; Parquet columns found: {', '.join(names)}; "
            f"expected one of: {_expected()}"
        )
    with path.open("rb") as raw:
        head = raw.read(4096)
    if b"\0" in head or head[:4] == b"\x28\xb5\x2f\xfd":
        raise AdmfError(
            f"{path}: a binary file, not a CSV or Parquet market data file; "
            f"expected one of: {_expected()}"
        )
    lines = head.decode("utf-8", errors="replace").splitlines()
    header = lines[0] if lines else ""
    first = lines[1] if len(lines) > 1 else ""
    if _QUOTE_TICK_LINE.match(header):
        return FORMATS["nautilus-quote-ticks"]
    names = header.split(",")
    found = _CSV_HEADERS.get(_header_key(names))
    if found == "backtrader-daily" and len(names) == 7:
        row = first.split(",")
        # backtrader's intraday files keep the daily header but add a time column.
        if len(row) == 8 and _TIME_FIELD.match(row[1].strip()):
            found = "backtrader-intraday"
    if found is None:
        shown = header if len(header) <= 200 else header[:200] + "..."
        raise AdmfError(
            f"{path}: unknown market data format; columns found: {shown or '(empty file)'}; "
            f"expected one of: {_expected()}"
        )
    return FORMATS[found]


_WIDE: Final[pa.DataType] = pa.decimal128(38, 18)


def _read_csv(
    path: Path,
    fmt: MarketFormat,
    names: list[str],
    types: dict[str, pa.DataType],
    *,
    header: bool = True,
) -> pa.Table:
    read = pa_csv.ReadOptions(column_names=names, skip_rows=1 if header else 0)

    def attempt(column_types: dict[str, pa.DataType]) -> pa.Table:
        convert = pa_csv.ConvertOptions(
            column_types=column_types, include_columns=list(column_types)
        )
        return pa_csv.read_csv(path, read_options=read, convert_options=convert)

    # Some files carry float artifacts beyond 9 decimals (218102.59507500002): Arrow refuses
    # to rescale them, naming the column; that column is parsed exactly at 18 decimals and
    # rounded to 9 (half away from zero, as to_fixed), the others stay exact.
    current = dict(types)
    try:
        while True:
            try:
                table = attempt(current)
                break
            except pa.ArrowInvalid as exc:
                lost = re.search(r"column #(\d+).*data loss", str(exc))
                if lost is None:
                    raise
                name = names[int(lost.group(1))]
                if current.get(name) != _FIXED:
                    raise
                current[name] = _WIDE
        for i, name in enumerate(table.column_names):
            if current[name] == _WIDE:
                rounded = pc.round(table.column(i), ndigits=9, round_mode="half_towards_infinity")
                table = table.set_column(i, name, rounded.cast(_FIXED))
        return table
    except pa.ArrowInvalid as exc:
        raise AdmfError(f"{path}: cannot read as {fmt.name} ({fmt.description}): {exc}") from exc


def _fixed(path: Path, table: pa.Table, name: str) -> npt.NDArray[np.int64]:
    """A column as fixed-point int64: decimals exactly, floats rounded to the nearest 1e-9."""
    column = table.column(name)
    if column.null_count:
        raise AdmfError(f"{path}: column {name!r} has {column.null_count} empty values")
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_decimal(array.type):
        if array.type != _FIXED:
            array = array.cast(_FIXED)
        buffer = array.buffers()[1]
        assert buffer is not None
        words = np.frombuffer(
            buffer, dtype=np.int64, count=2 * len(array), offset=16 * array.offset
        )
        low, high = words[0::2], words[1::2]
        if not np.array_equal(high, low >> 63):
            raise AdmfError(
                f"{path}: column {name!r} has a value beyond the fixed-point range "
                f"(±{_I64_MAX / SCALE:.3e})"
            )
        return low.copy()
    if pa.types.is_floating(array.type):
        values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        if not np.all(np.isfinite(values)) or np.any(np.abs(values) >= _I64_MAX / SCALE):
            raise AdmfError(f"{path}: column {name!r} has a non-finite or out-of-range value")
        rounded: npt.NDArray[np.int64] = np.rint(values * SCALE).astype(np.int64)
        return rounded
    if pa.types.is_integer(array.type):
        ints: npt.NDArray[np.int64] = np.asarray(
            array.to_numpy(zero_copy_only=False), dtype=np.int64
        )
        if np.any(np.abs(ints) > _I64_MAX // SCALE):
            raise AdmfError(f"{path}: column {name!r} has a value beyond the fixed-point range")
        return ints * SCALE
    raise AdmfError(f"{path}: column {name!r} is {array.type}; expected numbers")


def _ns(column: pa.ChunkedArray | pa.Array, tz: str | None) -> npt.NDArray[np.int64]:
    """Timestamps as int64 ns UTC; naive ones are read in ``tz`` (UTC when None)."""
    typ = column.type
    if pa.types.is_date(typ):
        column = column.cast(pa.timestamp("ns"))
        typ = column.type
    if typ.unit != "ns":
        column = column.cast(pa.timestamp("ns", tz=typ.tz))
    if typ.tz is None and tz is not None:
        column = pc.assume_timezone(column, tz, ambiguous="earliest", nonexistent="earliest")
    out: npt.NDArray[np.int64] = np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
    return out


def _min_spacing(ts: npt.NDArray[np.int64]) -> int:
    if len(ts) < 2:
        return 0
    diffs = np.diff(ts)
    positive = diffs[diffs > 0]
    return int(positive.min()) if len(positive) else 0


_OHLCV: Final[list[str]] = ["open", "high", "low", "close", "volume"]


def _bars(
    path: Path, fmt: MarketFormat, tz: str | None, interval_ns: int | None
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]], int]:
    dec = dict.fromkeys(_OHLCV, _FIXED)
    if fmt.name == "backtrader-daily":
        with path.open(encoding="utf-8") as f:
            header = f.readline().strip().lower().split(",")
        names = ["date", "open", "high", "low", "close", *[h.replace(" ", "_") for h in header[5:]]]
        table = _read_csv(path, fmt, names, {"date": pa.timestamp("ns"), **dec})
        day = pc.add(table.column("date"), pa.scalar(DAY_NS, pa.duration("ns")))
        ts = _ns(day, tz)
        interval = DAY_NS
    elif fmt.name == "backtrader-intraday":
        names = ["date", "time", *_OHLCV, "openinterest"]
        types = {"date": pa.timestamp("ns"), "time": pa.time64("ns"), **dec}
        table = _read_csv(path, fmt, names, types)
        local = pc.add(
            table.column("date"), table.column("time").cast(pa.int64()).cast(pa.duration("ns"))
        )
        ts = _ns(local, tz)
        interval = _min_spacing(ts)
    else:
        with_volume = fmt.name != "nautilus-ohlc"
        names = ["timestamp", *(_OHLCV if with_volume else _OHLCV[:4])]
        if fmt.name == "backtrader-datetime":
            names = ["timestamp", *_OHLCV, "openinterest"]
        stamp_type = pa.timestamp("ns")
        with path.open(encoding="utf-8") as f:
            f.readline()
            sample = f.readline().split(",", 1)[0]
        if re.search(r"(Z|[+-]\d{2}:?\d{2})$", sample.strip()):
            stamp_type = pa.timestamp("ns", tz="UTC")
        types = {"timestamp": stamp_type, **{n: _FIXED for n in names[1:6]}}
        table = _read_csv(path, fmt, names, types)
        ts = _ns(table.column("timestamp"), tz)
        interval = 0 if fmt.name == "backtrader-datetime" else _min_spacing(ts)
    if interval_ns is not None:
        interval = interval_ns
    if fmt.stamped == "open":
        ts = ts + interval
    values = {n: _fixed(path, table, n) for n in _OHLCV[:4]}
    values["volume"] = (
        _fixed(path, table, "volume")
        if "volume" in table.column_names
        else np.zeros(len(ts), dtype=np.int64)
    )
    return ts, values, interval


def _quotes(
    path: Path, fmt: MarketFormat, tz: str | None
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]]]:
    if fmt.name == "binance-quotes":
        table = _read_parquet(path, fmt, ["timestamp", "bid", "bid_size", "ask", "ask_size"])
        ts = _ns(table.column("timestamp"), tz)
        return ts, {n: _fixed(path, table, n) for n in ("bid", "bid_size", "ask", "ask_size")}
    if fmt.name == "nautilus-bid-ask":
        with path.open(encoding="utf-8") as f:
            f.readline()
            sample = f.readline().split(",", 1)[0].strip()
        aware = re.search(r"(Z|[+-]\d{2}:?\d{2})$", sample) is not None
        stamp = pa.timestamp("ns", tz="UTC") if aware else pa.timestamp("ns")
        table = _read_csv(
            path,
            fmt,
            ["timestamp", "bid", "ask"],
            {"timestamp": stamp, "bid": _FIXED, "ask": _FIXED},
        )
        ts = _ns(table.column("timestamp"), tz)
    else:  # nautilus-quote-ticks
        table = _read_csv(
            path,
            fmt,
            ["timestamp", "bid", "ask", "volume"],
            {"timestamp": pa.string(), "bid": _FIXED, "ask": _FIXED},
            header=False,
        )
        text = table.column("timestamp")
        try:
            seconds = pc.strptime(
                pc.utf8_slice_codeunits(text, 0, 15), format="%Y%m%d %H%M%S", unit="ns"
            )
            millis = pc.utf8_slice_codeunits(text, 15, 18).cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise AdmfError(
                f"{path}: bad timestamp in {fmt.name} ({fmt.description}): {exc}"
            ) from exc
        ts = _ns(seconds, tz) + np.asarray(millis.to_numpy(), dtype=np.int64) * 1_000_000
    zeros = np.zeros(len(ts), dtype=np.int64)
    return ts, {
        "bid": _fixed(path, table, "bid"),
        "bid_size": zeros,
        "ask": _fixed(path, table, "ask"),
        "ask_size": zeros,
    }


def _read_parquet(path: Path, fmt: MarketFormat, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise AdmfError(f"{path}: cannot read as {fmt.name}: {exc}") from exc


def _trades(
    path: Path, fmt: MarketFormat, tz: str | None
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]], npt.NDArray[np.uint8]]:
    table = _read_parquet(path, fmt, ["timestamp", "trade_id", "price", "quantity", "buyer_maker"])
    ts = _ns(table.column("timestamp"), tz)
    maker = table.column("buyer_maker")
    if pa.types.is_string(maker.type) or pa.types.is_large_string(maker.type):
        lowered = pc.utf8_lower(maker)
        if not pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py():
            raise AdmfError(f"{path}: column 'buyer_maker' must hold True/False")
        maker = pc.equal(lowered, "true")
    buyer_maker = np.asarray(maker.to_numpy(zero_copy_only=False), dtype=bool)
    # The buyer was the resting (maker) order: the seller crossed the spread.
    side = np.where(buyer_maker, np.uint8(Side.SELL), np.uint8(Side.BUY)).astype(np.uint8)
    trade_id = table.column("trade_id")
    ids = (
        np.asarray(trade_id.to_numpy(), dtype=np.int64)
        if pa.types.is_integer(trade_id.type) and trade_id.null_count == 0
        else np.zeros(len(ts), dtype=np.int64)
    )
    return (
        ts,
        {"price": _fixed(path, table, "price"), "qty": _fixed(path, table, "quantity"), "id": ids},
        side,
    )


_BLOCK: Final[int] = 1 << 14


def _word(field: str) -> int:
    """Index of the 8-byte word of a record where ``field`` starts."""
    fields = EVENT_DTYPE.fields
    assert fields is not None
    return int(fields[field][1]) // 8


def _events(
    kind: Kind,
    instrument: int,
    ts: npt.NDArray[np.int64],
    slots: dict[str, npt.NDArray[np.int64]],
    side: npt.NDArray[np.uint8] | None = None,
) -> EventArray:
    """Records from columns. The 64-byte rows are filled in cache-sized blocks (a column at a
    time over the whole array would stream the 64 MB of a million records eight times)."""
    n = len(ts)
    events = np.empty(n, dtype=EVENT_DTYPE)
    words = events.view("<i8").reshape(n, 8)
    names = ("ts", "order_id", "price", "qty", "aux", "payload")
    offsets = [_word(name) for name in names]
    zeros = np.zeros(min(n, _BLOCK), dtype=np.int64)
    columns = [ts, *(slots.get(name, zeros) for name in names[1:])]
    # instrument (u4), kind (u1), side (u1) and flags (u2) share the last 8 bytes.
    tail_offset = _word("instrument")
    base = np.int64(instrument | (int(kind) << 32))
    tail = (
        np.full(min(n, _BLOCK), base, dtype=np.int64)
        if side is None
        else base | (side.astype(np.int64) << np.int64(40))
    )
    seq_offset = _word("seq")
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        block = words[start:stop]
        block[:, seq_offset] = 0
        for offset, column in zip(offsets, columns, strict=True):
            block[:, offset] = zeros[: stop - start] if column is zeros else column[start:stop]
        block[:, tail_offset] = tail[: stop - start] if side is None else tail[start:stop]
    return events


def _in_time_order(events: EventArray) -> EventArray:
    ts = events["ts"]
    if len(ts) > 1 and not np.all(ts[1:] >= ts[:-1]):
        return events[np.argsort(ts, kind="stable")]
    return events


def load_market_data(
    path: str | Path,
    *,
    instrument: int = 0,
    tz: str | None = None,
    interval_ns: int | None = None,
    fmt: str | None = None,
) -> MarketData:
    """Reads a bar, quote or trade file into events, with its format and bar interval.

    ``instrument`` is written into every event; ``tz`` is the time zone of naive timestamps
    (UTC when None); ``interval_ns`` overrides the inferred bar interval; ``fmt`` names a
    format of ``FORMATS`` instead of detecting it.
    """
    path = Path(path)
    if not 0 <= instrument < 2**32:
        raise AdmfError(f"instrument must be in 0..2**32-1, got {instrument}")
    if fmt is None:
        spec = detect_format(path)
    elif fmt in FORMATS:
        spec = FORMATS[fmt]
    else:
        raise AdmfError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    interval = 0
    if spec.kind == Kind.BAR:
        ts, v, interval = _bars(path, spec, tz, interval_ns)
        slots = {
            "price": v["close"],
            "qty": v["volume"],
            "aux": v["open"],
            "order_id": v["high"],
            "payload": v["low"],
        }
        events = _events(Kind.BAR, instrument, ts, slots)
    elif spec.kind == Kind.QUOTE:
        ts, v = _quotes(path, spec, tz)
        slots = {
            "price": v["bid"],
            "qty": v["bid_size"],
            "aux": v["ask"],
            "order_id": v["ask_size"],
        }
        events = _events(Kind.QUOTE, instrument, ts, slots)
    else:
        ts, v, side = _trades(path, spec, tz)
        slots = {"price": v["price"], "qty": v["qty"], "order_id": v["id"]}
        events = _events(Kind.TRADE, instrument, ts, slots, side)
    return MarketData(spec, _in_time_order(events), interval)


def read_market_data(
    path: str | Path, *, instrument: int = 0, tz: str | None = None
) -> tuple[Kind, EventArray]:
    """``(kind, events)`` of a bar, quote or trade file, its format detected by its header."""
    data = load_market_data(path, instrument=instrument, tz=tz)
    return data.kind, data.events


def _read_kind(
    path: str | Path, kind: Kind, instrument: int, tz: str | None, interval_ns: int | None = None
) -> EventArray:
    data = load_market_data(path, instrument=instrument, tz=tz, interval_ns=interval_ns)
    if data.kind != kind:
        raise AdmfError(
            f"{path}: holds {data.kind.name.lower()}s ({data.format.name}), "
            f"expected {kind.name.lower()}s"
        )
    return data.events


def read_bars(
    path: str | Path,
    *,
    instrument: int = 0,
    tz: str | None = None,
    interval_ns: int | None = None,
) -> EventArray:
    """Bars (``Kind.BAR`` events stamped at their close) from a CSV or Parquet file."""
    return _read_kind(path, Kind.BAR, instrument, tz, interval_ns)


def read_quotes(path: str | Path, *, instrument: int = 0, tz: str | None = None) -> EventArray:
    """Top-of-book quotes (``Kind.QUOTE`` events) from a CSV or Parquet file."""
    return _read_kind(path, Kind.QUOTE, instrument, tz)


def read_trades(path: str | Path, *, instrument: int = 0, tz: str | None = None) -> EventArray:
    """Trade prints (``Kind.TRADE`` events, ``side`` = aggressor) from a Parquet file."""
    return _read_kind(path, Kind.TRADE, instrument, tz)


def bar_open_ts(events: EventArray, interval_ns: int) -> npt.NDArray[np.int64]:
    """The open times of close-stamped bars: ``ts - interval_ns``."""
    out: npt.NDArray[np.int64] = events["ts"] - np.int64(interval_ns)
    return out
