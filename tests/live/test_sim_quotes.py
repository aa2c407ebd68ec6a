"""Paper trading without a paper account: a live session on the paper exchange's quote stream
(the ``alpaca`` data adapter over loopback) with the simulated venue as its execution side.
A symbol given a tick trades on the book venue, which fills on quotes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from admf import SCALE, Kind, Side
from admf.backtest import BacktestSettings
from admf.cli import main
from admf.exchange import Credentials, ExchangeConfig
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.replay import read_recording, replay
from tests.exchange.conftest import RunningExchange

from .conftest import DATA, KEY, SECRET, alpaca_options

USDJPY = str(DATA / "usdjpy-quotes-100.csv")
TICK = SCALE // 1000  # the quotes' three decimals
QUOTE_FLIP = "tests.live.strategies:QuoteFlip"
LATENCY = 1_000_000  # 1 ms
SPEED = 400.0
"""The 100 quotes span 539 s: about 1.3 s at this speed."""


class QuoteExchange(RunningExchange):
    """The exchange on the USD/JPY quotes with the live tests' key pair, paused until
    a market data client subscribes."""

    def __init__(self) -> None:
        config = ExchangeConfig(data=(USDJPY,), paused=True, speed=SPEED)
        super().__init__(config, creds=[(Credentials(KEY, SECRET), None)])

    def play_when_subscribed(self) -> threading.Thread:
        server = self.server
        assert server is not None

        def subscribed() -> bool:
            return self.call(lambda: any(c.key_id for c in server.hub.clients))

        def go() -> None:
            server.paused = False
            server._anchor = None
            server._wake.set()

        def wait() -> None:
            for _ in range(500):
                if subscribed():
                    self.call(go)
                    return
                threading.Event().wait(0.01)

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        return thread

    def order_count(self) -> int:
        server = self.server
        assert server is not None
        return self.call(lambda: len(server.core.orders))


@pytest.fixture
def quote_exchange() -> Iterator[QuoteExchange]:
    ex = QuoteExchange()
    yield ex
    ex.close()


def test_a_sim_session_fills_on_quotes_and_replays_exactly(
    tmp_path: Path,
    quote_exchange: QuoteExchange,
    credentials: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = LiveSpec(
        strategy=QUOTE_FLIP,
        symbols=("USDJPY",),
        data_adapter="alpaca",
        params={"every": 5, "qty": 1000.0},
        options={**alpaca_options(quote_exchange), "channels": "quotes"},
        ticks={"USDJPY": TICK},
        settings=BacktestSettings(latency_to_venue_ns=LATENCY),
        duration=2.5,
    )
    session = LiveSession.create(spec, tmp_path)
    quote_exchange.play_when_subscribed()
    assert run_session(session) == Ending.FINISHED, session.reason
    rec = read_recording(session.run_dir)
    assert rec.config["data"][0]["tick"] == TICK
    events = rec.events
    quotes = events[events["kind"] == Kind.QUOTE]
    assert len(quotes) >= 60
    fills = events[events["kind"] == Kind.FILL]
    submits = events[events["kind"] == Kind.ORDER_SUBMIT]
    assert len(submits) >= 15
    # Every order filled, those still in flight after the last quote too: the venue's clock
    # moves with the session's CLOCK readings as well as with the instrument's quotes.
    assert sorted(fills["order_id"].tolist()) == sorted(submits["order_id"].tolist())
    late = submits[submits["ts"] + LATENCY > quotes["ts"].max()]
    assert len(late) >= 1  # the order sent on the last quote (every fifth of 100)
    clocks = events[events["kind"] == Kind.CLOCK]["ts"]
    for sent in late:
        fill = fills[fills["order_id"] == sent["order_id"]][0]
        # answered on the first CLOCK reading at or after its arrival at the venue
        arrival = int(sent["ts"]) + LATENCY
        assert int(fill["ts"]) >= arrival
        assert int(fill["ts"]) <= int(clocks[np.searchsorted(clocks, arrival)])
    # Each market order reached the venue LATENCY after it was sent and took the touch of the
    # book then (the last quote received before), whole (TrueFX quotes have no sizes). The
    # venue acts when the next quote moves its clock past the arrival; the kernel stamps the
    # answer then (its clock never goes back).
    for fill in fills:
        sent = submits[submits["order_id"] == fill["order_id"]][0]
        arrival = int(sent["ts"]) + LATENCY
        assert int(fill["ts"]) >= arrival
        quote = quotes[int(np.searchsorted(quotes["ts"], arrival)) - 1]
        touch = quote["aux"] if fill["side"] == Side.BUY else quote["price"]
        assert int(fill["price"]) == int(touch)
        assert int(fill["qty"]) == 1000 * SCALE
    signed = np.where(fills["side"] == Side.BUY, fills["qty"], -fills["qty"]).sum()
    assert session.node.portfolio.qty_fx(1) == int(signed)
    # The simulated venue filled them: nothing reached the exchange.
    assert quote_exchange.order_count() == 0
    report = replay(session.run_dir)
    assert report.identical, report.first_difference
    assert main(["replay", str(session.run_dir)]) == 0
    assert "identical: every output event matches" in capsys.readouterr().out
    assert main(["replay", str(session.run_dir), "--as-backtest"]) == 0
    out = capsys.readouterr().out
    # The rerun keeps the session's CLOCK readings: the orders in flight after the last quote
    # are answered in the simulation too, at the same prices.
    assert f"fills matched: {len(fills)}; live only: 0; simulation only: 0" in out
    for path in session.run_dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tick", "USDJPY=x"], "--tick takes SYMBOL=STEP"),
        (["--tick", "USDJPY=0"], "--tick takes SYMBOL=STEP"),
        (["--tick", "EURUSD=0.001"], "--tick: EURUSD is not a symbol of the session"),
        (["--tick", "USDJPY=0.001", "--exec-adapter", "alpaca"], "goes with --exec-adapter sim"),
        (["--busy-poll", "-1"], "busy_poll must be 0..1 seconds, got -1.0"),
    ],
)
def test_bad_ticks_fail_before_anything_starts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credentials: tuple[str, str],
    argv: list[str],
    message: str,
) -> None:
    code = main(
        ["live", "--strategy", QUOTE_FLIP, "--data-adapter", "replay", "--data", USDJPY,
         "--speed", "0", "--log", str(tmp_path / "runs"), *argv]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_dry_run_on_quotes_fills_with_a_tick(tmp_path: Path) -> None:
    """The replay adapter's quotes through the book venue, from the command line."""
    code = main(
        ["live", "--strategy", QUOTE_FLIP, "--param", "every=10", "--data-adapter", "replay",
         "--data", USDJPY, "--speed", "0", "--tick", "usdjpy=0.001", "--log", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    (run,) = tmp_path.glob("run=*")
    events = read_recording(run).events
    assert (events["kind"] == Kind.FILL).sum() == 10
    assert replay(run).identical
