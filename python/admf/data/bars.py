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

Time: ``ts`` is nanoseconds since the epoch, UTC. **A bar is stamped at its close**, so
nothing in a bar is visible before the bar is complete. An intraday bar covers the half-open
interval ``[open, open + interval)`` and is stamped at its end: a one-minute bar opening at
00:00 has ``ts`` = 00:01; files that stamp bars at their open (the ``stamped`` column above)
are shifted by the bar interval, and ``bar_open_ts`` gives ``ts - interval`` back. **A daily
bar is stamped at its trading date's session close** in the exchange's time zone
(``session_close``, default 16:00, in ``tz``, default ``America/New_York`` for daily files),
so a daily bar of Friday 1995-05-12 has ``ts`` = 1995-05-12 16:00 New York time and every
fill, report row and period built on it carries the date 1995-05-12.
``MarketData.interval_ns`` is the interval: one day for daily bars, else the smallest
positive spacing of the file's timestamps, 0 for backtrader's tick rows. Intraday timestamps
without a zone are read in ``tz`` (default UTC); timestamps with an offset keep it.

A file whose columns are named otherwise (a broker's export, ``Adj Close`` as the close, a
``datetime`` column in another time zone) is read with ``columns=ColumnMap.parse(
"timestamp=datetime,close=Adj Close")`` (fields not named are matched by name, case aside)
and ``tz`` for its naive timestamps; dates without a time are daily bars as above.

Numbers are converted to fixed point exactly: CSV decimals are parsed by Arrow as
``decimal128(38, 9)`` whose unscaled integer *is* the fixed-point value (no float round trip;
a file with float artifacts beyond 9 decimals, such as ``218102.59507500002``, is parsed
exactly at 18 decimals and rounded half away from zero to 9). Parquet doubles are rounded to
the nearest 1e-9, which recovers the decimal the exchange sent for any price with at most 9
decimals below about 9e6.

Exact, or loud (limits in ``admf.data.checks``): a value beyond the accepted range, a
non-zero value below 1e-9, an empty value, a timestamp outside 1677-09-21..2262-04-11, a
zero or negative price (unless ``negative_prices=True``), a negative size, a bar whose high
is below its open, close or low (or whose low is above its open or close), two bars with the
same timestamp (tick rows aside), and a file with no rows are refused with an ``AdmfError``
naming the file, the line (row for Parquet), the column and the value. Rows out of time
order are sorted (stable) and counted in one ``AdmfWarning``; quotes and trades may share a
timestamp. A UTF-8 byte-order mark is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from admf.data.checks import (
    QTY_LIMIT,
    TS_MAX,
    TS_MIN,
    Rows,
    check_prices,
    check_sizes,
    first,
    in_time_order,
    units,
)
from admf.data.file import DataFile, DataPath, arrow_input, data_path
from admf.errors import AdmfError
from admf.events import EVENT_DTYPE, SCALE, EventArray, Kind, Side

DAY_NS: Final[int] = 86_400 * 1_000_000_000
_FIXED: Final[pa.DataType] = pa.decimal128(38, 9)
DAILY_TZ: Final[str] = "America/New_York"
"""The exchange time zone of daily bars when none is given."""
SESSION_CLOSE: Final[dt.time] = dt.time(16, 0)
"""The session close daily bars are stamped at when none is given (NYSE/NASDAQ)."""


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
        MarketFormat("columns", Kind.BAR, "CSV bars read through a ColumnMap", "close"),
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


def _is_parquet(path: DataPath) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


def _expected() -> str:
    return "; ".join(f"{f.name} ({f.description})" for f in FORMATS.values())


