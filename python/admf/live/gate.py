"""The kernel side of a live session's control: which orders may go out, and flattening.

`LiveGate` is the execution stage of a live node; it wraps the real one (the venue adapter's
`Outbox` or, for ``--exec-adapter sim``, the simulated venue). It reads the session's records
(`admf.live.codes`) as they are applied:

- new exposure waits while the execution side reconciles (from ``RECONCILING`` until
  ``RECONCILED``), while paused and once stopping; cancels, modifies and orders that only
  reduce a position still pass (a refused order gets ``ORDER_REJECTED`` with the reason);
- ``FLATTEN`` cancels every open order and sends a market order closing each position;
- ``STOP`` with ``aux`` 1 cancels every open order.

Everything here is decided from events in the log, so a replay decides the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from admf._core import Event
from admf.events import (
    BUY,
    F_MARKET,
    K_ORDER_CANCEL,
    K_ORDER_REJECTED,
    K_ORDER_SUBMIT,
    SELL,
    Kind,
)
from admf.kernel import Kernel, OrderStage
from admf.live.codes import LiveCode, is_live_event
from admf.portfolio import Portfolio


@dataclasses.dataclass
class OpenOrder:
    instrument: int
    side: int
    qty: int
    filled: int = 0


class LiveGate:
    """See the module docstring."""

    name = "execution"

    def __init__(
        self,
        kernel: Kernel,
        portfolio: Portfolio,
        inner: OrderStage,
        instruments: list[int],
        *,
        reconciling: bool = True,
    ) -> None:
        self._venue = reconciling
        self.on_stop: Callable[[Event], None] | None = None
        """Called (in the kernel thread) once a ``STOP`` record has been applied."""
        self.command: Callable[[Event], object] = kernel.emit
        """Where the gate's own commands (flattening) go: the node sets it to the order
        path's entry (what ``ctx.buy`` calls), so they pass validation, risk and the gate."""
        self.kernel = kernel
        self.portfolio = portfolio
        self.inner = inner
        self.instruments = list(instruments)
        self.reconciling = reconciling
        self.paused = False
        self.stopping = False
        # Insertion-ordered: flattening cancels in the order the orders were sent.
        self.open: dict[int, OpenOrder] = {}
        kernel.subscribe(Kind.CUSTOM, self._on_record, "live.gate")
        kernel.subscribe(Kind.FILL, self._on_fill, "live.gate")
        for kind in (Kind.ORDER_REJECTED, Kind.ORDER_CANCELED, Kind.ORDER_EXPIRED):
            kernel.subscribe(kind, self._on_done, "live.gate")
        kernel.subscribe(Kind.ORDER_MODIFIED, self._on_modified, "live.gate")

    # -- the execution stage ----------------------------------------------------------------

    def process(self, order: Event, kernel: Kernel) -> bool:
        if order.kind == K_ORDER_SUBMIT:
            why = self._blocked(order)
            if why is not None:
                kernel.emit(order.as_kind(K_ORDER_REJECTED), payload=why)
                return False
            self.open[order.order_id] = OpenOrder(order.instrument, order.side, order.qty_fx)
        return self.inner.process(order, kernel)

    def _blocked(self, order: Event) -> str | None:
        if not (self.reconciling or self.paused or self.stopping):
            return None
        if self._reduces(order):
            return None
        if self.stopping:
            return "live: the session is stopping; only reducing orders pass"
        if self.reconciling:
            return "live: reconciling with the venue; new exposure waits until it is done"
        return "live: paused (admf live ctl ... resume); only reducing orders pass"

    def _reduces(self, order: Event) -> bool:
        position = self.portfolio.qty_fx(order.instrument)
        qty = order.qty_fx
        if qty <= 0:
            return False
        if order.side == SELL:
            return position > 0 and qty <= position
        return position < 0 and qty <= -position

    # -- records and reports ----------------------------------------------------------------

    def _on_record(self, event: Event) -> None:
        if not is_live_event(event):
            return
        code = event.order_id
        if code == LiveCode.RECONCILING:
            self.reconciling = True
        elif code == LiveCode.RECONCILED:
            self.reconciling = False
        elif code == LiveCode.PAUSE:
            self.paused = True
        elif code == LiveCode.RESUME:
            self.paused = False
        elif code == LiveCode.FLATTEN:
            self.paused = True
            self._cancel_all()
            self._close_positions()
        elif code == LiveCode.RESUMED:
            # A new session on the same log: the last one's stop is over; a venue's orders
            # are reconciled again before new exposure.
            self.stopping = False
            self.reconciling = self.reconciling or self._venue
        elif code == LiveCode.STOP:
            self.stopping = True
            if event.aux:
                self._cancel_all()
            if self.on_stop is not None:
                self.on_stop(event)

    def _on_fill(self, fill: Event) -> None:
        order = self.open.get(fill.order_id)
        if order is None:
            return
        order.filled += fill.qty_fx
        # An order sized by value (qty 0) is done with its fill.
        if not order.qty or order.filled >= order.qty:
            del self.open[fill.order_id]

    def _on_done(self, report: Event) -> None:
        if report.kind == K_ORDER_REJECTED:
            order = self.open.get(report.order_id)
            # A refused cancel or modify (it has no side) leaves its order open.
            if order is not None and (report.side == 0 or report.qty_fx != order.qty):
                return
        self.open.pop(report.order_id, None)

    def _on_modified(self, report: Event) -> None:
        order = self.open.get(report.order_id)
        if order is not None:
            order.qty = order.filled + report.qty_fx  # its qty: what stays open

    def _cancel_all(self) -> None:
        for order_id, order in list(self.open.items()):
            self.command(Event(K_ORDER_CANCEL, 0, instrument=order.instrument, order_id=order_id))

    def _close_positions(self) -> None:
        for instrument in self.instruments:
            position = self.portfolio.qty_fx(instrument)
            if position == 0:
                continue
            self.command(
                Event(
                    K_ORDER_SUBMIT,
                    0,
                    instrument=instrument,
                    order_id=self.kernel.next_order_id(),
                    side=SELL if position > 0 else BUY,
                    qty=abs(position),
                    flags=F_MARKET,
                )
            )


__all__ = ["LiveGate", "OpenOrder"]
