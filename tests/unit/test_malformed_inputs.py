"""Every input is read exactly or refused (issue 15): malformed files for every reader, one
row per defect, each asserting the error's file, line (or row) and value, or the exact events
read; hypothesis-generated files near the limits of fixed point and of timestamps; the CLI's
option checks; the order book and the queue at their edges."""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import warnings
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admf import SCALE, Kind, Side
from admf.book import BookError, OrderBook
from admf.cli import main
from admf.data import databento, lobster
from admf.data.bars import ColumnMap, load_market_data, read_bars, read_quotes, read_trades
from admf.data.checks import PRICE_LIMIT
from admf.errors import AdmfError, AdmfWarning
from admf.events import empty_events, to_record_batch
from admf.queue import EventQueue, QueueClosed

DATA = Path(__file__).resolve().parents[1] / "data"
DBN = DATA / "market" / "databento__esh4-mbo-head400.dbn.zst"
ORCL = DATA / "orcl-1995-daily-100.csv"
DAILY = "Date,Open,High,Low,Close,Adj Close,Volume\n"
GOOD = "1995-01-03,2.179012,2.191358,2.117284,2.117284,1.883304,36301200\n"
NEXT = "1995-01-04,2.123457,2.148148,2.092592,2.135803,1.899776,46051600\n"
OHLCV = "timestamp,open,high,low,close,volume\n"
BIDASK = "timestamp,bid,ask\n"

