"""Portfolio and positions: a fold over fills, in fixed-point money.

The portfolio is a projection, not the source of truth: ``Portfolio.apply`` is called with
each ``FILL`` event in ``seq`` order, and replaying the log's fills rebuilds it exactly.
Money is fixed point with ``SCALE`` units per currency unit; a notional ``price * qty`` is
computed exactly in Python integers and rounded half away from zero once, back to ``SCALE``.
"""

from __future__ import annotations

import dataclasses

from admf._core import Event
from admf.events import BUY, SCALE


def notional(price: int, qty: int) -> int:
    """``price * qty`` in fixed point (both fixed point), rounded half away from zero."""
    product = price * qty
    half = SCALE // 2
    return (product + half) // SCALE if product >= 0 else -((-product + half) // SCALE)


@dataclasses.dataclass
class Position:
    """One instrument's position. ``qty`` is signed (negative: short)."""

    instrument: int
    qty: int = 0
    avg_price: int = 0
    realized: int = 0
    fees: int = 0
    last_price: int = 0

    def unrealized(self) -> int:
        return notional(self.last_price - self.avg_price, self.qty)

    def exposure(self) -> int:
        return notional(self.last_price, abs(self.qty))


@dataclasses.dataclass
class Portfolio:
    """Cash, positions, realized and unrealized P&L, built from fills."""

    initial_cash: int
    cash: int = 0
    positions: dict[int, Position] = dataclasses.field(default_factory=dict)
    fills: int = 0
    traded: int = 0
    """Sum of the notionals of all fills (for turnover)."""

    def __post_init__(self) -> None:
        self.cash = self.initial_cash

    def position(self, instrument: int) -> Position:
        pos = self.positions.get(instrument)
        if pos is None:
            pos = self.positions[instrument] = Position(instrument)
        return pos

    def apply(self, fill: Event) -> None:
        """Folds one fill (price, qty > 0, side, fee in ``aux``) into the portfolio."""
        pos = self.position(fill.instrument)
        signed = fill.qty if fill.side == BUY else -fill.qty
        value = notional(fill.price, fill.qty)
        self.cash -= value if signed > 0 else -value
        self.cash -= fill.aux
        pos.fees += fill.aux
        self.fills += 1
        self.traded += value
        before = pos.qty
        after = before + signed
        if before == 0 or (before > 0) == (signed > 0):
            # Opening or adding: the average price moves (exactly, to the nearest unit).
            total = abs(before) + abs(signed)
            pos.avg_price = (
                pos.avg_price * abs(before) + fill.price * abs(signed) + total // 2
            ) // total
        else:
            closed = min(abs(before), abs(signed))
            direction = 1 if before > 0 else -1
            pos.realized += notional(fill.price - pos.avg_price, closed * direction)
            if after == 0:
                pos.avg_price = 0
            elif (after > 0) != (before > 0):
                pos.avg_price = fill.price
        pos.qty = after
        pos.last_price = fill.price

    def mark(self, instrument: int, price: int) -> None:
        """Marks an instrument at ``price`` (for unrealized P&L)."""
        self.position(instrument).last_price = price

    def equity(self) -> int:
        return self.cash + sum(notional(p.last_price, p.qty) for p in self.positions.values())

    def realized(self) -> int:
        return sum(p.realized for p in self.positions.values())

    def unrealized(self) -> int:
        return sum(p.unrealized() for p in self.positions.values())

    def exposure(self) -> int:
        return sum(p.exposure() for p in self.positions.values())
