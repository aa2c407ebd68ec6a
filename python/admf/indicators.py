"""Compiled incremental indicators: SMA, EMA, RSI (Wilder), ATR (Wilder) and Bollinger bands.

Each indicator is a Rust object a strategy feeds one bar at a time, so a strategy does no
per-bar arithmetic in Python::

    fast, slow = SMA(10), SMA(30)
    def on_bar(self, bar):
        f, s = fast.update_fixed(bar.close_fx), slow.update_fixed(bar.close_fx)
        if f is not None and s is not None and f > s: ...

- ``update(x)`` takes a price as a float (converted to fixed point, rounded to 1e-9);
  ``update_fixed(x)`` takes the engine's fixed-point integer (an event's ``price_fx``). Both
  return the new value, or ``None`` until the indicator is warm; ``value`` and ``ready`` tell
  the same, ``reset()`` starts over.
- ``compute(array)`` / ``compute_fixed(array)`` run a fresh copy over a whole float64 / int64
  numpy series in Rust and return float64 arrays with ``NaN`` during the warm-up
  (``Bollinger.compute`` returns ``(mid, upper, lower)``; ``ATR.compute(high, low, close)``).

Outputs are floats for signals, not bookkeeping. The SMA and Bollinger window sums are exact
(``i128`` over fixed-point inputs), so they never drift; EMA, RSI and ATR run in ``f64``.
Warm-up and seeding follow TA-Lib and backtrader: SMA, EMA (seeded with the SMA) and
Bollinger (population standard deviation) give their first value on the ``period``-th input;
RSI and ATR, which need a previous price, on the ``period + 1``-th.
"""

from __future__ import annotations

from admf._core import ATR, EMA, RSI, SMA, Bollinger

__all__ = ["ATR", "EMA", "RSI", "SMA", "Bollinger"]