# (id, file name, content, expected error: a regex on the message after the path)
CSV_CASES = [
    (
        "price 9e9",
        "d.csv",
        DAILY + GOOD + "1995-01-04,2,9000000000,2,2,2,1\n",
        r":3: column 'high': 9000000000 is beyond the accepted price range",
    ),
    (
        "price past fixed point",
        "d.csv",
        DAILY + GOOD + "1995-01-04,2,99999999999,2,2,2,1\n",
        r":3: column 'high': 99999999999(\.0+)? is beyond the fixed-point range",
    ),
    (
        "price 1e-10",
        "d.csv",
        DAILY + GOOD + "1995-01-04,0.0000000001,2,0.0000000001,1,1,1\n",
        r":3: column 'open': 0\.0000000001 is not zero but below the resolution 1e-9",
    ),
    (
        "zero price",
        "d.csv",
        DAILY + GOOD + "1995-01-04,0,2,0,1,1,1\n",
        r":3: column 'open': 0 is not a price: zero or negative prices are refused",
    ),
    (
        "negative price",
        "d.csv",
        DAILY + "1995-01-03,-1,2,-1,1,1,1\n",
        r":2: column 'open': -1 is not a price",
    ),
    (
        "high below low",
        "d.csv",
        DAILY + GOOD + "1995-01-04,2,1,3,2,2,1\n",
        r":3: column 'high': 1 is below the open, close or low \(open 2, high 1, low 3, close 2\)",
    ),
    (
        "low above close",
        "d.csv",
        DAILY + "1995-01-03,2,3,2.5,2.2,2,1\n",
        r":2: column 'low': 2\.5 is above the open or close",
    ),
    (
        "negative volume",
        "d.csv",
        DAILY + "1995-01-03,2,3,1,2,2,-5\n",
        r":2: column 'volume': -5 is negative",
    ),
    (
        "duplicate bar",
        "d.csv",
        DAILY + GOOD + NEXT + GOOD,
        r":4: two bars with the same timestamp \(the other at .*d\.csv:2\)",
    ),
    (
        "date past 2262",
        "d.csv",
        DAILY + GOOD + "2262-04-12,2,3,1,2,2,1\n",
        r":3: column 'date': 2262-04-12 is outside the timestamp range 1677-09-21\.\.2262-04-11",
    ),
    (
        "empty value",
        "d.csv",
        DAILY + GOOD + "1995-01-04,,2,1,1,1,1\n",
        r":3: column 'open': \(empty\) is missing",
    ),
    (
        "not a number",
        "d.csv",
        DAILY + GOOD + "1995-01-04,abc,2,1,1,1,1\n",
        r":3: column 'open': 'abc' is not a number",
    ),
    ("header only", "d.csv", DAILY, r": no rows"),
    (
        "intraday timestamp out of range",
        "o.csv",
        OHLCV + "2300-01-01 00:00:00,1,2,1,1,1\n",
        r":2: column 'timestamp': '2300-01-01 00:00:00' is not a date/time in the supported range",
    ),
    (
        "quote price 1e-10",
        "q.csv",
        BIDASK + "2013-01-01 22:00:00,0.0000000001,1\n",
        r":2: column 'bid': 0\.0000000001 is not zero but below the resolution",
    ),
    (
        "quote ask negative",
        "q.csv",
        BIDASK + "2013-01-01 22:00:00,1,-2\n",
        r":2: column 'ask': -2 is not a price",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [pytest.param(*case[1:], id=case[0]) for case in CSV_CASES],
)
def test_malformed_csv_is_refused_with_file_line_and_value(
    tmp_path: Path, name: str, content: str, error: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AdmfError) as info:
        load_market_data(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    assert re.search(error, message[len(str(path)) :]), message


def test_what_is_accepted_is_exact(tmp_path: Path) -> None:
    # A UTF-8 BOM is skipped; negative prices pass when they are legitimate; rows out of
    # order are sorted and counted; quotes may share a timestamp.
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (DAILY + GOOD + NEXT).encode())
    events = read_bars(bom)
    assert [int(e["aux"]) for e in events] == [2_179_012_000, 2_123_457_000]
    spread = tmp_path / "spread.csv"
    spread.write_text(DAILY + "1995-01-03,-1.5,-0.5,-2.25,-1,0,10\n")
    with pytest.raises(AdmfError, match="not a price"):
        read_bars(spread)
    (bar,) = read_bars(spread, negative_prices=True)
    assert (bar["aux"], bar["order_id"], bar["payload"], bar["price"]) == (
        -1_500_000_000,
        -500_000_000,
        -2_250_000_000,
        -1_000_000_000,
    )
    backwards = tmp_path / "backwards.csv"
    backwards.write_text(DAILY + NEXT + GOOD)
    with pytest.warns(AdmfWarning, match=r"backwards\.csv: 1 row\(s\) earlier"):
        events = read_bars(backwards)
    assert list(events["ts"]) == sorted(events["ts"])
    edge = tmp_path / "edge.csv"
    edge.write_text(DAILY + "2262-04-11,2,3,1,2,2,1\n")  # 16:00 New York is 20:00 UTC
    assert int(read_bars(edge)[0]["ts"]) == 9_223_358_400 * 10**9
    same = tmp_path / "same.csv"
    same.write_text(BIDASK + "2013-01-01 22:00:00,1,2\n2013-01-01 22:00:00,1.5,2\n")
    assert list(read_quotes(same)["price"]) == [SCALE, 1_500_000_000]


def _parquet(path: Path, **columns: pa.Array) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _trades(n: int = 2, **override: pa.Array) -> dict[str, pa.Array]:
    cols = {
        "timestamp": pa.array([1_600_000_000_000 + i for i in range(n)], pa.timestamp("ms")),
        "trade_id": pa.array(range(1, n + 1), pa.int64()),
        "price": pa.array([100.5] * n),
        "quantity": pa.array([0.25] * n),
        "buyer_maker": pa.array(["True", "False"][:n]),
    }
    cols.update(override)
    return cols


PARQUET_CASES = [
    (
        "null timestamp",
        _trades(timestamp=pa.array([1, None], pa.timestamp("ms"))),
        r": row 2: column 'timestamp': \(empty\) is missing",
    ),
    (
        "timestamp past ns range",
        _trades(timestamp=pa.array([0, 10**13], pa.timestamp("ms"))),
        r": row 2: column 'timestamp': .* is outside the timestamp range",
    ),
    (
        "NaN price",
        _trades(price=pa.array([1.0, math.nan])),
        r": row 2: column 'price': nan is not finite",
    ),
    (
        "price below resolution",
        _trades(price=pa.array([1e-12, 1.0])),
        r": row 1: column 'price': 1e-12 is not zero but below the resolution",
    ),
    (
        "huge quantity",
        _trades(quantity=pa.array([1.0, 1e11])),
        r": row 2: column 'quantity': 100000000000\.0 is not finite or beyond",
    ),
    (
        "bad buyer_maker",
        _trades(buyer_maker=pa.array(["True", "maybe"])),
        r": row 2: column 'buyer_maker': 'maybe' is not True/False",
    ),
    ("empty", _trades(0), r": the Parquet file is empty \(no rows\)"),
]


@pytest.mark.parametrize(
    ("columns", "error"), [pytest.param(*case[1:], id=case[0]) for case in PARQUET_CASES]
)
def test_malformed_parquet_is_refused_with_row_and_value(
    tmp_path: Path, columns: dict[str, pa.Array], error: str
) -> None:
    path = _parquet(tmp_path / "t.parquet", **columns)
    with pytest.raises(AdmfError) as info:
        read_trades(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message, message
    assert re.search(error, message[len(str(path)) :]), message


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # cut in the middle
        lambda raw: raw[:-10],  # the footer gone
        lambda raw: raw[:4] + b"\0" * (len(raw) - 8) + raw[-4:],  # zeros between magics
    ],
    ids=["half", "no-footer", "zeroed"],
)
def test_corrupt_parquet_is_one_line(tmp_path: Path, damage: object) -> None:
    good = _parquet(tmp_path / "good.parquet", **_trades())
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(damage(good.read_bytes()))  # type: ignore[operator]
    with pytest.raises(AdmfError, match=r"bad\.parquet: not a readable Parquet file") as info:
        read_trades(bad)
    assert "\n" not in str(info.value)