def detect_format(path: str | Path | DataFile) -> MarketFormat:
    """The format of a market data file, from its header or Parquet schema."""
    path = data_path(path)
    if _is_parquet(path):
        try:
            names = pq.read_schema(arrow_input(path)).names
        except (pa.ArrowException, OSError) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AdmfError(f"{path}: not a readable Parquet file: {first_line}") from None
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
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]  # a UTF-8 byte-order mark (Excel's exports) is not part of the header
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
_ARROW_BAD_VALUE: Final[re.Pattern[str]] = re.compile(
    r"column #(\d+): CSV conversion error to ([^:]+): invalid value '([^']*)'"
)
_ARROW_BAD_STRING: Final[re.Pattern[str]] = re.compile(
    r"column #(\d+): The string '([^']*)' is not a valid (\S+)"
)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which columns of a CSV file hold a bar's fields, for files whose header is none of the
    known formats. A field left ``None`` is found by its own name (case and spaces aside;
    ``timestamp`` also as ``date``, ``datetime`` or ``time``); ``volume`` may be absent.
    ``stamped`` says whether the file's intraday timestamps mark a bar's ``"open"`` or its
    ``"close"``; dates without a time are daily bars, stamped at the session close."""

    timestamp: str | None = None
    open: str | None = None
    high: str | None = None
    low: str | None = None
    close: str | None = None
    volume: str | None = None
    stamped: str = "close"

    def __post_init__(self) -> None:
        if self.stamped not in ("open", "close"):
            raise AdmfError(f"ColumnMap: stamped must be 'open' or 'close', got {self.stamped!r}")

    @classmethod
    def parse(cls, text: str | Mapping[str, str]) -> ColumnMap:
        """From ``"close=Adj Close,timestamp=datetime"`` (the CLI's ``--columns``) or a dict."""
        items: dict[str, str] = {}
        if isinstance(text, Mapping):
            items = dict(text)
        else:
            for part in text.split(","):
                if not part.strip():
                    continue
                key, sep, value = part.partition("=")
                if not sep or not value.strip():
                    raise AdmfError(f"--columns takes FIELD=COLUMN pairs, got {part!r}")
                items[key.strip().lower()] = value.strip()
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(items) - set(known))
        if unknown:
            raise AdmfError(
                f"--columns: unknown field(s) {', '.join(unknown)}; expected {', '.join(known)}"
            )
        return cls(**items)


_TS_ALIASES: Final[tuple[str, ...]] = ("timestamp", "datetime", "date", "time")


def _resolve(path: DataPath, header: list[str], cmap: ColumnMap) -> dict[str, int]:
    """Field -> column index of the file, for the fields the file has."""
    folded = [h.strip().lower() for h in header]
    out: dict[str, int] = {}
    for name in ("timestamp", "open", "high", "low", "close", "volume"):
        given = getattr(cmap, name)
        candidates = (
            [given] if given is not None else (list(_TS_ALIASES) if name == "timestamp" else [name])
        )
        for cand in candidates:
            if cand in header:
                out[name] = header.index(cand)
                break
            if cand.strip().lower() in folded:
                out[name] = folded.index(cand.strip().lower())
                break
        else:
            if name == "volume" and given is None:
                continue
            raise AdmfError(
                f"{path}: no column for {name} ({given or ' or '.join(candidates)}); "
                f"columns found: {', '.join(header)}"
            )
    return out


def _read_csv(
    path: DataPath,
    fmt: MarketFormat,
    names: list[str],
    types: dict[str, pa.DataType | None],
    *,
    header: bool = True,
) -> tuple[pa.Table, Rows]:
    """The columns of ``types`` (a type of None is inferred by Arrow), and where rows are."""
    read = pa_csv.ReadOptions(column_names=names, skip_rows=1 if header else 0)
    rows = Rows(path, 1 if header else 0, names)

    def attempt(column_types: dict[str, pa.DataType | None]) -> pa.Table:
        convert = pa_csv.ConvertOptions(
            column_types={k: v for k, v in column_types.items() if v is not None},
            include_columns=list(column_types),
        )
        return pa_csv.read_csv(arrow_input(path), read_options=read, convert_options=convert)

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
    except pa.ArrowInvalid as exc:
        raise _csv_error(rows, fmt, names, exc) from None
    for i, name in enumerate(table.column_names):
        if current[name] != _WIDE:
            continue
        wide = table.column(i)
        rounded = pc.round(wide, ndigits=9, round_mode="half_towards_infinity")
        # A value below the resolution would become a silent zero: refuse it instead.
        lost = pc.and_(pc.not_equal(wide, 0), pc.equal(rounded, 0))
        row = first(np.asarray(lost.to_numpy(zero_copy_only=False), dtype=bool))
        if row is not None:
            raise rows.refuse(
                row, name, str(wide[row].as_py()), "is not zero but below the resolution 1e-9"
            )
        table = table.set_column(i, name, rounded.cast(_FIXED))
    if table.num_rows == 0:
        raise AdmfError(f"{path}: no rows ({fmt.name} with a header only, or empty)")
    return table, rows


