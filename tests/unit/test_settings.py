"""Settings: what every run has (`RunSettings`) and what a simulated venue adds
(`SimulationSettings`); `BacktestSettings` is both, flat, and loads the dicts old manifests
hold."""

from __future__ import annotations

import dataclasses

import pytest

from admf.backtest import BacktestSettings, RunSettings, SimulationSettings, backtest
from admf.errors import SettingError
from admf.live.adapter import LiveSetupError
from admf.live.session import LiveSpec
from admf.risk import RiskLimits
from tests.live.conftest import ORCL

RUN = {"initial_cash", "risk", "seed", "on_error", "lot_size", "tick_size"}
SIMULATION = {
    "fill_at",
    "fee_rate",
    "fee_per_unit",
    "fee_minimum",
    "slippage_bps",
    "maker_fee",
    "taker_fee",
    "latency_to_venue_ns",
    "latency_to_strategy_ns",
}


def test_the_two_classes_and_their_union() -> None:
    assert {f.name for f in dataclasses.fields(RunSettings)} == RUN
    assert {f.name for f in dataclasses.fields(SimulationSettings)} == SIMULATION
    both = BacktestSettings(initial_cash=5_000.0, fee_rate=0.001, seed=7)
    assert isinstance(both, RunSettings)
    assert isinstance(both, SimulationSettings)
    assert set(both.to_dict()) == RUN | SIMULATION
    assert type(both.run) is RunSettings
    assert both.run.initial_cash == 5_000.0
    assert type(both.simulation) is SimulationSettings
    assert both.simulation.fee_rate == 0.001
    assert BacktestSettings.of(both.run, both.simulation) == both
    assert BacktestSettings.of(both.run) == BacktestSettings(initial_cash=5_000.0, seed=7)
    assert both.simulation_set() == ["fee_rate"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        both.seed = 1  # type: ignore[misc]


def test_an_old_manifest_dict_loads() -> None:
    """The flat dict every manifest so far holds (with its risk table)."""
    old = {
        "initial_cash": 50_000.0,
        "fill_at": "close",
        "fee_rate": 0.0005,
        "fee_per_unit": 0.0,
        "fee_minimum": 1.0,
        "slippage_bps": 2.0,
        "risk": dataclasses.asdict(RiskLimits(max_position=100.0)),
        "seed": 3,
        "on_error": "stop",
        "maker_fee": -0.0001,
        "taker_fee": 0.0003,
        "latency_to_venue_ns": 10,
        "latency_to_strategy_ns": 20,
        "lot_size": 1.0,
        "tick_size": 0.01,
    }
    settings = BacktestSettings.from_dict(old)
    assert settings.to_dict() == old
    assert settings.risk.max_position == 100.0
    run = RunSettings.from_dict(settings.run.to_dict())
    assert run == settings.run


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: RunSettings(initial_cash=-5.0), "initial_cash"),
        (lambda: RunSettings(on_error="explode"), "on_error"),
        (lambda: RunSettings(risk=RiskLimits(max_position=float("nan"))), "risk.max_position"),
        (lambda: SimulationSettings(fee_rate=2.0), "fee_rate"),
        (lambda: SimulationSettings(fill_at="later"), "fill_at"),
        (lambda: SimulationSettings(latency_to_venue_ns=-1), "latency_to_venue_ns"),
        (lambda: BacktestSettings(slippage_bps=float("inf")), "slippage_bps"),
        (lambda: BacktestSettings(lot_size=0.0), "lot_size"),
    ],
)
def test_each_class_checks_its_own_settings(make: object, name: str) -> None:
    with pytest.raises(SettingError, match=name):
        make()  # type: ignore[operator]


def test_a_venue_session_holds_run_settings_only() -> None:
    def spec(settings: RunSettings, exec_adapter: str = "alpaca") -> LiveSpec:
        return LiveSpec(
            strategy="sma-cross",
            symbols=("ORCL",),
            data_adapter="alpaca",
            exec_adapter=exec_adapter,
            settings=settings,
        )

    venue = spec(BacktestSettings(initial_cash=7_000.0, seed=4))
    assert type(venue.settings) is RunSettings
    assert venue.settings == RunSettings(initial_cash=7_000.0, seed=4)
    assert set(venue.to_config()["settings"]) == RUN
    assert LiveSpec.from_config(venue.to_config()).settings == venue.settings
    with pytest.raises(LiveSetupError, match="fee_rate, slippage_bps: settings of the simulated"):
        spec(BacktestSettings(fee_rate=0.001, slippage_bps=1.0))
    simulated = spec(BacktestSettings(fee_rate=0.001), exec_adapter="sim")
    assert simulated.settings == BacktestSettings(fee_rate=0.001)


def test_the_simulation_settings_reach_the_simulated_venue() -> None:
    """The same run with and without a fee: only the simulation settings differ, and the
    fills carry the fee."""
    plain = backtest("sma-cross", [ORCL], params={"fast": 3, "slow": 8})
    charged = backtest(
        "sma-cross", [ORCL], params={"fast": 3, "slow": 8}, settings=BacktestSettings(fee_rate=0.01)
    )
    assert len(plain.fills()) == len(charged.fills()) > 0
    assert sum(plain.fills()["fee"].to_pylist()) == 0
    assert min(charged.fills()["fee"].to_pylist()) > 0