LOBSTER_NAME = "AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_CASES = [
    (
        "size 1e11",
        "34200.1,1,7,100000000000,5853300,1",
        r":2: column 'size': 100000000000 is not a size in 1\.\.9223372036 shares",
    ),
    ("negative size", "34200.1,1,7,-100,5853300,1", r":2: column 'size': -100 is not a size"),
    (
        "price 1e14",
        "34200.1,1,7,100,100000000000000,1",
        r":2: column 'price': 100000000000000 is not a price in 1\.\.10000000000000",
    ),
    ("off tick", "34200.1,1,7,100,5853350,1", r":2: column 'price': 5853350 is off the tick \(100"),
    ("zero price", "34200.1,1,7,100,0,1", r":2: column 'price': 0 is not a price"),
    (
        "time past the day",
        "90000.5,1,7,100,5853300,1",
        r":2: column 'time': '90000\.5' is not within the day",
    ),
    (
        "order id past 63 bits",
        "34200.1,1,9223372036854775808,100,5853300,1",
        r":2: column 'order id': 9223372036854775808 is not an order id",
    ),
    ("halt with a size", "34200.1,7,0,5,-1,1", r":2: column 'size': 5 is not 0"),
    ("direction", "34200.1,1,7,100,5853300,0", r":2: column 'direction': 0 is not a direction"),
]