def _csv_error(rows: Rows, fmt: MarketFormat, names: list[str], exc: Exception) -> AdmfError:
    """Arrow's conversion error with the file's line added where it can be found."""
    text = str(exc).strip().splitlines()[0]
    bad = _ARROW_BAD_VALUE.search(text)
    if bad is not None:
        index, typ, value = int(bad.group(1)), bad.group(2), bad.group(3)
        line = rows.line_with(index, value)
        where = f"{rows.path}:{line}" if line is not None else str(rows.path)
        why = "is out of range or not a number" if "decimal" in typ else f"cannot be read as {typ}"
        if typ.startswith(("timestamp", "date")):
            why = "is not a date/time in the supported range (1677-09-21..2262-04-11)"
        return AdmfError(f"{where}: column {names[index]!r}: {value!r} {why} ({fmt.name})")
    bad = _ARROW_BAD_STRING.search(text)
    if bad is not None:
        index, value, typ = int(bad.group(1)), bad.group(2), bad.group(3)
        line = rows.line_with(index, value)
        where = f"{rows.path}:{line}" if line is not None else str(rows.path)
        return AdmfError(
            f"{where}: column {names[index]!r}: {value!r} is not a number ({typ}; {fmt.name})"
        )
    return AdmfError(f"{rows.path}: cannot read as {fmt.name} ({fmt.description}): {text}")


def _fixed(rows: Rows, table: pa.Table, name: str) -> npt.NDArray[np.int64]:
    """A column as fixed-point int64: decimals exactly, floats rounded to the nearest 1e-9;
    empty and unrepresentable values are refused with their row."""
    column = table.column(name)
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if array.null_count:
        row = first(np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool))
        assert row is not None
        raise rows.refuse(row, name, "(empty)", "is missing; every row needs a value")
    if pa.types.is_decimal(array.type):
        if array.type != _FIXED:
            array = array.cast(_FIXED)
        buffer = array.buffers()[1]
        assert buffer is not None
        words = np.frombuffer(
            buffer, dtype=np.int64, count=2 * len(array), offset=16 * array.offset
        )
        low, high = words[0::2], words[1::2]
        row = first(high != (low >> 63))
        if row is not None:
            raise rows.refuse(
                row,
                name,
                str(array[row].as_py()),
                f"is beyond the fixed-point range (±{units(QTY_LIMIT)})",
            )
        return low.copy()
    if pa.types.is_floating(array.type):
        values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (np.abs(values) >= QTY_LIMIT / SCALE)
        row = first(bad)
        if row is not None:
            raise rows.refuse(
                row, name, repr(float(values[row])), "is not finite or beyond the fixed-point range"
            )
        rounded: npt.NDArray[np.int64] = np.rint(values * SCALE).astype(np.int64)
        row = first((values != 0) & (rounded == 0))
        if row is not None:
            raise rows.refuse(
                row, name, repr(float(values[row])), "is not zero but below the resolution 1e-9"
            )
        return rounded
    if pa.types.is_integer(array.type):
        ints: npt.NDArray[np.int64] = np.asarray(
            array.to_numpy(zero_copy_only=False), dtype=np.int64
        )
        row = first(np.abs(ints) > QTY_LIMIT // SCALE)
        if row is not None:
            raise rows.refuse(
                row,
                name,
                str(int(ints[row])),
                f"is beyond the fixed-point range (±{units(QTY_LIMIT)})",
            )
        return ints * SCALE
    raise AdmfError(f"{rows.path}: column {name!r} is {array.type}; expected numbers")


_SECOND: Final[int] = 1_000_000_000
_TS_MIN_S: Final[int] = TS_MIN // _SECOND + 1
_TS_MAX_S: Final[int] = TS_MAX // _SECOND - 1
_EPOCH: Final[dt.datetime] = dt.datetime(1970, 1, 1)
_ARROW_TZ_FROM: Final[int] = -2_208_988_800  # 1900-01-01
_ARROW_TZ_UNTIL: Final[int] = 2_145_916_800  # 2038-01-01


def _check_nulls(rows: Rows, name: str, column: pa.ChunkedArray | pa.Array) -> None:
    if column.null_count:
        row = first(np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool))
        assert row is not None
        raise rows.refuse(row, name, "(empty)", "is missing; every row needs a timestamp")


