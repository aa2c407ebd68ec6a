"""Market data readers on real excerpts (tests/data/market/): values, ordering, exact fixed
point against a pure-Python Decimal reference, and clear errors for bad files."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from admf import SCALE, Kind, Side
from admf.data import load_market_data, read_bars, read_market_data, read_quotes, read_trades
from admf.data.bars import DAY_NS, bar_open_ts, detect_format
from admf.errors import AdmfError, AdmfWarning

DATA = Path(__file__).resolve().parents[1] / "data" / "market"
ORCL = DATA / "backtrader__orcl-1995-2014_head300.txt"
MINUTE = DATA / "backtrader__2006-01-02-volume-min-001_head300.txt"
TICKS = DATA / "backtrader__ticksample.csv"
FXCM = DATA / "nautilus__fxcm_gbpusd-m1-bid-2012_head300.csv"
FTX = DATA / "nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv"
TRUEFX = DATA / "nautilus__truefx_usdjpy-ticks_head200.csv"
QUOTE_TICKS = DATA / "nautilus__quote_tick_data_head200.csv"
TRADES = DATA / "nautilus__binance_btcusdt-trades.parquet"
QUOTES = DATA / "nautilus__binance_btcusdt-quotes.parquet"


def fixed(text: str) -> int:
    """The reference conversion: exact decimal, rounded half away from zero to 1e-9."""
    return int((Decimal(text) * SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ns(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000 + when.microsecond * 1000


def rows(path: Path, header: bool = True) -> list[list[str]]:
    with path.open(newline="") as f:
        out = list(csv.reader(f))
    return out[1:] if header else out


@pytest.mark.parametrize(
    ("path", "name", "kind"),
    [
        (ORCL, "backtrader-daily", Kind.BAR),
        (MINUTE, "backtrader-intraday", Kind.BAR),
        (TICKS, "backtrader-datetime", Kind.BAR),
        (FXCM, "nautilus-ohlc", Kind.BAR),
        (FTX, "nautilus-ohlcv", Kind.BAR),
        (TRUEFX, "nautilus-bid-ask", Kind.QUOTE),
        (QUOTE_TICKS, "nautilus-quote-ticks", Kind.QUOTE),
        (QUOTES, "binance-quotes", Kind.QUOTE),
        (TRADES, "binance-trades", Kind.TRADE),
    ],
)
def test_detects_every_format(path: Path, name: str, kind: Kind) -> None:
    fmt = detect_format(path)
    assert (fmt.name, fmt.kind) == (name, kind)
    got_kind, events = read_market_data(path, instrument=7)
    assert got_kind == kind
    assert len(events) > 100
    assert np.all(events["kind"] == kind)
    assert np.all(events["instrument"] == 7)
    assert np.all(events["seq"] == 0)
    assert np.all(np.diff(events["ts"]) >= 0)


def close_ny(day: dt.datetime) -> int:
    """A trading date's 16:00 in New York, in ns UTC."""
    local = dt.datetime(day.year, day.month, day.day, 16, tzinfo=ZoneInfo("America/New_York"))
    return int(local.timestamp()) * 1_000_000_000


def test_daily_bars_exact_and_stamped_at_the_session_close() -> None:
    events = read_bars(ORCL, instrument=3)
    ref = rows(ORCL)
    assert len(events) == len(ref) == 300
    first = events[0]
    # 1995-01-03,2.179012,2.191358,2.117284,2.117284,1.883304,36301200: 16:00 EST = 21:00 UTC
    assert first["ts"] == ns(dt.datetime(1995, 1, 3, 21))
    assert (first["aux"], first["order_id"], first["payload"], first["price"]) == (
        2_179_012_000,
        2_191_358_000,
        2_117_284_000,
        2_117_284_000,
    )
    assert first["qty"] == 36_301_200 * SCALE
    for event, (date, o, h, lo, c, _adj, v) in zip(events, ref, strict=True):
        day = dt.datetime.strptime(date, "%Y-%m-%d")
        assert event["ts"] == close_ny(day)
        stamp = dt.datetime.fromtimestamp(int(event["ts"]) / 1e9, dt.UTC)
        assert stamp.date() == day.date()  # never the next day, in UTC as in New York
        assert [event[f] for f in ("aux", "order_id", "payload", "price", "qty")] == [
            fixed(o),
            fixed(h),
            fixed(lo),
            fixed(c),
            fixed(v),
        ]
    assert load_market_data(ORCL).interval_ns == DAY_NS


