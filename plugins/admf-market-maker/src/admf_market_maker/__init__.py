"""A market maker on the L3 order book: an admf strategy plugin.

Every ``requote_ms`` it joins the best bid and the best ask (or stands ``edge_ticks`` behind
them) with post-only limit orders of ``size`` shares, and stops quoting the side that would
take its inventory past ``max_inventory``. Its orders rest in the simulated venue's queue
behind the market's size at their price and fill only when the market trades through that
queue. Book deltas never cross into Python: the strategy reads the book when its timer
fires (``ctx.book().bbo()``). The book gives prices in fixed point, so this strategy
stays in fixed point and submits with ``ctx.submit_fx``.
"""

from __future__ import annotations

import dataclasses

from admf import SCALE, Event, Kind, Side, Strategy, StrategyConfig

__all__ = ["MarketMaker", "MarketMakerConfig"]

_DONE = (Kind.ORDER_CANCELED, Kind.ORDER_REJECTED, Kind.ORDER_EXPIRED)


@dataclasses.dataclass(frozen=True)
class MarketMakerConfig(StrategyConfig):
    size: int = 100
    max_inventory: int = 300
    requote_ms: int = 250
    edge_ticks: int = 0
    tick: float = 0.01

    def __post_init__(self) -> None:
        if self.size <= 0 or self.max_inventory < self.size:
            raise ValueError(
                f"need 0 < size <= max_inventory, got size={self.size}, "
                f"max_inventory={self.max_inventory}"
            )
        if self.requote_ms <= 0 or self.edge_ticks < 0 or self.tick <= 0:
            raise ValueError("requote_ms and tick must be positive, edge_ticks >= 0")


class MarketMaker(Strategy):
    Config = MarketMakerConfig
    config: MarketMakerConfig

    def on_start(self) -> None:
        cfg = self.config
        self.size = cfg.size * SCALE
        self.limit = cfg.max_inventory * SCALE
        self.step = cfg.requote_ms * 1_000_000
        self.edge = round(cfg.edge_ticks * cfg.tick * SCALE)
        # Our resting quote per side: (order id, price), or None.
        self.quotes: dict[int, tuple[int, int] | None] = {Side.BUY: None, Side.SELL: None}
        self.quoted = 0
        self.ctx.set_timer(after=self.step)

    def on_timer(self, timer: Event) -> None:
        book = self.ctx.book()
        bid, ask = book.bbo() if book is not None else (None, None)
        if bid is not None and ask is not None and bid < ask:
            position = self.ctx.position_fx()
            want = {
                Side.BUY: bid - self.edge if position + self.size <= self.limit else None,
                Side.SELL: ask + self.edge if position - self.size >= -self.limit else None,
            }
            for side in (Side.BUY, Side.SELL):
                self._requote(side, want[side])
        self.ctx.set_timer(after=self.step)

    def _requote(self, side: int, price: int | None) -> None:
        current = self.quotes[side]
        if current is not None and current[1] != price:
            self.ctx.cancel(current[0])
            self.quotes[side] = current = None
        if current is None and price is not None:
            order_id = self.ctx.submit_fx(side, self.size, price_fx=price, post_only=True)
            self.quotes[side] = (order_id, price)
            self.quoted += 1

    def on_order(self, report: Event) -> None:
        if report.kind in _DONE:
            self._forget(report.order_id)

    def on_fill(self, fill: Event) -> None:
        book = self.ctx.book()
        if book is not None and book.order(fill.order_id) is None:
            self._forget(fill.order_id)  # filled in full

    def _forget(self, order_id: int) -> None:
        for side, quote in self.quotes.items():
            if quote is not None and quote[0] == order_id:
                self.quotes[side] = None