def _utc_seconds(
    rows: Rows, name: str, local: npt.NDArray[np.int64], tz: str | None
) -> npt.NDArray[np.int64]:
    """Wall-clock seconds in ``tz`` (None: already UTC) as UTC seconds, checked against the
    nanosecond range so that the caller can scale them without wrapping."""
    seconds = local
    if tz is not None:
        try:
            zone = ZoneInfo(tz)
            stamped = pc.assume_timezone(
                pa.array(local, pa.timestamp("s")), tz, ambiguous="earliest", nonexistent="earliest"
            )
        except (pa.ArrowInvalid, KeyError, ValueError, ZoneInfoNotFoundError) as exc:
            raise AdmfError(f"{rows.path}: cannot read times in time zone {tz!r}: {exc}") from None
        seconds = np.array(stamped.cast(pa.int64()).to_numpy(), dtype=np.int64)
        # Arrow's time zone rules stop at the last transition its database lists (2037), so
        # daylight saving time is lost after it; Python's zoneinfo follows the zone's rule
        # for ever after. The few rows outside 1900..2037 are converted by zoneinfo.
        far = np.flatnonzero((local < _ARROW_TZ_FROM) | (local >= _ARROW_TZ_UNTIL))
        for i in far.tolist():
            try:
                wall = _EPOCH + dt.timedelta(seconds=int(local[i]))
                seconds[i] = int(wall.replace(tzinfo=zone).timestamp())
            except (OverflowError, ValueError):
                seconds[i] = _TS_MIN_S - 1 if local[i] < 0 else _TS_MAX_S + 1
    row = first((seconds < _TS_MIN_S) | (seconds > _TS_MAX_S))
    if row is not None:
        try:
            when = (_EPOCH + dt.timedelta(seconds=int(local[row]))).isoformat(sep=" ")
        except OverflowError:
            when = f"{int(local[row])} s from 1970"
        raise rows.refuse(row, name, when, "is outside the timestamp range 1677-09-21..2262-04-11")
    return seconds


