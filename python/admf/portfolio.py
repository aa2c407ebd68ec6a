"""Portfolio and positions: the one fold of fills, in fixed-point money.

The portfolio is a projection, not the source of truth: ``Portfolio.apply`` is called with
each ``FILL`` event in ``seq`` order, and replaying the log's fills rebuilds it exactly. The
fold is Rust's (``rust/src/orders/portfolio.rs``); the same fold builds the equity curve and
the round trips of a result (`admf.analysis`), so the numbers a strategy reads during a run
and the ones a report shows after it cannot disagree.

What a strategy reads is in units (``cash``, ``equity()``, ``position(i).qty`` as floats);
the same names with ``_fx`` give the fixed-point integers (``SCALE`` per unit). Positions are
valued at the market's last price (a bar's close, a trade, a quote's mid), not at the last
fill's.
"""

from __future__ import annotations

from decimal import Decimal

from admf._core import Portfolio, Position
from admf.events import SCALE

__all__ = ["Portfolio", "Position", "notional", "units_text"]


def notional(price: int, qty: int) -> int:
    """``price * qty`` in fixed point (both fixed point), rounded half away from zero (as the
    Rust fold's ``notional``)."""
    product = price * qty
    half = SCALE // 2
    return (product + half) // SCALE if product >= 0 else -((-product + half) // SCALE)


def units_text(fixed: int) -> str:
    """A fixed-point number in units for messages, exactly: ``1000000``, ``0.5``, ``13.46``."""
    return format(Decimal(fixed) / SCALE, "f")
