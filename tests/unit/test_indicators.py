"""Compiled indicators against plain numpy/Python references on real ORCL daily bars."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from admf import SCALE, Event, Kind, Strategy
from admf.backtest import BacktestSettings
from admf.data import read_bars
from admf.indicators import ATR, EMA, RSI, SMA, Bollinger
from admf.node import build_node

ORCL = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "market"
    / "backtrader__orcl-1995-2014_head300.txt"
)
F64 = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def bars() -> dict[str, npt.NDArray[np.int64]]:
    events = read_bars(ORCL)
    return {
        "close": events["price"].copy(),
        "high": events["order_id"].copy(),
        "low": events["payload"].copy(),
    }


def floats(x: npt.NDArray[np.int64]) -> F64:
    return x / SCALE


def ref_sma(x: F64, n: int) -> F64:
    out = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        out[i] = x[i - n + 1 : i + 1].mean()
    return out


def ref_ema(x: F64, n: int) -> F64:
    out = np.full(len(x), np.nan)
    alpha = 2 / (n + 1)
    value = x[:n].mean()
    out[n - 1] = value
    for i in range(n, len(x)):
        value = value + alpha * (x[i] - value)
        out[i] = value
    return out


def ref_rsi(x: F64, n: int) -> F64:
    out = np.full(len(x), np.nan)
    change = np.diff(x)
    gain, loss = np.maximum(change, 0), np.maximum(-change, 0)
    avg_gain, avg_loss = gain[:n].mean(), loss[:n].mean()
    for i in range(n, len(x)):
        if i > n:
            avg_gain = (avg_gain * (n - 1) + gain[i - 1]) / n
            avg_loss = (avg_loss * (n - 1) + loss[i - 1]) / n
        out[i] = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def ref_atr(h: F64, lo: F64, c: F64, n: int) -> F64:
    out = np.full(len(c), np.nan)
    tr = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - c[:-1]), np.abs(lo[1:] - c[:-1])])
    value = tr[:n].mean()
    out[n] = value
    for i in range(n + 1, len(c)):
        value = (value * (n - 1) + tr[i - 1]) / n
        out[i] = value
    return out


def ref_bollinger(x: F64, n: int, k: float) -> tuple[F64, F64, F64]:
    mid = ref_sma(x, n)
    std = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        std[i] = x[i - n + 1 : i + 1].std()  # population (ddof = 0)
    return mid, mid + k * std, mid - k * std


def same(got: F64, want: F64) -> None:
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 10, 30])
def test_sma(bars: dict[str, npt.NDArray[np.int64]], n: int) -> None:
    x = floats(bars["close"])
    want = ref_sma(x, n)
    same(SMA(n).compute(x), want)
    same(SMA(n).compute_fixed(bars["close"]), want)
    sma = SMA(n)
    for i, price in enumerate(x):
        value = sma.update(float(price))
        assert sma.ready == (i >= n - 1)
        if i < n - 1:
            assert value is None
            assert sma.value is None
        else:
            assert value == sma.value
            assert value == pytest.approx(want[i], rel=1e-12)


def test_sma_is_exact_in_fixed_point(bars: dict[str, npt.NDArray[np.int64]]) -> None:
    """The window sum is exact: each value is the correctly rounded mean of integers."""
    close = bars["close"]
    got = SMA(20).compute_fixed(close)
    for i in range(19, len(close)):
        total = int(close[i - 19 : i + 1].sum())
        assert got[i] == total / (20 * SCALE)


@pytest.mark.parametrize("n", [1, 5, 20])
def test_ema(bars: dict[str, npt.NDArray[np.int64]], n: int) -> None:
    x = floats(bars["close"])
    want = ref_ema(x, n)
    same(EMA(n).compute(x), want)
    ema = EMA(n)
    got = [ema.update_fixed(int(v)) for v in bars["close"]]
    same(np.array([np.nan if v is None else v for v in got]), want)
    assert all(v is None for v in got[: n - 1])


@pytest.mark.parametrize("n", [2, 14])
def test_rsi(bars: dict[str, npt.NDArray[np.int64]], n: int) -> None:
    x = floats(bars["close"])
    want = ref_rsi(x, n)
    got = RSI(n).compute(x)
    same(got, want)
    assert np.isnan(got[:n]).all()
    assert not np.isnan(got[n:]).any()
    assert ((got[n:] >= 0) & (got[n:] <= 100)).all()
    rsi = RSI(n)
    for i, price in enumerate(x):
        rsi.update(float(price))
        assert rsi.ready == (i >= n)


@pytest.mark.parametrize("n", [1, 14])
def test_atr(bars: dict[str, npt.NDArray[np.int64]], n: int) -> None:
    h, lo, c = (bars[k] for k in ("high", "low", "close"))
    want = ref_atr(floats(h), floats(lo), floats(c), n)
    same(ATR(n).compute(floats(h), floats(lo), floats(c)), want)
    same(ATR(n).compute_fixed(h, lo, c), want)
    atr = ATR(n)
    values = [atr.update_fixed(int(a), int(b), int(d)) for a, b, d in zip(h, lo, c, strict=True)]
    assert values[:n] == [None] * n
    assert values[-1] == pytest.approx(want[-1], rel=1e-12)
    assert atr.update(1.0, 1.0, 1.0) is not None


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (5, 1.5), (1, 2.0)])
def test_bollinger(bars: dict[str, npt.NDArray[np.int64]], n: int, k: float) -> None:
    x = floats(bars["close"])
    mid, upper, lower = Bollinger(n, k).compute(x)
    want = ref_bollinger(x, n, k)
    same(mid, want[0])
    same(upper, want[1])
    same(lower, want[2])
    bands = Bollinger(n, k)
    assert bands.k == k
    assert bands.period == n
    for i, price in enumerate(x):
        value = bands.update(float(price))
        if i < n - 1:
            assert value is None
        else:
            assert value is not None
            assert value == pytest.approx((want[0][i], want[1][i], want[2][i]), rel=1e-10)
    assert Bollinger(20).k == 2.0


def test_reset_and_compute_leave_state_alone(bars: dict[str, npt.NDArray[np.int64]]) -> None:
    x = floats(bars["close"])
    sma = SMA(3)
    for price in x[:5]:
        sma.update(float(price))
    before = sma.value
    sma.compute(x)  # a fresh copy runs over the series
    assert sma.value == before
    sma.reset()
    assert (sma.value, sma.ready) == (None, False)
    assert sma.update(1.0) is None
    for cls in (SMA, EMA, RSI, ATR):
        assert repr(cls(4)).startswith(f"{cls.__name__}(period=4")
    assert repr(Bollinger(4, 2.5)).startswith("Bollinger(period=4, k=2.5")


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="period must be at least 1"):
        SMA(0)
    with pytest.raises(OverflowError):
        EMA(-1)
    with pytest.raises(ValueError, match="finite"):
        Bollinger(20, math.inf)
    with pytest.raises(ValueError, match="finite number"):
        SMA(3).update(math.nan)
    with pytest.raises(ValueError, match="finite number"):
        RSI(3).compute(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="finite number"):
        SMA(3).update(1e12)
    with pytest.raises(ValueError, match="same length"):
        ATR(3).compute(np.ones(3), np.ones(2), np.ones(3))
    with pytest.raises(TypeError):
        SMA(3).compute(np.arange(5))  # int64 is fixed point: use compute_fixed
    with pytest.raises(ValueError, match="contiguous"):
        SMA(3).compute(np.ones(10)[::2])


def test_empty_and_short_series() -> None:
    assert SMA(3).compute(np.array([], dtype=np.float64)).shape == (0,)
    assert np.isnan(RSI(14).compute(np.ones(5))).all()
    mid, upper, lower = Bollinger(3).compute(np.array([1.0, 2.0]))
    for band in (mid, upper, lower):
        assert np.isnan(band).all()


class _Registered(Strategy):
    """Registers one of each indicator with the kernel and records what ``on_bar`` reads."""

    def on_start(self) -> None:
        ctx = self.ctx
        self.fed = [
            ctx.register_indicator(SMA(10)),
            ctx.register_indicator(EMA(10)),
            ctx.register_indicator(RSI(14)),
            ctx.register_indicator(ATR(14)),
            ctx.register_indicator(Bollinger(20)),
        ]
        self.own = [SMA(10), EMA(10), RSI(14), ATR(14), Bollinger(20)]
        self.seen: list[tuple[object, ...]] = []
        self.expected: list[tuple[object, ...]] = []

    def on_bar(self, bar: Event) -> None:
        sma, ema, rsi, atr, bands = self.own
        close = bar.close_fx
        self.expected.append(
            (
                sma.update_fixed(close),
                ema.update_fixed(close),
                rsi.update_fixed(close),
                atr.update_fixed(bar.high_fx, bar.low_fx, close),
                bands.update_fixed(close),
            )
        )
        self.seen.append(tuple(i.value for i in self.fed))


def test_the_kernel_feeds_registered_indicators_every_bar_before_on_bar() -> None:
    events = read_bars(ORCL, instrument=1)
    node = build_node(_Registered, {}, BacktestSettings(), [events], [1], None)
    node.run()
    strategy = node.strategy
    assert isinstance(strategy, _Registered)
    assert len(strategy.seen) == len(events)
    # The same values, bar for bar, as updating the indicators in on_bar.
    assert strategy.seen == strategy.expected
    assert strategy.seen[0][0] is None
    assert strategy.seen[-1][0] is not None


def test_registering_something_else_names_what_it_got() -> None:
    node = build_node(_Registered, {}, BacktestSettings(), [read_bars(ORCL)], [1], None)
    with pytest.raises(TypeError, match=r"admf\.indicators .* not list"):
        node.context.register_indicator([], 1)  # type: ignore[type-var]


def test_plain_getters_read_what_the_record_holds() -> None:
    # Event and indicator getters are plain C getters (see rust/src/py/fastcall.rs): the same
    # values and docstrings as pyo3's.
    e = Event(
        Kind.BAR, 7, instrument=1, price=12_500_000_000, qty=-3, aux=2, order_id=9, payload=11
    )
    assert (e.ts, e.close_fx, e.close, e.volume_fx, e.open_fx, e.high_fx, e.low_fx) == (
        7,
        12_500_000_000,
        12.5,
        -3,
        2,
        9,
        11,
    )
    assert (e.price, e.qty, e.fee, e.ask_size) == (12.5, -3e-9, 2e-9, 9e-9)
    assert (e.order_id, e.aux, e.payload) == (9, 2, 11)
    assert "close_fx" in (type(e).close.__doc__ or "")
    sma = SMA(2)
    assert sma.value is None
    sma.update(1.0)
    sma.update(2.0)
    assert sma.value == 1.5
    assert SMA.value.__doc__ == "The current value, None while warming up."
    with pytest.raises(AttributeError):
        e.close = 1.0  # type: ignore[misc]