def _ns(
    rows: Rows, name: str, column: pa.ChunkedArray | pa.Array, tz: str | None
) -> npt.NDArray[np.int64]:
    """Timestamps as int64 ns UTC; naive ones are read in ``tz`` (UTC when None). Missing and
    out-of-range timestamps are refused with their row."""
    _check_nulls(rows, name, column)
    typ = column.type
    if pa.types.is_date(typ):
        days = np.asarray(column.cast(pa.int32()).to_numpy(), dtype=np.int64)
        return _utc_seconds(rows, name, days * 86_400, tz) * _SECOND
    if not pa.types.is_timestamp(typ):
        raise AdmfError(f"{rows.path}: column {name!r} is {typ}; expected dates or timestamps")
    raw = np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": _SECOND}[typ.unit]
    whole, frac = np.divmod(raw, per_second)
    local = None if typ.tz is not None or tz is None else tz
    seconds = _utc_seconds(rows, name, whole, local)
    out: npt.NDArray[np.int64] = seconds * _SECOND + frac * (_SECOND // per_second)
    return out


def _min_spacing(ts: npt.NDArray[np.int64]) -> int:
    if len(ts) < 2:
        return 0
    diffs = np.diff(ts)
    positive = diffs[diffs > 0]
    return int(positive.min()) if len(positive) else 0


def _session_seconds(session_close: dt.time | str) -> int:
    if isinstance(session_close, str):
        try:
            session_close = dt.time.fromisoformat(session_close)
        except ValueError:
            raise AdmfError(
                f"session_close must be a time of day HH:MM[:SS], got {session_close!r}"
            ) from None
    if session_close.tzinfo is not None:
        raise AdmfError("session_close is a wall-clock time; give its zone as tz")
    return session_close.hour * 3600 + session_close.minute * 60 + session_close.second


def _daily_ns(
    rows: Rows, name: str, dates: pa.ChunkedArray, tz: str | None, session_close: dt.time | str
) -> npt.NDArray[np.int64]:
    """Trading dates stamped at their session close in the exchange's zone."""
    _check_nulls(rows, name, dates)
    days = np.asarray(dates.cast(pa.int32()).to_numpy(), dtype=np.int64)
    local = days * 86_400 + _session_seconds(session_close)
    return _utc_seconds(rows, name, local, tz or DAILY_TZ) * _SECOND


_OHLCV: Final[list[str]] = ["open", "high", "low", "close", "volume"]


def _sample_is_aware(path: DataPath, index: int = 0) -> bool:
    """Whether the first row's timestamp carries a UTC offset."""
    with path.open(encoding="utf-8-sig") as f:
        f.readline()
        parts = f.readline().split(",")
    sample = parts[index].strip() if index < len(parts) else ""
    return re.search(r"(Z|[+-]\d{2}:?\d{2})$", sample) is not None


def _bars(
    path: DataPath,
    fmt: MarketFormat,
    tz: str | None,
    interval_ns: int | None,
    session_close: dt.time | str,
    cmap: ColumnMap | None,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]], int, Rows, dict[str, str]]:
    dec: dict[str, pa.DataType | None] = dict.fromkeys(_OHLCV, _FIXED)
    stamped = fmt.stamped
    if cmap is not None:
        with path.open(encoding="utf-8-sig") as f:
            header = [h.strip() for h in f.readline().rstrip("\r\n").split(",")]
        where = _resolve(path, header, cmap)
        names = [f"_{i}" for i in range(len(header))]
        for field_name, index in where.items():
            names[index] = field_name
        types = {n: (None if n == "timestamp" else _FIXED) for n in where}
        table, _ = _read_csv(path, fmt, names, types)
        rows = Rows(path, 1, header)
        renamed = {n: header[i] for n, i in where.items()}
        stamps = table.column("timestamp")
        if pa.types.is_date(stamps.type):
            ts, interval, stamped = (
                _daily_ns(rows, renamed["timestamp"], stamps, tz, session_close),
                DAY_NS,
                "day",
            )
        else:
            ts = _ns(rows, renamed["timestamp"], stamps, tz)
            interval = _min_spacing(ts)
            stamped = cmap.stamped
        table = table.rename_columns([renamed.get(n, n) for n in table.column_names])
        columns = {n: renamed[n] for n in _OHLCV if n in renamed}
    elif fmt.name == "backtrader-daily":
        with path.open(encoding="utf-8-sig") as f:
            header = f.readline().strip().lower().split(",")
        names = ["date", "open", "high", "low", "close", *[h.replace(" ", "_") for h in header[5:]]]
        table, rows = _read_csv(path, fmt, names, {"date": pa.date32(), **dec})
        ts = _daily_ns(rows, "date", table.column("date"), tz, session_close)
        interval = DAY_NS
        columns = {n: n for n in _OHLCV}
    elif fmt.name == "backtrader-intraday":
        names = ["date", "time", *_OHLCV, "openinterest"]
        types = {"date": pa.date32(), "time": pa.time64("ns"), **dec}
        table, rows = _read_csv(path, fmt, names, types)
        _check_nulls(rows, "time", table.column("time"))
        days = np.asarray(table.column("date").cast(pa.int32()).to_numpy(), dtype=np.int64)
        clock = np.asarray(table.column("time").cast(pa.int64()).to_numpy(), dtype=np.int64)
        secs, frac = np.divmod(clock, _SECOND)
        ts = _utc_seconds(rows, "date", days * 86_400 + secs, tz) * _SECOND + frac
        interval = _min_spacing(ts)
        columns = {n: n for n in _OHLCV}
    else:
        with_volume = fmt.name != "nautilus-ohlc"
        names = ["timestamp", *(_OHLCV if with_volume else _OHLCV[:4])]
        if fmt.name == "backtrader-datetime":
            names = ["timestamp", *_OHLCV, "openinterest"]
        stamp_type = pa.timestamp("ns", tz="UTC") if _sample_is_aware(path) else pa.timestamp("ns")
        types = {"timestamp": stamp_type, **{n: _FIXED for n in names[1:6]}}
        table, rows = _read_csv(path, fmt, names, types)
        ts = _ns(rows, "timestamp", table.column("timestamp"), tz)
        interval = 0 if fmt.name == "backtrader-datetime" else _min_spacing(ts)
        columns = {n: n for n in _OHLCV}
    if interval_ns is not None:
        interval = interval_ns
    if stamped == "open":
        row = first(ts > TS_MAX - interval)
        if row is not None:
            raise rows.refuse(
                row, "timestamp", str(int(ts[row])), "plus the bar interval is past 2262-04-11"
            )
        ts = ts + interval
    values = {n: _fixed(rows, table, columns[n]) for n in _OHLCV[:4]}
    values["volume"] = (
        _fixed(rows, table, columns["volume"])
        if "volume" in columns and columns["volume"] in table.column_names
        else np.zeros(len(ts), dtype=np.int64)
    )
    return ts, values, interval, rows, columns