def test_a_friday_bar_is_dated_friday_and_the_session_is_settable() -> None:
    events = read_bars(ORCL)
    friday = [e for e in events if close_ny(dt.datetime(1995, 5, 12)) == e["ts"]]
    assert len(friday) == 1
    london = read_bars(ORCL, tz="Europe/London", session_close="16:30")
    # 1995-01-03 16:30 in London (GMT in winter)
    assert london[0]["ts"] == ns(dt.datetime(1995, 1, 3, 16, 30))
    with pytest.raises(AdmfError, match="session_close must be a time of day"):
        read_bars(ORCL, session_close="4pm")


def test_intraday_bars_keep_their_close_stamp() -> None:
    data = load_market_data(MINUTE)
    events = data.events
    ref = rows(MINUTE)
    assert data.interval_ns == 60 * 1_000_000_000
    # 2006-01-02,09:01:00,3602.00,3603.00,3597.00,3599.00,5699,0
    assert events[0]["ts"] == ns(dt.datetime(2006, 1, 2, 9, 1))
    assert (events[0]["aux"], events[0]["price"], events[0]["qty"]) == (
        3602 * SCALE,
        3599 * SCALE,
        5699 * SCALE,
    )
    for event, (d, t, o, h, lo, c, v, _oi) in zip(events, ref, strict=True):
        assert event["ts"] == ns(dt.datetime.strptime(f"{d} {t}", "%Y-%m-%d %H:%M:%S"))
        assert (event["aux"], event["order_id"], event["payload"], event["price"]) == (
            fixed(o),
            fixed(h),
            fixed(lo),
            fixed(c),
        )
        assert event["qty"] == fixed(v)


def test_open_stamped_bars_are_shifted_to_their_close() -> None:
    data = load_market_data(FXCM)
    minute = 60 * 1_000_000_000
    assert data.interval_ns == minute
    # 2012-02-01 00:00:00+00:00,1.57597,1.57606,1.57576,1.57576 (no volume)
    first = data.events[0]
    assert first["ts"] == ns(dt.datetime(2012, 2, 1, 0, 1))
    assert bar_open_ts(data.events, data.interval_ns)[0] == ns(dt.datetime(2012, 2, 1))
    assert (first["aux"], first["order_id"], first["payload"], first["price"], first["qty"]) == (
        1_575_970_000,
        1_576_060_000,
        1_575_760_000,
        1_575_760_000,
        0,
    )


def test_float_artifacts_beyond_nine_decimals_are_rounded_exactly() -> None:
    events = read_bars(FTX)
    ref = rows(FTX)
    long_ones = [i for i, r in enumerate(ref) if len(r[5].partition(".")[2]) > 9]
    assert long_ones  # 218102.59507500002 and friends
    for event, (_ts, o, h, lo, c, v) in zip(events, ref, strict=True):
        assert (event["aux"], event["order_id"], event["payload"], event["price"]) == (
            fixed(o),
            fixed(h),
            fixed(lo),
            fixed(c),
        )
        assert event["qty"] == fixed(v)
    assert events[long_ones[0]]["qty"] == 218_102_595_075_000


def test_tick_rows_and_time_zones() -> None:
    data = load_market_data(TICKS)
    assert data.interval_ns == 0
    assert data.events[0]["ts"] == ns(dt.datetime(2015, 9, 23, 20, 57, 42, 146000))
    assert data.events[0]["qty"] == 180 * SCALE
    shifted = read_bars(TICKS, tz="America/New_York")
    assert np.all(shifted["ts"] - data.events["ts"] == 4 * 3600 * 1_000_000_000)  # EDT
    daily = read_bars(ORCL, tz="UTC")
    assert daily[0]["ts"] == ns(dt.datetime(1995, 1, 3, 16))  # the session close, in UTC


def test_quotes() -> None:
    truefx = read_quotes(TRUEFX)
    # 2013-01-01 22:00:00.295000+00:00,86.655,86.728
    assert truefx[0]["ts"] == ns(dt.datetime(2013, 1, 1, 22, 0, 0, 295000))
    assert (truefx[0]["price"], truefx[0]["aux"], truefx[0]["qty"], truefx[0]["order_id"]) == (
        86_655_000_000,
        86_728_000_000,
        0,
        0,
    )
    ticks = read_quotes(QUOTE_TICKS)
    ref = rows(QUOTE_TICKS, header=False)
    for event, (stamp, bid, ask, _vol) in zip(ticks, ref, strict=True):
        when = dt.datetime.strptime(stamp[:15], "%Y%m%d %H%M%S")
        assert event["ts"] == ns(when) + int(stamp[15:]) * 1_000_000
        assert (event["price"], event["aux"]) == (fixed(bid), fixed(ask))
    binance = read_quotes(QUOTES)
    table = pq.read_table(QUOTES).to_pylist()
    assert len(binance) == len(table) == 451
    for event, row in zip(binance, table, strict=True):
        assert event["ts"] == int(row["timestamp"].timestamp() * 1000) * 1_000_000
        assert event["price"] == fixed(repr(row["bid"]))
        assert event["qty"] == fixed(repr(row["bid_size"]))
        assert event["aux"] == fixed(repr(row["ask"]))
        assert event["order_id"] == fixed(repr(row["ask_size"]))


