"""A live node's orders take the engine's order path in Rust (validation, risk, the live gate,
then the simulated venues or the commands collected for a venue adapter), as a backtest's do:
no Python order stage is built, and logs recorded while the path was Python stages replay
identically through it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from admf import Event, Strategy, _core
from admf.backtest import BacktestSettings
from admf.errors import AdmfError
from admf.events import Kind
from admf.kernel import Audit
from admf.live.codes import LiveCode
from admf.live.session import Ending, LiveSession, LiveSpec, run_session
from admf.node import build_node
from admf.pipeline import OrderPipeline
from admf.replay import read_recording, replay
from admf.risk import Reason, RiskLimits

from .conftest import ORCL

DATA = Path(__file__).resolve().parents[1] / "data" / "live"


class Buyer(Strategy):
    """Buys at market on every bar, 1 and 10 in turn: risk's order size limit refuses the
    10s."""

    def on_start(self) -> None:
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        self.ctx.buy(10 if self.bars % 2 else 1)


def test_a_venue_adapter_gets_the_orders_the_rust_path_let_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from . import adapters

    def no_pipeline(*args: object) -> None:
        raise AssertionError("a live node built a Python order pipeline")

    monkeypatch.setattr(OrderPipeline, "__init__", no_pipeline)
    spec = LiveSpec(
        strategy="tests.live.test_orders:Buyer",
        symbols=("ORCL",),
        data_adapter="replay",
        exec_adapter="tests.live.adapters:make_checking",
        options={"data": [ORCL], "speed": 0},
        settings=BacktestSettings(risk=RiskLimits(max_order_qty=5)),
    )
    session = LiveSession.create(spec, tmp_path)
    adapters.LOG_DIRS.append(session.run_dir)
    assert session.node.pipeline is None
    assert run_session(session) == Ending.FINISHED, session.reason
    # Nothing of the order path listens in Python: the gate, the portfolio's fold and the
    # venue are Rust's.
    names = {stats.name for stats in session.node.kernel.stats}
    assert names == {"Buyer.on_bar"}
    recording = read_recording(session.run_dir)
    events = recording.events
    submits = events[events["kind"] == Kind.ORDER_SUBMIT]
    risk = events[events["kind"] == Kind.RISK]
    assert len(risk) == len(submits) == (events["kind"] == Kind.BAR).sum()
    allowed = risk[risk["aux"] == Reason.ALLOWED]
    denied = risk[risk["aux"] == Reason.MAX_ORDER_QTY]
    assert len(allowed) == len(denied) == len(risk) // 2
    assert set(allowed["qty"].tolist()) == {10**9}
    at = np.flatnonzero(np.isin(events["seq"], denied["seq"])).tolist()
    assert {recording.payloads[i] for i in at} == {b"order qty 10 > max 5"}
    # The venue was handed exactly the orders risk let through (each decision follows its
    # command) and the gate's cancels of the orders still open at the STOP (here the venue's
    # fills come back only after it), each once the log held it.
    venue = session.execution
    assert isinstance(venue, adapters.CheckingExecution)
    cancels = events[events["kind"] == Kind.ORDER_CANCEL]
    (stop,) = events[(events["kind"] == Kind.CUSTOM) & (events["order_id"] == LiveCode.STOP)]
    assert (cancels["seq"] > stop["seq"]).all()
    sent = sorted([*(allowed["seq"] - 1).tolist(), *cancels["seq"].tolist()])
    assert [seq for seq, _ in venue.seen] == sent
    assert all(held for _, held in venue.seen)
    # The venue's fills came back as inputs and the Rust portfolio folded them.
    assert session.node.portfolio.fills == len(venue.tracker.executions) == len(allowed)
    assert session.node.portfolio.qty_fx(1) == len(allowed) * 10**9
    assert replay(session.run_dir).identical


@pytest.mark.parametrize("name", ["ctl-sim", "alpaca-sigint", "alpaca-sigkill-resumed"])
def test_logs_recorded_through_python_stages_replay_identically(tmp_path: Path, name: str) -> None:
    """Live logs recorded before the live gate moved to Rust, when a live node ran the Python
    pipeline (`tests/data/live/README.md`): pause, resume, flatten and stop on the simulated
    venue; an alpaca session reconciling and cancelling its open order on SIGINT; one killed
    and resumed, reconciling again. The Rust path takes every decision in the same order."""
    run = tmp_path / name
    shutil.copytree(DATA / name, run)
    events = read_recording(run).events
    records = events[events["kind"] == Kind.CUSTOM]["order_id"].tolist()
    assert LiveCode.STOP in records
    assert replay(run).identical


def test_the_gate_reads_the_codes_of_the_live_records() -> None:
    gate = dict(_core.LIVE_GATE_CODES)
    assert {name: int(LiveCode[name]) for name in gate} == gate
    assert set(gate) == {
        "RECONCILING", "RECONCILED", "PAUSE", "RESUME", "FLATTEN", "STOP", "RESUMED"
    }  # fmt: skip


def test_a_live_node_refuses_replaced_stages_and_a_backtest_an_external_venue() -> None:
    def feed(core: object, payloads: object) -> bool:
        return False

    settings = BacktestSettings()
    with pytest.raises(AdmfError, match="stages: a live node runs the engine's order path"):
        build_node(Buyer, {}, settings, [], [1], None, feed=feed, stages={"audit": Audit()})
    with pytest.raises(AdmfError, match="external: only a live node"):
        build_node(Buyer, {}, settings, [], [1], None, external=True)