def _check_bars(
    rows: Rows,
    ts: npt.NDArray[np.int64],
    v: dict[str, npt.NDArray[np.int64]],
    columns: dict[str, str],
    negative_prices: bool,
    interval: int,
) -> None:
    for name in _OHLCV[:4]:
        check_prices(rows, columns.get(name, name), v[name], negative=negative_prices)
    check_sizes(rows, columns.get("volume", "volume"), v["volume"])
    high, low = v["high"], v["low"]
    for name, bad in (
        ("high", (high < low) | (high < v["open"]) | (high < v["close"])),
        ("low", (low > v["open"]) | (low > v["close"])),
    ):
        row = first(bad)
        if row is not None:
            values = ", ".join(f"{n} {units(int(v[n][row]))}" for n in _OHLCV[:4])
            what = "below the open, close or low" if name == "high" else "above the open or close"
            raise rows.refuse(
                row, columns.get(name, name), units(int(v[name][row])), f"is {what} ({values})"
            )
    if interval == 0:
        return  # tick rows (backtrader's ticksample): several trades may share a timestamp
    order = np.argsort(ts, kind="stable")
    same = np.flatnonzero(ts[order][1:] == ts[order][:-1])
    if len(same):
        a, b = int(order[same[0]]), int(order[same[0] + 1])
        raise AdmfError(
            f"{rows.where(b)}: two bars with the same timestamp (the other at "
            f"{rows.where(a)}); one bar per interval"
        )


