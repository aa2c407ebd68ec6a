"""Backtests of quote files through the book venue: an instrument given a tick trades on its
quotes (each quote is the venue's whole L1 book), with the quotes' sizes when they have
them, the venue's latency, and refusal of quotes off the tick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from admf import SCALE, Kind, Side
from admf.backtest import BacktestSettings, backtest, load_source
from admf.events import EventArray, Flag

DATA = Path(__file__).resolve().parents[1] / "data"
USDJPY = DATA / "usdjpy-quotes-100.csv"
BTC = DATA / "market" / "nautilus__binance_btcusdt-quotes.parquet"
FLIP = "tests.live.strategies:QuoteFlip"


def _quote_at(quotes: EventArray, ts: int, *, before: bool = False) -> np.void:
    """The last quote at or before ``ts`` (strictly before: ``before``): the book an order
    handled at ``ts`` met."""
    return quotes[int(np.searchsorted(quotes["ts"], ts, side="left" if before else "right")) - 1]


def _run(path: Path, tick: int | None, params: dict[str, float], **settings: Any) -> EventArray:
    source = load_source(path, 1)
    source.tick = tick
    result = backtest(FLIP, [source], params, BacktestSettings(**settings))
    return result.events


def test_quotes_fill_on_the_book_venue_when_the_instrument_has_a_tick() -> None:
    params = {"every": 10, "qty": 1000.0}
    # Without a tick the quotes go to the bar venue, which fills on bars only.
    plain = _run(USDJPY, None, params)
    assert (plain["kind"] == Kind.ORDER_SUBMIT).sum() > 0
    assert (plain["kind"] == Kind.FILL).sum() == 0
    events = _run(USDJPY, SCALE // 1000, params)
    quotes = events[events["kind"] == Kind.QUOTE]
    fills = events[events["kind"] == Kind.FILL]
    assert len(fills) == 10 == (events["kind"] == Kind.ORDER_SUBMIT).sum()
    for fill in fills:
        quote = _quote_at(quotes, int(fill["ts"]))
        # TrueFX quotes have no sizes: the whole order takes the touch.
        assert int(fill["qty"]) == 1000 * SCALE
        assert int(fill["flags"]) & Flag.AGGRESSOR
        expected = quote["aux"] if fill["side"] == Side.BUY else quote["price"]
        assert int(fill["price"]) == int(expected), fill
    assert list(fills["side"]) == [Side.BUY, Side.SELL] * 5


def test_quote_sizes_limit_a_fill_and_latency_delays_it() -> None:
    # BTCUSDT book ticker: one unit is more than the ask shows; the rest of a market order
    # expires.
    btc = {"every": 20, "qty": 1.0}
    events = _run(BTC, SCALE // 100, btc, lot_size=1e-6)
    quotes = events[events["kind"] == Kind.QUOTE]
    buys = events[(events["kind"] == Kind.FILL) & (events["side"] == Side.BUY)]
    assert len(buys) > 0
    for fill in buys:
        quote = _quote_at(quotes, int(fill["ts"]))
        assert int(fill["price"]) == int(quote["aux"])
        assert int(fill["qty"]) == min(int(quote["order_id"]), SCALE)
    assert (events["kind"] == Kind.ORDER_EXPIRED).sum() > 0
    # With a latency the order meets the book at its arrival (before a quote of that very
    # instant, which the venue's clock has not applied yet): its fill is stamped then.
    late = _run(BTC, SCALE // 100, btc, lot_size=1e-6, latency_to_venue_ns=10**8)
    submits = late[late["kind"] == Kind.ORDER_SUBMIT]
    fills = late[late["kind"] == Kind.FILL]
    assert len(fills) > 0
    first = fills[0]
    sent = submits[submits["order_id"] == first["order_id"]][0]
    assert int(first["ts"]) >= int(sent["ts"]) + 10**8
    assert int(first["price"]) == int(_quote_at(quotes, int(first["ts"]), before=True)["aux"])


def test_quotes_off_the_tick_are_refused_with_the_reason() -> None:
    source = load_source(USDJPY, 1)
    source.tick = SCALE // 100  # the quotes have three decimals
    result = backtest(FLIP, [source], {"every": 10, "qty": 1000.0})
    errors = result.of_kind(Kind.ERROR)
    quotes = result.of_kind(Kind.QUOTE)
    off = (quotes["price"] % source.tick != 0) | (quotes["aux"] % source.tick != 0)
    assert len(errors) == off.sum() > 90
    message = result.payloads[int(errors["seq"][0])]
    assert isinstance(message, dict)
    assert "is not a multiple of the tick 10000000" in message["venue"]
    assert len(result.of_kind(Kind.FILL)) == 0


ORCL = DATA / "orcl-1995-daily-100.csv"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
TICK = SCALE // 1000  # the USD/JPY quotes' three decimals


def _cli(argv: list[str], root: Path) -> int:
    from admf.cli import main

    return main(
        ["backtest", "--strategy", FLIP, "--param", "every=10", "--param", "qty=1000",
         "--no-progress", "--log", str(root), "--run-id", "q", *argv]
    )  # fmt: skip


def test_the_cli_trades_a_quote_file_on_the_book_venue_with_tick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from admf.replay import read_recording, replay

    assert _cli(["--data", str(USDJPY), "--tick", "0.001"], tmp_path) == 0
    assert "fills" in capsys.readouterr().out
    rec = read_recording(tmp_path / "run=q")
    assert [d["tick"] for d in rec.config["data"]] == [TICK]
    # The same run as the Python API's, which gives the source its tick.
    source = load_source(USDJPY, 1)
    source.tick = TICK
    api = backtest(FLIP, [source], {"every": 10, "qty": 1000.0})
    fills = rec.events[rec.events["kind"] == Kind.FILL]
    assert len(fills) == 10
    assert fills.tobytes() == api.of_kind(Kind.FILL).tobytes()
    assert replay(tmp_path / "run=q").identical


def test_the_cli_takes_a_tick_per_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from admf.replay import read_recording

    argv = ["--data", str(USDJPY), str(ORCL), "--tick", "0.001", "-"]
    assert _cli(argv, tmp_path / "each") == 0
    # One step for every quote file: the bars stay on the bar venue.
    assert _cli(["--data", str(USDJPY), str(ORCL), "--tick", "0.001"], tmp_path / "one") == 0
    capsys.readouterr()
    runs = [read_recording(tmp_path / d / "run=q") for d in ("each", "one")]
    for rec in runs:
        assert [d["tick"] for d in rec.config["data"]] == [TICK, None]
    fills = [r.events[r.events["kind"] == Kind.FILL] for r in runs]
    assert len(fills[0]) == 10  # QuoteFlip trades instrument 1, the quotes
    assert (fills[0]["instrument"] == 1).all()
    assert fills[0].tobytes() == fills[1].tobytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([str(USDJPY), "--tick", "x"], "--tick takes a price step > 0 (0.01), or '-' for none"),
        ([str(USDJPY), "--tick", "0"], "--tick takes a price step > 0"),
        ([str(USDJPY), "--tick", "-"], "--tick takes a price step > 0"),
        ([str(USDJPY), "--tick", "0.001", "0.001"], "one per --data file (1), got 2"),
        ([str(ORCL), "--tick", "0.01"], "--tick 0.01: none of the data files is quotes"),
        (
            [str(ORCL), str(USDJPY), "--tick", "0.01", "0.001"],
            "bar data; only quote files trade on the book venue with a tick",
        ),
        (
            [str(AAPL), str(USDJPY), "--tick", "0.01", "0.001"],
            "book data brings its own tick; a tick is for quote files",
        ),
    ],
)
def test_a_bad_tick_is_one_line_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert _cli(["--data", *argv], tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("admf backtest: error: ")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
