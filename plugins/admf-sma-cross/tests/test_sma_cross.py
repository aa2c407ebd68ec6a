"""The sma-cross plugin: discovered through its entry point, trades on real bars."""

from __future__ import annotations

import itertools
from importlib import resources

import pytest
from admf_sma_cross import SmaCross

from admf import Kind, Side
from admf.backtest import backtest
from admf.errors import AdmfError
from admf.plugins import list_plugins, load

ORCL = str(resources.files("admf.sample") / "orcl-2005-2014.csv")


def test_entry_point_is_installed() -> None:
    assert load("strategies", "sma-cross") is SmaCross
    info = [p for p in list_plugins("strategies") if p.name == "sma-cross"]
    assert len(info) == 1
    assert info[0].ok
    assert info[0].distribution == "admf-sma-cross"


def test_buys_on_golden_cross_and_sells_on_death_cross() -> None:
    result = backtest("sma-cross", [ORCL], {"fast": 10, "slow": 30})
    fills = result.of_kind(Kind.FILL)
    assert len(fills) > 20
    # Alternating: buy everything the cash affords, then sell it all.
    sides = list(fills["side"])
    assert sides[0] == Side.BUY
    assert all(a != b for a, b in itertools.pairwise(sides))
    buys, sells = fills[fills["side"] == Side.BUY], fills[fills["side"] == Side.SELL]
    assert (buys["qty"][: len(sells)] == sells["qty"]).all()
    assert result.portfolio.position(1).qty_fx in (0, int(buys["qty"][-1]))


def test_faster_averages_trade_more() -> None:
    slow = backtest("sma-cross", [ORCL], {"fast": 20, "slow": 60})
    fast = backtest("sma-cross", [ORCL], {"fast": 5, "slow": 15})
    assert len(fast.of_kind(Kind.FILL)) > len(slow.of_kind(Kind.FILL))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(AdmfError, match="need 0 < fast < slow, got fast=30, slow=10"):
        backtest("sma-cross", [ORCL], {"fast": 30, "slow": 10})
    with pytest.raises(AdmfError, match="has no parameter"):
        backtest("sma-cross", [ORCL], {"fastest": 3})