def _quotes(
    path: DataPath, fmt: MarketFormat, tz: str | None
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]], Rows]:
    if fmt.name == "binance-quotes":
        table, rows = _read_parquet(path, fmt, ["timestamp", "bid", "bid_size", "ask", "ask_size"])
        ts = _ns(rows, "timestamp", table.column("timestamp"), tz)
        names = ("bid", "bid_size", "ask", "ask_size")
        return ts, {n: _fixed(rows, table, n) for n in names}, rows
    if fmt.name == "nautilus-bid-ask":
        stamp = pa.timestamp("ns", tz="UTC") if _sample_is_aware(path) else pa.timestamp("ns")
        table, rows = _read_csv(
            path,
            fmt,
            ["timestamp", "bid", "ask"],
            {"timestamp": stamp, "bid": _FIXED, "ask": _FIXED},
        )
        ts = _ns(rows, "timestamp", table.column("timestamp"), tz)
    else:  # nautilus-quote-ticks
        table, rows = _read_csv(
            path,
            fmt,
            ["timestamp", "bid", "ask", "volume"],
            {"timestamp": pa.string(), "bid": _FIXED, "ask": _FIXED},
            header=False,
        )
        text = table.column("timestamp")
        _check_nulls(rows, "timestamp", text)
        try:
            seconds = pc.strptime(
                pc.utf8_slice_codeunits(text, 0, 15), format="%Y%m%d %H%M%S", unit="s"
            )
            millis = pc.utf8_slice_codeunits(text, 15, 18).cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise AdmfError(
                f"{path}: bad timestamp in {fmt.name} ({fmt.description}): {exc}"
            ) from exc
        ts = (
            _ns(rows, "timestamp", seconds, tz)
            + np.asarray(millis.to_numpy(), dtype=np.int64) * 1_000_000
        )
    zeros = np.zeros(len(ts), dtype=np.int64)
    return (
        ts,
        {
            "bid": _fixed(rows, table, "bid"),
            "bid_size": zeros,
            "ask": _fixed(rows, table, "ask"),
            "ask_size": zeros,
        },
        rows,
    )


def _read_parquet(path: DataPath, fmt: MarketFormat, columns: list[str]) -> tuple[pa.Table, Rows]:
    try:
        table = pq.read_table(arrow_input(path), columns=columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdmfError(f"{path}: not a readable Parquet file ({fmt.name}): {first_line}") from None
    if table.num_rows == 0:
        raise AdmfError(f"{path}: the Parquet file is empty (no rows)")
    return table, Rows(path, None, columns)


def _trades(
    path: DataPath, fmt: MarketFormat, tz: str | None
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]], npt.NDArray[np.uint8], Rows]:
    cols = ["timestamp", "trade_id", "price", "quantity", "buyer_maker"]
    table, rows = _read_parquet(path, fmt, cols)
    ts = _ns(rows, "timestamp", table.column("timestamp"), tz)
    maker = table.column("buyer_maker")
    if maker.null_count:
        _check_nulls(rows, "buyer_maker", maker)
    if pa.types.is_string(maker.type) or pa.types.is_large_string(maker.type):
        lowered = pc.utf8_lower(maker)
        valid = np.asarray(
            pc.is_in(lowered, pa.array(["true", "false"])).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        row = first(~valid)
        if row is not None:
            raise rows.refuse(row, "buyer_maker", repr(maker[row].as_py()), "is not True/False")
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
        {"price": _fixed(rows, table, "price"), "qty": _fixed(rows, table, "quantity"), "id": ids},
        side,
        rows,
    )


_BLOCK: Final[int] = 1 << 14


def _word(field: str) -> int:
    """Index of the 8-byte word of a record where ``field`` starts."""
    fields_ = EVENT_DTYPE.fields
    assert fields_ is not None
    return int(fields_[field][1]) // 8


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