@pytest.mark.parametrize(
    ("row", "error"), [pytest.param(*case[1:], id=case[0]) for case in LOBSTER_CASES]
)
def test_malformed_lobster_rows_are_refused(tmp_path: Path, row: str, error: str) -> None:
    path = tmp_path / LOBSTER_NAME
    path.write_text("34200.004241176,1,16113575,18,5853300,1\n" + row + "\n")
    with pytest.raises(AdmfError) as info:
        lobster.read_messages(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message, message
    assert re.search(error, message[len(str(path)) :]), message


def test_lobster_orderbook_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / LOBSTER_NAME
    path.write_text("")
    with pytest.raises(AdmfError, match="no messages"):
        lobster.read_messages(path)
    book = tmp_path / LOBSTER_NAME.replace("message", "orderbook")
    book.write_text("5853300,18,5853200,10\n5853300,x,5853200,10\n")
    with pytest.raises(AdmfError, match=r"orderbook_10\.csv:2: field 2: 'x' is not an integer"):
        lobster.read_orderbook(book)
    book.write_text("5853300,18,5853200,10\n5853300,-5,5853200,10\n")
    with pytest.raises(AdmfError, match=r"orderbook_10\.csv:2: field 2: size -5 is out of range"):
        lobster.read_orderbook(book)
    # A sub-penny stock: its tick is given, and the same row is read.
    path.write_text("34200.1,1,7,100,5853350,1\n")
    with pytest.raises(AdmfError, match="is off the tick"):
        lobster.read_messages(path)
    (sub,) = lobster.read_messages(path, tick=SCALE // 10_000)
    assert int(sub["price"]) == 585_335_000_000
    # A good halt row is read (size 0, price code -1).
    path.write_text("34200.1,7,0,0,-1,-1\n")
    (halt,) = lobster.read_messages(path)
    assert (int(halt["kind"]), int(halt["qty"])) == (Kind.NONE, 0)


def _dbn_plain() -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(DBN.read_bytes())


def test_databento_excerpt_reads_exactly() -> None:
    events = databento.read_mbo(DBN)
    assert len(events) == 400
    assert (int(events[0]["price"]), int(events[0]["qty"])) == (4_799_000_000_000, 2 * SCALE)


def test_truncated_and_corrupt_databento_files(tmp_path: Path) -> None:
    raw = DBN.read_bytes()
    cut = tmp_path / "cut.dbn.zst"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AdmfError, match=r"cut\.dbn\.zst: truncated: the file ends inside a zstd"):
        databento.read_mbo(cut)
    corrupt = tmp_path / "corrupt.dbn.zst"
    corrupt.write_bytes(raw[:200] + bytes(b ^ 0x5A for b in raw[200:400]) + raw[400:])
    with pytest.raises(AdmfError, match=r"corrupt\.dbn\.zst: corrupt zstd data"):
        databento.read_mbo(corrupt)
    plain = _dbn_plain()
    half = tmp_path / "half.dbn"
    record = 56  # an MBO record
    half.write_bytes(plain[: len(plain) - 100 * record - 20])
    with pytest.raises(AdmfError, match=r"ends inside a record \(36 bytes of it\); 299 whole"):
        databento.read_mbo(half)
    with pytest.warns(AdmfWarning, match="299 whole records read"):
        prefix = databento.read_mbo(half, truncated="warn")
    assert np.array_equal(prefix, databento.read_mbo(DBN)[: len(prefix)])
    junk = tmp_path / "junk.dbn"
    junk.write_bytes(b"not dbn at all" * 10)
    with pytest.raises(AdmfError, match=r"junk\.dbn: not a"):
        databento.read_mbo(junk)


# -- hypothesis: values at the edges of fixed point and of timestamps ------------------------


def _fixed(text: str) -> int:
    return int((Decimal(text) * SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


prices = st.decimals(
    min_value=Decimal("-2e9"), max_value=Decimal("2e9"), places=9, allow_nan=False
) | st.sampled_from(
    [
        Decimal(PRICE_LIMIT) / SCALE,
        Decimal(PRICE_LIMIT + 1) / SCALE,
        Decimal("1e-9"),
        Decimal("4e-10"),
        Decimal("5e-10"),
        Decimal("9223372036.854775807"),
    ]
)
dates = st.dates(min_value=dt.date(1677, 9, 20), max_value=dt.date(2262, 4, 13))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(price=prices, day=dates)
def test_daily_bar_near_the_limits_is_exact_or_refused(
    tmp_path: Path, price: Decimal, day: dt.date
) -> None:
    path = tmp_path / "edge.csv"
    text = format(price, "f")
    path.write_text(DAILY + f"{day.isoformat()},{text},{text},{text},{text},{text},1\n")
    stamp = dt.datetime(day.year, day.month, day.day, 16, tzinfo=ZoneInfo("America/New_York"))
    try:
        # ZoneInfo has no rules outside 1..9999 issues here; the ns range is the limit.
        expected_ts = int(stamp.timestamp()) * 1_000_000_000
        in_range = -(2**63) < expected_ts < 2**63 - 10**9
    except OverflowError:
        in_range = False
    value = _fixed(text)
    ok_price = 0 < value <= PRICE_LIMIT and (price == 0 or value != 0)
    refused: str | None = None
    try:
        (bar,) = read_bars(path)
    except AdmfError as exc:
        refused = str(exc)
    if refused is not None:
        assert not (in_range and ok_price), f"refused a good bar: {refused}"
        assert refused.startswith(f"{path}:2:")
        return
    assert in_range
    assert ok_price
    assert int(bar["ts"]) == expected_ts
    assert int(bar["price"]) == value == int(bar["aux"])


@settings(max_examples=40, deadline=None)
@given(ms=st.integers(min_value=-(2**62), max_value=2**62))
def test_parquet_timestamps_are_exact_or_refused(ms: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = _parquet(
            Path(tmp) / "t.parquet",
            **_trades(1, timestamp=pa.array([ms], pa.timestamp("ms"))),
        )
        ns = ms * 1_000_000
        refused: str | None = None
        try:
            (trade,) = read_trades(path)
        except AdmfError as exc:
            refused = str(exc)
        if refused is not None:
            assert not -(2**63) + 10**9 < ns < 2**63 - 10**9, refused
            assert "outside the timestamp range" in refused
            return
        assert int(trade["ts"]) == ns


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=-10, max_value=2**63 + 10)
    | st.sampled_from([0, 1, 9_223_372_036, 9_223_372_037]),
    price=st.integers(min_value=-10, max_value=2**63 + 10)
    | st.sampled_from([100, 10**13, 10**13 + 100, 10**13 - 100, 5_853_350]),
)
def test_lobster_rows_near_the_limits_are_exact_or_refused(size: int, price: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / LOBSTER_NAME
        path.write_text(f"34200.5,1,7,{size},{price},1\n")
        good = 0 < size <= (2**63 - 1) // SCALE and 0 < price <= 10**13 and price % 100 == 0
        refused: str | None = None
        try:
            (event,) = lobster.read_messages(path)
        except AdmfError as exc:
            refused = str(exc)
        if refused is not None:
            assert not good, refused
            assert refused.startswith(f"{path}:1: column ")
            return
        assert good
        assert int(event["qty"]) == size * SCALE
        assert int(event["price"]) == price * lobster.PRICE_FACTOR


# -- column mapping and the session convention -----------------------------------------------


def test_column_mapping_reads_a_broker_export(tmp_path: Path) -> None:
    path = tmp_path / "broker.csv"
    path.write_text(
        "Datetime,Open Price,High,Low,Last,Adj Close,Shares\n"
        "2024-03-01 09:31:00,10.5,11,10,10.75,10.7,300\n"
        "2024-03-01 09:32:00,10.75,10.9,10.6,10.8,10.79,200\n"
    )
    with pytest.raises(AdmfError, match=r"broker\.csv: unknown market data format"):
        read_bars(path)
    cmap = ColumnMap.parse("open=Open Price,close=Adj Close,volume=Shares,stamped=open")
    data = load_market_data(path, columns=cmap, tz="America/New_York")
    first = data.events[0]
    # 09:31 New York (EST) opens the bar; it is stamped at its close, 09:32 = 14:32 UTC.
    assert (
        int(first["ts"]) == int(dt.datetime(2024, 3, 1, 14, 32, tzinfo=dt.UTC).timestamp()) * 10**9
    )
    assert (int(first["aux"]), int(first["price"]), int(first["qty"])) == (
        10_500_000_000,
        10_700_000_000,
        300 * SCALE,
    )
    assert data.interval_ns == 60 * 10**9
    with pytest.raises(AdmfError, match=r"no column for close \(Close Price\); columns found"):
        read_bars(path, columns={"open": "Open Price", "close": "Close Price"})
    with pytest.raises(AdmfError, match="unknown field"):
        ColumnMap.parse("closing=Last")
    daily = tmp_path / "daily.csv"
    daily.write_text("day,o,h,l,c\n1995-05-12,1,2,1,1.5\n")
    (bar,) = read_bars(daily, columns="timestamp=day,open=o,high=h,low=l,close=c")
    friday = dt.datetime.fromtimestamp(int(bar["ts"]) / 1e9, ZoneInfo("America/New_York"))
    assert (friday.date(), friday.hour) == (dt.date(1995, 5, 12), 16)


def test_fills_carry_their_trading_date() -> None:
    from admf.backtest import backtest

    dates = {line.split(",")[0] for line in ORCL.read_text().splitlines()[1:]}
    result = backtest("admf_sma_cross:SmaCross", [ORCL], {"fast": 3, "slow": 8})
    fills = result.of_kind(Kind.FILL)
    assert len(fills) > 2
    for fill in fills:
        day = dt.datetime.fromtimestamp(int(fill["ts"]) / 1e9, dt.UTC).date()
        assert day.isoformat() in dates
        assert day.weekday() < 5


# -- the CLI's options ------------------------------------------------------------------------

# option -> values it must refuse (NaN, infinities, meaningless negatives, past fixed point)
BAD_OPTIONS = {
    "--cash": ["nan", "inf", "-inf", "-5", "0", "1e10"],
    "--fee-rate": ["nan", "inf", "-0.1", "1.5"],
    "--fee-per-unit": ["nan", "inf", "-1", "1e10"],
    "--fee-minimum": ["nan", "-inf", "-1", "1e10"],
    "--slippage-bps": ["nan", "inf", "-1", "1e6"],
    "--max-position": ["nan", "inf", "-1", "0", "1e10"],
    "--max-order-qty": ["nan", "inf", "-1", "1e10"],
    "--max-notional": ["nan", "inf", "-1", "1e10"],
    "--max-orders-per-second": ["nan", "inf", "-1", "0", "1.5"],
    "--daily-loss-limit": ["nan", "inf", "-1", "1e10"],
    "--maker-fee": ["nan", "inf", "-1", "1"],
    "--taker-fee": ["nan", "inf", "-0.001", "1"],
    "--latency-to-venue-ns": ["nan", "inf", "-1", "100000000000000000"],
    "--latency-to-strategy-ns": ["nan", "-1", "100000000000000000"],
    "--fill-at": ["tomorrow"],
    "--on-error": ["ignore"],
    "--seed": ["nan", "-1", "18446744073709551616"],
    "--tz": ["Mars/Olympus"],
    "--session-close": ["25:00", "4pm"],
    "--columns": ["closing=Last", "close"],
}


@pytest.mark.parametrize(
    ("option", "value"),
    [(option, value) for option, values in BAD_OPTIONS.items() for value in values],
)
def test_cli_refuses_bad_option_values_in_one_line(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "backtest",
        "--strategy",
        "admf_sma_cross:SmaCross",
        "--data",
        str(ORCL),
        "--log",
        str(tmp_path),
        "--no-progress",
        f"{option}={value}",
    ]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own checks (types, choices) exit from parse_args
        code = exc.code
    out = capsys.readouterr()
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("admf backtest: error: " + option.lstrip("-").split("-")[0]) or (
        option in lines[0]
    ), lines[0]
    assert "Traceback" not in out.err
    assert not any(tmp_path.iterdir()), "a refused option must not leave a run behind"


# -- the book and the queue at their edges ----------------------------------------------------


def test_capacities_beyond_memory_are_errors_not_aborts() -> None:
    with pytest.raises(MemoryError, match=r"capacity=4294967296"):
        OrderBook(capacity=2**32)
    with pytest.raises(MemoryError, match=r"EventQueue of 1073741824 events"):
        EventQueue(2**30)
    with pytest.raises(ValueError, match="capacity must be between 1 and"):
        EventQueue(2**30 + 1)


def test_prices_outside_the_book_range_and_negative_prices() -> None:
    book = OrderBook(1)
    with pytest.raises(BookError, match=r"price -9223372036854775808 is outside the book's range"):
        book.add(1, Side.SELL, -(2**63), 10, 0)
    assert book.bbo() == (None, None)
    # Negative prices (a spread) order correctly: -5 is a better ask than 3, -7 a worse bid.
    book.add(2, Side.SELL, 3, 10, 0)
    book.add(3, Side.SELL, -5, 10, 0)
    book.add(4, Side.BUY, -7, 10, 0)
    book.add(5, Side.BUY, -(2**62), 10, 0)
    assert book.bbo() == (-7, -5)
    book.check_invariants()
    fills = book.submit(100, Side.BUY, 10, market=True).fills
    assert [int(f["price"]) for f in fills if f["order_id"] == 100] == [-5]


def test_deep_books_in_any_order_keep_price_order() -> None:
    rng = np.random.default_rng(7)
    prices = rng.permutation(np.arange(1, 3_001)) * 100
    book = OrderBook(100)
    for i, price in enumerate(prices):
        book.add(i + 1, Side.BUY, int(price), 5, i)
    book.check_invariants()
    depth = [price for price, _, _ in book.depth(Side.BUY, 3_000)]
    assert depth == sorted(depth, reverse=True)
    assert len(depth) == 3_000
    for i in rng.permutation(3_000)[:2_500]:
        book.cancel(int(i) + 1)
    book.check_invariants()
    left = sorted(
        (int(p) for i, p in enumerate(prices) if book.order(i + 1) is not None), reverse=True
    )
    assert [price for price, _, _ in book.depth(Side.BUY, 3_000)] == left
    snapshot = book.snapshot()
    other = OrderBook(100)
    other.restore(snapshot)
    assert np.array_equal(other.snapshot(), snapshot)


def test_push_batch_that_meets_a_close_reports_the_count() -> None:
    queue = EventQueue(4)
    events = empty_events(10)
    events["ts"] = np.arange(10)
    threading.Timer(0.2, queue.close).start()
    with pytest.raises(QueueClosed, match="4 of 10 events") as info:
        queue.push_batch(events, timeout=5.0)
    assert info.value.pushed == 4  # type: ignore[attr-defined]
    assert list(queue.pop_batch(10)["ts"]) == [0, 1, 2, 3]
    table = pa.Table.from_batches([to_record_batch(events[:3]), to_record_batch(events[3:])])
    closed = EventQueue(8)
    closed.push_batch(empty_events(6))
    threading.Timer(0.2, closed.close).start()
    with pytest.raises(QueueClosed) as info:
        closed.push_batch(table, timeout=5.0)
    assert info.value.pushed == 2  # type: ignore[attr-defined]


def test_warnings_are_not_errors_here() -> None:
    # The suite turns warnings into errors; AdmfWarning is a UserWarning a user can filter.
    assert issubclass(AdmfWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdmfWarning)
        with pytest.raises(AdmfWarning):
            warnings.warn("x", AdmfWarning, stacklevel=1)