def test_trades_side_is_the_aggressor() -> None:
    trades = read_trades(TRADES, instrument=9)
    table = pq.read_table(TRADES).to_pylist()
    assert len(trades) == len(table) == 2001
    for event, row in zip(trades, table, strict=True):
        assert event["order_id"] == row["trade_id"]
        assert event["price"] == fixed(repr(row["price"]))
        assert event["qty"] == fixed(repr(row["quantity"]))
        assert event["side"] == (Side.SELL if row["buyer_maker"] == "True" else Side.BUY)
    # 0.00031099999999999997 in the file is the decimal 0.000311 the exchange sent
    assert trades[2]["qty"] == 311_000


def test_unsorted_rows_come_back_in_time_order(tmp_path: Path) -> None:
    lines = TRUEFX.read_text().splitlines()
    path = tmp_path / "shuffled.csv"
    path.write_text("\n".join([lines[0], lines[3], lines[1], lines[2]]) + "\n")
    with pytest.warns(AdmfWarning, match=r"shuffled\.csv: 1 row\(s\) earlier.*sorted"):
        events = read_quotes(path)
    assert list(events["ts"]) == sorted(events["ts"])
    assert list(events["ts"]) == list(read_quotes(TRUEFX)["ts"][:3])


def test_unknown_header_names_the_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "weird.csv"
    path.write_text("when,px,size\n2020-01-01,1,2\n")
    with pytest.raises(AdmfError, match=r"weird\.csv: unknown market data format.*when,px,size"):
        read_market_data(path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(AdmfError, match="empty file"):
        read_market_data(empty)


def test_binary_and_unknown_parquet_files(tmp_path: Path) -> None:
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x28\xb5\x2f\xfd\x00\x01\x02")
    with pytest.raises(AdmfError, match="binary file"):
        read_market_data(binary)
    parquet = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1], "b": [2.0]}), parquet)
    with pytest.raises(AdmfError, match=r"other\.parquet.*Parquet columns found: a, b"):
        read_market_data(parquet)


def test_bad_values_are_named(tmp_path: Path) -> None:
    lines = ORCL.read_text().splitlines()
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join([lines[0], lines[1], lines[2].replace("2.123457", "abc")]) + "\n")
    with pytest.raises(AdmfError, match=r"bad\.txt:3: column 'open': 'abc' is not a number"):
        read_bars(bad)
    missing = tmp_path / "missing.txt"
    missing.write_text("\n".join([lines[0], lines[1].replace("2.179012", "")]) + "\n")
    with pytest.raises(AdmfError, match=r"missing\.txt"):
        read_bars(missing)
    huge = tmp_path / "huge.txt"
    huge.write_text("\n".join([lines[0], lines[1].replace("36301200", "99999999999")]) + "\n")
    with pytest.raises(AdmfError, match=r"'volume'.*fixed-point range"):
        read_bars(huge)


def test_wrong_kind_and_bad_arguments() -> None:
    with pytest.raises(AdmfError, match=r"holds quotes.*expected bars"):
        read_bars(TRUEFX)
    with pytest.raises(AdmfError, match=r"holds bars.*expected trades"):
        read_trades(ORCL)
    with pytest.raises(AdmfError, match="instrument"):
        read_bars(ORCL, instrument=-1)
    with pytest.raises(AdmfError, match="unknown format 'nope'"):
        load_market_data(ORCL, fmt="nope")
    with pytest.raises(FileNotFoundError):
        read_bars(DATA / "no-such-file.csv")


def test_interval_override() -> None:
    data = load_market_data(FXCM, interval_ns=5 * 60 * 1_000_000_000)
    assert data.interval_ns == 5 * 60 * 1_000_000_000
    assert data.events[0]["ts"] == ns(dt.datetime(2012, 2, 1, 0, 5))
