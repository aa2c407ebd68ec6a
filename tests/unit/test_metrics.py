"""Performance statistics on small hand-checked series."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admf import SCALE, Side, _core
from admf.data import read_bars
from admf.errors import AdmfError
from admf.metrics import (
    DAY_NS,
    TRADE_DTYPE,
    YEAR_NS,
    infer_periods_per_year,
    monthly_returns,
    summarize,
    summary,
    trade_array,
)

ORCL = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "market"
    / "backtrader__orcl-1995-2014_head300.txt"
)


def day(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


# Daily bars of Monday 2021-01-04 to Friday 2021-01-08, stamped at their close (midnight
# after: Tuesday to Saturday); returns +10%, -10%, +10%, +20%.
TS = np.array([day(2021, 1, d) for d in range(5, 10)], dtype=np.int64)
EQUITY = np.array([100, 110, 99, 108.9, 130.68], dtype=np.float64)
EQUITY_FX = np.array([100, 110, 99, 108_900_000_000 / SCALE, 130_680_000_000 / SCALE])
VALUES = np.array(
    [100 * SCALE, 110 * SCALE, 99 * SCALE, 108_900_000_000, 130_680_000_000], dtype=np.int64
)


def trades() -> np.ndarray:
    out = np.zeros(4, dtype=TRADE_DTYPE)
    out["entry_ts"] = [TS[1], TS[3], TS[3], TS[3]]
    out["exit_ts"] = [TS[3], TS[4], TS[4], TS[4]]
    out["side"] = [Side.BUY, Side.SELL, Side.BUY, Side.BUY]
    out["qty"] = SCALE
    out["entry_price"] = [100 * SCALE, 50 * SCALE, 10 * SCALE, 10 * SCALE]
    out["exit_price"] = [105 * SCALE, 53 * SCALE, 12 * SCALE, 10 * SCALE]
    out["pnl"] = [5 * SCALE, -3 * SCALE, 2 * SCALE, 0]
    return out


def test_returns_ratios_and_drawdown() -> None:
    s = summarize((TS, VALUES), annualize=True)
    assert s.periods_per_year == 252
    assert s.total_return == pytest.approx(0.3068)
    # mean 0.075; sample std sqrt(0.0475 / 3); downside deviation sqrt(0.01 / 4) = 0.05
    assert s.sharpe == pytest.approx(0.075 / math.sqrt(0.0475 / 3) * math.sqrt(252))
    assert s.sortino == pytest.approx(0.075 / 0.05 * math.sqrt(252))
    assert s.annual_volatility == pytest.approx(math.sqrt(0.0475 / 3) * math.sqrt(252))
    assert s.cagr == pytest.approx(1.3068 ** (YEAR_NS / (4 * DAY_NS)) - 1)
    assert s.max_drawdown == pytest.approx(-0.1)
    assert (s.max_drawdown_peak_ns, s.max_drawdown_trough_ns) == (TS[1], TS[2])
    # under water from the peak (bar 1) until the new high (bar 4)
    assert s.max_drawdown_duration_ns == 3 * DAY_NS
    assert (s.start_equity, s.end_equity) == (100.0, 130.68)
    assert s.trades == 0
    assert math.isnan(s.win_rate)
    assert s.exposure == 0.0
    assert s.turnover == 0.0


def test_drawdown_until_the_end() -> None:
    values = np.array([100, 120, 90, 100, 110], dtype=np.int64) * SCALE
    s = summarize((TS, values))
    assert s.max_drawdown == pytest.approx(-0.25)
    assert s.max_drawdown_duration_ns == 3 * DAY_NS  # still under water at the end
    flat = summarize((TS, np.full(5, 100 * SCALE, dtype=np.int64)))
    assert (flat.max_drawdown, flat.max_drawdown_duration_ns) == (0.0, 0)
    assert math.isnan(flat.sharpe)
    assert math.isnan(flat.sortino)


def test_trades_exposure_and_turnover() -> None:
    t = trades()
    s = summarize((TS, VALUES), t, annualize=True)
    assert s.trades == 4
    assert s.win_rate == 0.5
    assert s.profit_factor == pytest.approx(7 / 3)
    # periods starting on the 5th, 6th (trade 1) and 7th (trades 2-4) of 4: 3/4
    assert s.exposure == 0.75
    notional = (100 + 105) + (50 + 53) + (10 + 12) + (10 + 10)
    assert s.turnover == pytest.approx(notional / EQUITY_FX.mean())
    assert s.annual_turnover == pytest.approx(s.turnover / (4 * DAY_NS / YEAR_NS))


def test_exposure_from_a_position_series() -> None:
    positions = (np.array([TS[1], TS[3]]), np.array([2 * SCALE, 0]))
    s = summarize((TS, VALUES), trades(), positions)
    assert s.exposure == 0.5  # held from the 5th until the 7th: 2 of 4 periods
    short = (np.array([TS[0]]), np.array([-SCALE]))
    assert summarize((TS, VALUES), None, short).exposure == 1.0


def test_arrow_and_mapping_inputs() -> None:
    table = pa.table({"ts": pa.array(TS, pa.timestamp("ns", tz="UTC")), "equity": VALUES})
    t = trades()
    trade_table = pa.table({name: t[name] for name in t.dtype.names if name != "fees"})
    s = summarize(table, trade_table, {"ts": TS[1:2], "qty": np.array([SCALE])})
    assert s == summarize((TS, VALUES), t, (TS[1:2], np.array([SCALE])))
    assert np.array_equal(trade_array(trade_table), t)
    assert s.formatted()["total return"] == "30.68%"
    # daily bars stamped at their close (midnight after) are shown as their trading dates
    assert s.formatted()["period"] == "2021-01-04 to 2021-01-08 (4 days)"


def test_periods_per_year() -> None:
    minute = 60 * 1_000_000_000
    # three weekdays of 390 one-minute bars (an equity session)
    weekdays = np.concatenate(
        [day(2021, 1, d, 14, 30) + np.arange(390) * minute for d in (4, 5, 6)]
    )
    assert infer_periods_per_year(weekdays) == 252 * 390
    # crypto trades every minute of every day, weekends included
    crypto = day(2021, 1, 1) + np.arange(7 * 1440) * minute
    assert infer_periods_per_year(crypto) == 365 * 1440
    weekly = day(2021, 1, 4) + np.arange(20) * 7 * DAY_NS
    assert infer_periods_per_year(weekly) == 52
    monthly = np.array([day(2021, m, 1) for m in range(1, 13)])
    assert infer_periods_per_year(monthly) == 12
    # real daily bars, stamped at their close (Friday's bar at Saturday 00:00)
    assert infer_periods_per_year(read_bars(ORCL)["ts"]) == 252
    assert summarize((TS, VALUES), periods_per_year=12).periods_per_year == 12


def test_monthly_returns() -> None:
    ts = np.array(
        [day(2020, 12, 1, 12), day(2020, 12, 31, 12), day(2021, 1, 15, 12), day(2021, 3, 2, 12)]
    )
    values = np.array([100, 105, 110.25, 99.225]) * SCALE
    years, table = monthly_returns(ts, values.astype(np.int64))
    assert years == [2020, 2021]
    assert table[0, 11] == pytest.approx(0.05)
    assert table[1, 0] == pytest.approx(0.05)
    assert math.isnan(table[1, 1])
    assert table[1, 2] == pytest.approx(-0.1)
    assert np.isnan(table[0, :11]).all()


def test_a_bar_stamped_at_midnight_belongs_to_the_day_before() -> None:
    # the daily bar of Thursday 2014-12-31 closes at 2015-01-01 00:00 UTC: no 2015 row
    ts = np.array([day(2014, 12, 30), day(2014, 12, 31), day(2015, 1, 1)])
    years, table = monthly_returns(ts, np.array([100, 101, 102], dtype=np.int64) * SCALE)
    assert years == [2014]
    assert table[0, 11] == pytest.approx(0.02)


def test_short_runs_are_not_annualized() -> None:
    # 47 seconds of ticks that gain 0.03%: CAGR would overflow, turnover be millions a year
    second = 1_000_000_000
    ts = day(2012, 6, 21, 13, 30) + np.arange(48, dtype=np.int64) * second
    values = (100_000 * SCALE + np.arange(48, dtype=np.int64) * 625_000_000) + (
        np.arange(48) % 3 == 0
    ) * 200_000_000
    t = trades()
    s = summarize((ts, values), t)
    for figure in (s.cagr, s.sharpe, s.sortino, s.annual_volatility, s.annual_turnover):
        assert math.isnan(figure)
    assert s.not_annualized == "the run spans 47.0 seconds, less than 28 days"
    assert s.total_return == pytest.approx(int(values[-1]) / int(values[0]) - 1)
    text = s.formatted()
    assert text["CAGR"] == text["Sharpe"] == text["annual volatility"] == "n/a"
    assert text["annualized figures"] == "n/a: the run spans 47.0 seconds, less than 28 days"
    assert "periods per year" not in text
    assert "a year" not in text["turnover"]
    assert text["period"] == "2012-06-21 13:30:00 to 2012-06-21 13:30:47 (47.0 seconds)"
    forced = summarize((ts, values), t, annualize=True)
    assert forced.not_annualized is None
    assert forced.annual_turnover > 1_000  # what the rule keeps from the console
    # four weeks of daily bars are annualized
    month = day(2021, 1, 5) + np.arange(29, dtype=np.int64) * DAY_NS
    s = summarize((month, 100 * SCALE + np.arange(29, dtype=np.int64) * (SCALE // 10)))
    assert s.not_annualized is None
    assert not math.isnan(s.cagr)


def test_bad_inputs() -> None:
    with pytest.raises(AdmfError, match="same length"):
        summarize((TS, VALUES[:3]))
    with pytest.raises(AdmfError, match="time order"):
        summarize((TS[::-1], VALUES))
    with pytest.raises(AdmfError, match="at least 2 points"):
        summarize((TS[:1], VALUES[:1]))
    with pytest.raises(AdmfError, match="must be integers"):
        summarize((TS, EQUITY))
    with pytest.raises(AdmfError, match="missing column 'equity'"):
        summarize(pa.table({"ts": TS, "value": VALUES}))
    with pytest.raises(AdmfError, match="missing column 'exit_ts'"):
        summarize((TS, VALUES), {"entry_ts": TS})
    with pytest.raises(AdmfError, match="periods per year must be positive"):
        summarize((TS, VALUES), periods_per_year=0)


def test_summary_from_plain_float_arrays() -> None:
    t = trades()
    positions = (np.array([TS[1], TS[3]]), np.array([2 * SCALE, 0]))
    want = summarize((TS, VALUES), t, positions).as_dict()
    assert math.isnan(want["cagr"])  # four days: not annualized
    notional = float(np.sum((t["entry_price"] + t["exit_price"]) / SCALE))
    gross = np.array([0.0, 220.0, 198.0, 0.0, 0.0])  # in the market on the 5th and 6th
    got = summary(
        TS,
        VALUES / SCALE,
        trade_pnl=t["pnl"] / SCALE,
        exposure=gross,
        traded=notional,
    )
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, nan_ok=True), key
    assert summary(TS, VALUES)["total_return"] == pytest.approx(0.3068)  # ints: fixed point
    with pytest.raises(AdmfError, match="exposure has"):
        summary(TS, VALUES / SCALE, exposure=gross[:2])
    for bad in (math.nan, math.inf):
        with pytest.raises(AdmfError, match="must be finite"):
            summary(TS, np.where(np.arange(len(TS)) == 2, bad, EQUITY))


# --- The Rust statistics (rust/src/stats.rs) against the numpy formulas they replaced. ---
#
# Counts, drawdowns, stamps, exposure and periods per year must be equal. Float sums may not
# be: numpy sums pairwise (plainly within blocks of 128), Rust plainly within blocks of 256
# and with Neumaier's compensation across them, so a mean or a sum of squares differs by
# rounding: at worst ~256 units in the last place of the sum of the magnitudes (~3e-14),
# typically a few. We allow 1e-12 relative to the value or to that magnitude: a mean of
# returns that cancel to nearly zero, or the deviation of equal returns (a rounding of each
# side's mean), is compared to the mean |r|.
REL = 1e-12


def reference_statistics(
    ts: np.ndarray, equity: np.ndarray, positions: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, float]:
    """The numpy computation of `admf.metrics` before the Rust pass, for comparison."""
    values = equity.astype(np.float64) / SCALE if equity.dtype.kind == "i" else equity
    prev = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev > 0, values[1:] / np.where(prev > 0, prev, 1.0) - 1.0, np.nan)
    r = r[~np.isnan(r)]
    out: dict[str, float] = {"returns": len(r), "mean_equity": float(np.mean(values))}
    out["mean_return"] = float(np.mean(r)) if len(r) else math.nan
    out["std_return"] = float(np.std(r, ddof=1)) if len(r) >= 2 else math.nan
    out["downside_deviation"] = (
        math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) if len(r) else math.nan
    )
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, values / np.where(peak > 0, peak, 1.0) - 1.0, 0.0)
    trough = int(np.argmin(dd))
    at_peak = values >= peak
    last_peak_ts = np.maximum.accumulate(np.where(at_peak, ts, np.iinfo(np.int64).min))
    ends = np.flatnonzero(at_peak[1:] & ~at_peak[:-1]) + 1
    longest = int(np.max(ts[ends] - last_peak_ts[ends - 1])) if len(ends) else 0
    if not at_peak[-1]:
        longest = max(longest, int(ts[-1] - last_peak_ts[-1]))
    out["max_drawdown"] = float(dd[trough])
    out["max_drawdown_duration_ns"] = longest
    out["max_drawdown_peak_ns"] = int(ts[int(np.argmax(values[: trough + 1]))])
    out["max_drawdown_trough_ns"] = int(ts[trough])
    out["exposure"] = math.nan
    if positions is not None:
        pts, qty = positions
        idx = np.searchsorted(pts, ts[:-1], side="right") - 1
        held = np.where(idx >= 0, qty[np.clip(idx, 0, None)] if len(qty) else 0, 0) != 0
        out["exposure"] = float(held.astype(np.float64).mean())
    return out


def reference_periods_per_year(ts: np.ndarray) -> float:
    days = (ts - 1) // DAY_NS
    days_per_year = 365.0 if np.mean((days + 3) % 7 >= 5) > 0.10 else 252.0
    spacing = float(np.median(np.diff(ts)))
    if spacing <= 0:
        return math.nan
    if spacing < 0.8 * DAY_NS:
        starts = np.flatnonzero(np.diff(days)) + 1
        per_day = np.diff(np.concatenate([[0], starts, [len(days)]]))
        return days_per_year * float(np.median(per_day))
    for limit_days, per_year in ((4, days_per_year), (10, 52.0), (45, 12.0), (120, 4.0)):
        if spacing < limit_days * DAY_NS:
            return per_year
    return 1.0


def assert_same_statistics(
    ts: np.ndarray, equity: np.ndarray, positions: tuple[np.ndarray, np.ndarray] | None
) -> None:
    expected = reference_statistics(ts, equity, positions)
    got = _core.curve_statistics(ts, equity, *(positions or ()))
    values = equity.astype(np.float64) / SCALE if equity.dtype.kind == "i" else equity
    prev = values[:-1]
    defined = prev > 0
    # The magnitudes the sums are made of: the returns' and the equity's.
    magnitude = {
        "mean_equity": float(np.mean(np.abs(values))),
        "mean_return": float(np.mean(np.abs(values[1:][defined] / prev[defined] - 1.0)))
        if defined.any()
        else 0.0,
    }
    for name in ("std_return", "downside_deviation"):
        magnitude[name] = magnitude["mean_return"]
    for name, want in expected.items():
        value = getattr(got, name)
        if name in magnitude:
            assert value == pytest.approx(want, rel=REL, abs=REL * magnitude[name], nan_ok=True), (
                name
            )
        elif isinstance(want, float) and math.isnan(want):
            assert math.isnan(value), name
        else:
            assert value == want, name
    want_ppy = reference_periods_per_year(ts)
    ppy = infer_periods_per_year(ts)
    assert (math.isnan(ppy) and math.isnan(want_ppy)) or ppy == want_ppy


@pytest.mark.parametrize(
    "name",
    [
        "backtrader__orcl-1995-2014_head300.txt",
        "nautilus__ftx_btc-perp-20211231-20220201_1m_head300.csv",
        "nautilus__fxcm_gbpusd-m1-bid-2012_head300.csv",
        "backtrader__2006-01-02-volume-min-001_head300.txt",
    ],
)
def test_rust_statistics_equal_numpy_on_real_bars(name: str) -> None:
    """A curve of real closes (fixed point and units) with a long-when-rising position."""
    bars = read_bars(ORCL.parent / name)
    ts, close = np.ascontiguousarray(bars["ts"]), np.ascontiguousarray(bars["price"])
    rising = np.concatenate([[0], np.sign(np.diff(close))]).astype(np.int64) * SCALE
    for equity in (close, close.astype(np.float64) / SCALE):
        assert_same_statistics(ts, equity, (ts, rising))
        assert_same_statistics(ts, equity, None)


@st.composite
def curves(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    n = draw(st.integers(2, 400))
    gap = st.sampled_from([0, 60 * 10**9, 3_600 * 10**9, DAY_NS, 7 * DAY_NS, 31 * DAY_NS])
    gaps = draw(st.lists(gap | st.integers(0, 3 * DAY_NS), min_size=n - 1, max_size=n - 1))
    ts = draw(st.integers(0, 2 * 10**18)) + np.concatenate([[0], np.cumsum(gaps)])
    ts = ts.astype(np.int64)
    level = st.floats(0.01, 1e6) | st.sampled_from([0.0, -1.0, 1.0])
    if draw(st.booleans()):
        fx = st.integers(-10 * SCALE, 10**6 * SCALE) | st.just(100 * SCALE)
        equity = np.array(draw(st.lists(fx, min_size=n, max_size=n)), dtype=np.int64)
    else:
        equity = np.array(draw(st.lists(level, min_size=n, max_size=n)), dtype=np.float64)
    steps = draw(st.integers(0, 20))
    pts = np.sort(np.array(draw(st.lists(st.sampled_from(ts), min_size=steps, max_size=steps))))
    qty = np.array(draw(st.lists(st.integers(-3, 3), min_size=steps, max_size=steps)))
    return ts, equity, (pts.astype(np.int64), qty.astype(np.int64))


@settings(max_examples=150, deadline=None)
@given(curves())
def test_rust_statistics_equal_numpy_on_random_curves(
    curve: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]],
) -> None:
    ts, equity, positions = curve
    assert_same_statistics(ts, equity, positions)
    assert_same_statistics(ts, equity, None)
