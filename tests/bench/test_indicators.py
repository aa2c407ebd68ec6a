"""Indicators through Python (run by `make bench`; disabled in the test run).

A whole series in one call (``compute_fixed``) against numpy, and one bar per call
(``update_fixed``, what a strategy does) against a plain-Python incremental SMA.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import numpy.typing as npt

from admf import SCALE
from admf.indicators import RSI, SMA, Bollinger

N = 1_000_000
PER_BAR = 100_000


def _series(n: int) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(5)
    return (100 * SCALE + np.cumsum(rng.integers(-SCALE // 10, SCALE // 10, n))).astype(np.int64)


def test_sma30_compute_fixed(benchmark: Any) -> None:
    x = _series(N)
    benchmark.extra_info["elements"] = N
    out = benchmark(SMA(30).compute_fixed, x)
    assert np.isnan(out[:29]).all()


def _numpy_sma(x: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.float64]:
    c = np.cumsum(x / SCALE)
    out = np.full(len(x), np.nan)
    out[n - 1] = c[n - 1] / n
    out[n:] = (c[n:] - c[:-n]) / n
    return out


def test_sma30_numpy_cumsum(benchmark: Any) -> None:
    x = _series(N)
    benchmark.extra_info["elements"] = N
    benchmark(_numpy_sma, x, 30)


def test_rsi14_compute_fixed(benchmark: Any) -> None:
    x = _series(N)
    benchmark.extra_info["elements"] = N
    benchmark(RSI(14).compute_fixed, x)


def test_bollinger20_compute_fixed(benchmark: Any) -> None:
    x = _series(N)
    benchmark.extra_info["elements"] = N
    benchmark(Bollinger(20, 2.0).compute_fixed, x)


def _per_bar(update: Any, values: list[int]) -> None:
    for v in values:
        update(v)


def test_sma30_update_per_bar(benchmark: Any) -> None:
    values = _series(PER_BAR).tolist()
    benchmark.extra_info["elements"] = PER_BAR
    benchmark.pedantic(lambda: _per_bar(SMA(30).update_fixed, values), rounds=10)


class _PySma:
    def __init__(self, n: int) -> None:
        self.n = n
        self.window: collections.deque[int] = collections.deque()
        self.total = 0

    def update(self, x: int) -> float | None:
        self.window.append(x)
        self.total += x
        if len(self.window) > self.n:
            self.total -= self.window.popleft()
        return self.total / (self.n * SCALE) if len(self.window) == self.n else None


def test_sma30_python_per_bar(benchmark: Any) -> None:
    values = _series(PER_BAR).tolist()
    benchmark.extra_info["elements"] = PER_BAR
    benchmark.pedantic(lambda: _per_bar(_PySma(30).update, values), rounds=10)
