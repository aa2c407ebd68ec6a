"""SQL over event logs: the views decode real bars and quotes, every kind family, many runs
together, the live tail with the sealed files; and ``admf query``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from admf import Event, EventLog, Flag, Kind, Side, empty_events, to_fixed
from admf.cli import main
from admf.log import VIEWS, QueryError, query

DATA = Path(__file__).resolve().parents[1] / "data"
NINE = Decimal("0.000000001")


def ns(text: str) -> int:
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


def orcl_bars() -> tuple[np.ndarray, list[dict[str, str]]]:
    with open(DATA / "orcl-1995-daily-100.csv") as f:
        rows = list(csv.DictReader(f))
    ev = empty_events(len(rows))
    for i, row in enumerate(rows):
        ev[i]["ts"] = ns(row["Date"])
        ev[i]["kind"] = Kind.BAR
        ev[i]["instrument"] = 1
        ev[i]["aux"] = to_fixed(float(row["Open"]))
        ev[i]["order_id"] = to_fixed(float(row["High"]))
        ev[i]["payload"] = to_fixed(float(row["Low"]))
        ev[i]["price"] = to_fixed(float(row["Close"]))
        ev[i]["qty"] = to_fixed(float(row["Volume"]))
    return ev, rows


def usdjpy_quotes() -> tuple[np.ndarray, list[dict[str, str]]]:
    with open(DATA / "usdjpy-quotes-100.csv") as f:
        rows = list(csv.DictReader(f))
    ev = empty_events(len(rows))
    for i, row in enumerate(rows):
        ev[i]["ts"] = ns(row["timestamp"])
        ev[i]["kind"] = Kind.QUOTE
        ev[i]["instrument"] = 2
        ev[i]["price"] = to_fixed(float(row["bid"]))
        ev[i]["aux"] = to_fixed(float(row["ask"]))
        ev[i]["qty"] = to_fixed(1_000_000.0)
        ev[i]["order_id"] = to_fixed(2_000_000.0)
    return ev, rows


@pytest.fixture
def market_log(tmp_path: Path) -> EventLog:
    bars, _ = orcl_bars()
    quotes, _ = usdjpy_quotes()
    log = EventLog.create(tmp_path, "market", config={"data": "orcl+usdjpy"}, seed=7)
    log.append(bars[:60])
    log.seal()
    log.append(bars[60:])  # the rest stays in the live tail
    log.append(quotes)
    return log


def test_bars_view_decodes_the_slots_of_real_bars(market_log: EventLog) -> None:
    _, rows = orcl_bars()
    with market_log as log:
        assert len(log.sealed_files) == 1
        result = log.sql(
            "SELECT seq, epoch_ns(ts) AS ts_ns, open, high, low, close, volume, close_fx "
            "FROM bars ORDER BY seq"
        ).to_pylist()
    assert len(result) == 100
    for got, row in zip(result, rows, strict=True):
        assert got["ts_ns"] == ns(row["Date"])
        for name, column in [("open", "Open"), ("high", "High"), ("low", "Low")]:
            assert got[name] == Decimal(row[column]).quantize(NINE)
        assert got["close"] == Decimal(row["Close"]).quantize(NINE)
        assert got["volume"] == Decimal(row["Volume"])
        assert got["close_fx"] == to_fixed(float(row["Close"]))


def test_quotes_view_decodes_real_quotes(market_log: EventLog) -> None:
    _, rows = usdjpy_quotes()
    with market_log as log:
        result = log.sql("SELECT bid, ask, bid_size, ask_size FROM quotes ORDER BY seq").to_pylist()
        spread = log.sql("SELECT max(ask - bid) AS widest FROM quotes").to_pylist()[0]["widest"]
    assert [r["bid"] for r in result] == [Decimal(r["bid"]).quantize(NINE) for r in rows]
    assert [r["ask"] for r in result] == [Decimal(r["ask"]).quantize(NINE) for r in rows]
    assert {r["bid_size"] for r in result} == {Decimal(1_000_000)}
    assert {r["ask_size"] for r in result} == {Decimal(2_000_000)}
    assert spread == max(Decimal(r["ask"]) - Decimal(r["bid"]) for r in rows)


def test_events_view_unions_sealed_files_and_the_live_tail(market_log: EventLog) -> None:
    with market_log as log:
        counts = log.sql(
            "SELECT kind_name, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM events "
            "GROUP BY ALL ORDER BY kind_name"
        ).to_pylist()
        assert counts == [
            {"kind_name": "BAR", "n": 100, "lo": 1, "hi": 100},
            {"kind_name": "QUOTE", "n": 100, "lo": 101, "hi": 200},
        ]
        # the views follow the log: new appends and new seals show up
        log.append(Event(Kind.TRADE, 1, instrument=1, price=to_fixed(2.5), qty=3))
        assert log.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 201}]
        log.seal()
        assert log.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 201}]
        assert log.sql("SELECT DISTINCT run FROM events").to_pylist() == [{"run": "market"}]


def test_every_view_decodes_its_kinds(tmp_path: Path) -> None:
    p = to_fixed
    events = [
        Event(Kind.TRADE, 1, instrument=3, side=Side.BUY, price=p(10.5), qty=p(2), order_id=77),
        Event(Kind.BOOK_ADD, 2, side=Side.SELL, order_id=5, price=p(11), qty=p(4)),
        Event(Kind.BOOK_CANCEL, 3, side=Side.SELL, order_id=5, qty=p(1)),
        Event(Kind.BOOK_CLEAR, 4, flags=Flag.SNAPSHOT),
        Event(
            Kind.ORDER_SUBMIT, 5, order_id=9, side=Side.BUY, price=p(10), qty=p(1), flags=Flag.IOC
        ),
        Event(Kind.ORDER_REJECTED, 6, order_id=9, aux=3),
        Event(Kind.ORDER_SUBMIT, 7, order_id=10, side=Side.SELL, qty=p(1), flags=Flag.MARKET),
        Event(
            Kind.FILL,
            8,
            order_id=10,
            payload=5,
            side=Side.SELL,
            price=p(11),
            qty=p(1),
            aux=p(0.01),
            flags=Flag.OWN,
        ),
        Event(Kind.RISK, 9, order_id=11, aux=2),
        Event(Kind.SIGNAL, 10, instrument=3, price=p(-0.25)),
        Event(Kind.ERROR, 11, aux=500),
        Event(Kind.CUSTOM, 12, price=p(1)),
    ]
    rejected = "value buys no whole unit"
    payloads = [None] * 5 + [rejected] + [None] * 3
    payloads += [{"why": "cross"}, "division by zero", b"\xff\xfe"]
    with EventLog.create(tmp_path, "kinds") as log:
        log.append(events, payloads=payloads)
        one = lambda q: log.sql(q).to_pylist()  # noqa: E731
        assert one("SELECT side, price, size, trade_id, price_fx FROM trades") == [
            {
                "side": "buy",
                "price": Decimal("10.5"),
                "size": Decimal(2),
                "trade_id": 77,
                "price_fx": p(10.5),
            }
        ]
        assert one("SELECT action, side, order_id, qty, snapshot FROM book ORDER BY seq") == [
            {"action": "add", "side": "sell", "order_id": 5, "qty": Decimal(4), "snapshot": False},
            {
                "action": "cancel",
                "side": "sell",
                "order_id": 5,
                "qty": Decimal(1),
                "snapshot": False,
            },
            {"action": "clear", "side": None, "order_id": 0, "qty": Decimal(0), "snapshot": True},
        ]
        assert one(
            "SELECT event, order_id, side, order_type, time_in_force, reason FROM orders "
            "ORDER BY seq"
        ) == [
            {
                "event": "submit",
                "order_id": 9,
                "side": "buy",
                "order_type": "limit",
                "time_in_force": "ioc",
                "reason": None,
            },
            {
                "event": "rejected",
                "order_id": 9,
                "side": None,
                "order_type": "limit",
                "time_in_force": "gtc",
                "reason": rejected,
            },
            {
                "event": "submit",
                "order_id": 10,
                "side": "sell",
                "order_type": "market",
                "time_in_force": "gtc",
                "reason": None,
            },
        ]
        assert one("SELECT order_id, contra_order_id, price, fee, own FROM fills") == [
            {
                "order_id": 10,
                "contra_order_id": 5,
                "price": Decimal(11),
                "fee": Decimal("0.01"),
                "own": True,
            }
        ]
        assert one("SELECT order_id, reason FROM risk") == [{"order_id": 11, "reason": 2}]
        signal = one("SELECT value, payload_text FROM signals")[0]
        assert signal["value"] == Decimal("-0.25")
        assert json.loads(signal["payload_text"]) == {"why": "cross"}
        assert one("SELECT code, message FROM errors") == [
            {"code": 500, "message": "division by zero"}
        ]
        assert one("SELECT payload_data, payload_text FROM custom") == [
            {"payload_data": b"\xff\xfe", "payload_text": None}
        ]
        names = {r["name"] for r in one("SELECT view_name AS name FROM duckdb_views()")}
        assert set(VIEWS) <= names


def test_many_runs_are_queried_together(tmp_path: Path) -> None:
    bars, _ = orcl_bars()
    for i, run in enumerate(["a", "b", "c"]):
        with EventLog.create(tmp_path, run, config={"n": i}, seed=i) as log:
            log.append(bars[: 10 * (i + 1)])
            if run != "b":
                log.seal()
    per_run = query(tmp_path, "SELECT run, count(*) AS n FROM bars GROUP BY run ORDER BY run")
    assert per_run.to_pylist() == [
        {"run": "a", "n": 10},
        {"run": "b", "n": 20},
        {"run": "c", "n": 30},
    ]
    runs = query(tmp_path, "SELECT run, seed, config, events FROM runs ORDER BY run").to_pylist()
    assert runs == [
        {"run": "a", "seed": 0, "config": '{"n": 0}', "events": 10},
        {"run": "b", "seed": 1, "config": '{"n": 1}', "events": 20},
        {"run": "c", "seed": 2, "config": '{"n": 2}', "events": 30},
    ]
    # DuckDB itself reads the same sealed files directly, Hive-partitioned by run
    direct = duckdb.sql(
        f"SELECT run, count(*) AS n FROM read_parquet('{tmp_path}/run=*/*.parquet', "
        "hive_partitioning = true) GROUP BY run ORDER BY run"
    ).to_arrow_table()
    assert direct.to_pylist() == [{"run": "a", "n": 10}, {"run": "c", "n": 30}]


def test_bad_sql_is_a_query_error_with_duckdbs_message(market_log: EventLog) -> None:
    with market_log as log:
        with pytest.raises(QueryError, match="Parser Error"):
            log.sql("SELEKT 1")
        with pytest.raises(QueryError, match="nonexistent"):
            log.sql("SELECT * FROM nonexistent")
        assert log.sql("SELECT 1 AS x").to_pylist() == [{"x": 1}]


def test_cli_prints_a_table_and_writes_files(
    market_log: EventLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = market_log.path
    market_log.close()
    assert main(["query", str(run_dir), "SELECT seq, close FROM bars ORDER BY seq LIMIT 3"]) == 0
    out = capsys.readouterr().out
    assert "2.117284000" in out
    assert "3 rows" in out
    assert (
        main(["query", str(run_dir), "SELECT seq, close FROM bars LIMIT 2", "--format", "csv"]) == 0
    )
    assert capsys.readouterr().out.splitlines()[0] == '"seq","close"'
    assert (
        main(["query", str(run_dir), "SELECT seq, ts, close FROM bars LIMIT 2", "--format", "json"])
        == 0
    )
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first == {"seq": 1, "ts": "1995-01-03T00:00:00.000000000Z", "close": "2.117284000"}
    target = tmp_path / "out.parquet"
    assert (
        main(
            [
                "query",
                str(run_dir.parent),
                "SELECT * FROM quotes",
                "--format",
                "parquet",
                "--output",
                str(target),
            ]
        )
        == 0
    )
    assert pq.read_table(target).num_rows == 100
    assert main(["query", str(run_dir), "SELECT 1", "--format", "parquet"]) == 2
    assert "needs --output" in capsys.readouterr().err


def test_cli_bad_sql_exits_nonzero_without_a_traceback(market_log: EventLog) -> None:
    run_dir = market_log.path
    market_log.close()
    proc = subprocess.run(
        [sys.executable, "-m", "admf", "query", str(run_dir), "SELECT nope FROM bars"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "admf query: error: Binder Error" in proc.stderr
    assert "nope" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "admf", "query", str(run_dir / "nowhere"), "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "no event log at" in missing.stderr