def load_market_data(
    path: str | Path | DataFile,
    *,
    instrument: int = 0,
    tz: str | None = None,
    interval_ns: int | None = None,
    fmt: str | None = None,
    session_close: dt.time | str = SESSION_CLOSE,
    columns: ColumnMap | Mapping[str, str] | str | None = None,
    negative_prices: bool = False,
) -> MarketData:
    """Reads a bar, quote or trade file into events, with its format and bar interval.

    ``instrument`` is written into every event; ``tz`` is the time zone of naive timestamps
    (UTC when None) and of daily dates (``America/New_York`` when None); daily bars are
    stamped at ``session_close`` on their date in that zone; ``interval_ns`` overrides the
    inferred bar interval; ``fmt`` names a format of ``FORMATS`` instead of detecting it;
    ``columns`` (a ``ColumnMap``, a dict or ``"close=Adj Close,..."``) reads a CSV of bars
    whose header is none of the known formats; ``negative_prices`` accepts negative prices
    (spreads, some futures). See the module docstring for what is refused.
    """
    path = data_path(path)
    if not 0 <= instrument < 2**32:
        raise AdmfError(f"instrument must be in 0..2**32-1, got {instrument}")
    if interval_ns is not None and not 0 <= interval_ns <= 366 * DAY_NS:
        raise AdmfError(f"interval_ns must be in 0..{366 * DAY_NS} (a year), got {interval_ns}")
    cmap = None
    if columns is not None:
        cmap = columns if isinstance(columns, ColumnMap) else ColumnMap.parse(columns)
        spec = FORMATS["columns"]
        if _is_parquet(path):
            raise AdmfError(f"{path}: a column mapping applies to CSV files, not Parquet")
    elif fmt is None:
        spec = detect_format(path)
    elif fmt in FORMATS and fmt != "columns":
        spec = FORMATS[fmt]
    else:
        raise AdmfError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    interval = 0
    if spec.kind == Kind.BAR:
        ts, v, interval, rows, names = _bars(path, spec, tz, interval_ns, session_close, cmap)
        _check_bars(rows, ts, v, names, negative_prices, interval)
        slots = {
            "price": v["close"],
            "qty": v["volume"],
            "aux": v["open"],
            "order_id": v["high"],
            "payload": v["low"],
        }
        events = _events(Kind.BAR, instrument, ts, slots)
    elif spec.kind == Kind.QUOTE:
        ts, v, rows = _quotes(path, spec, tz)
        for name in ("bid", "ask"):
            check_prices(rows, name, v[name], negative=negative_prices)
        for name in ("bid_size", "ask_size"):
            check_sizes(rows, name, v[name])
        slots = {
            "price": v["bid"],
            "qty": v["bid_size"],
            "aux": v["ask"],
            "order_id": v["ask_size"],
        }
        events = _events(Kind.QUOTE, instrument, ts, slots)
    else:
        ts, v, side, rows = _trades(path, spec, tz)
        check_prices(rows, "price", v["price"], negative=negative_prices)
        check_sizes(rows, "quantity", v["qty"])
        slots = {"price": v["price"], "qty": v["qty"], "order_id": v["id"]}
        events = _events(Kind.TRADE, instrument, ts, slots, side)
    return MarketData(spec, in_time_order(events, path), interval)


def read_market_data(
    path: str | Path | DataFile, *, instrument: int = 0, tz: str | None = None, **options: Any
) -> tuple[Kind, EventArray]:
    """``(kind, events)`` of a bar, quote or trade file, its format detected by its header;
    ``options`` are those of ``load_market_data``."""
    data = load_market_data(path, instrument=instrument, tz=tz, **options)
    return data.kind, data.events


def _read_kind(
    path: str | Path | DataFile, kind: Kind, instrument: int, **options: Any
) -> EventArray:
    data = load_market_data(path, instrument=instrument, **options)
    if data.kind != kind:
        raise AdmfError(
            f"{path}: holds {data.kind.name.lower()}s ({data.format.name}), "
            f"expected {kind.name.lower()}s"
        )
    return data.events


def read_bars(path: str | Path | DataFile, *, instrument: int = 0, **options: Any) -> EventArray:
    """Bars (``Kind.BAR`` events stamped at their close) from a CSV or Parquet file;
    ``options`` are those of ``load_market_data``."""
    return _read_kind(path, Kind.BAR, instrument, **options)


def read_quotes(path: str | Path | DataFile, *, instrument: int = 0, **options: Any) -> EventArray:
    """Top-of-book quotes (``Kind.QUOTE`` events) from a CSV or Parquet file."""
    return _read_kind(path, Kind.QUOTE, instrument, **options)


def read_trades(path: str | Path | DataFile, *, instrument: int = 0, **options: Any) -> EventArray:
    """Trade prints (``Kind.TRADE`` events, ``side`` = aggressor) from a Parquet file."""
    return _read_kind(path, Kind.TRADE, instrument, **options)


def bar_open_ts(events: EventArray, interval_ns: int) -> npt.NDArray[np.int64]:
    """The open times of close-stamped intraday bars: ``ts - interval_ns`` (a daily bar's
    ``ts`` is its session close; its open is on the same trading date)."""
    out: npt.NDArray[np.int64] = events["ts"] - np.int64(interval_ns)
    return out
