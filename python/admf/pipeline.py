"""The order path in Python: a pipeline of stages, each replaceable by a plugin.

signal -> validation -> risk -> execution -> audit. A strategy's command is an event
(``ORDER_SUBMIT``, ``ORDER_CANCEL``, ``ORDER_MODIFY``); the pipeline sequences it and runs it
through each stage in order at once, and a stage that refuses it logs why and stops it there.
Cancels and modifies skip risk. Replace a stage by passing another object with ``name`` and
``process(order, kernel)``.

A run whose stages are all the engine's own runs the same path in Rust inside the kernel
(``KernelCore.attach_orders``); a backtest with a replaced stage runs this pipeline, whose
default stages (`admf.kernel.Validation`, `admf.risk.RiskEngine`, `admf.venue.BarVenue`) decide
exactly as the Rust ones, event for event. A live node always runs the Rust path, with its
live gate (``rust/src/orders/gate.rs``), which has no Python twin.
"""

from __future__ import annotations

from collections.abc import Sequence

from admf._core import Event
from admf.events import K_ORDER_REJECTED, K_ORDER_SUBMIT
from admf.kernel import Kernel, OrderStage
from admf.strategy import Component

STAGE_NAMES = ("validation", "risk", "execution", "audit")


class OrderPipeline(Component):
    """Runs order commands through its stages; subscribes itself to the kernel."""

    def __init__(self, kernel: Kernel, stages: Sequence[OrderStage]) -> None:
        names = [stage.name for stage in stages]
        if names != list(STAGE_NAMES):
            raise ValueError(f"pipeline stages must be {STAGE_NAMES}, got {tuple(names)}")
        self.kernel = kernel
        self.stages = list(stages)

    def command(self, order: Event) -> None:
        """Sequences a strategy's command and runs it through the stages."""
        self.on_command(self.kernel.emit(order))

    def submit(
        self,
        instrument: int,
        order_id: int,
        side: int,
        price: int,
        qty: int,
        value: int,
        flags: int,
    ) -> None:
        """`command` of an order submit given by its fixed-point fields."""
        order = Event(
            K_ORDER_SUBMIT,
            0,
            instrument=instrument,
            order_id=order_id,
            side=side,
            price=price,
            qty=qty,
            aux=value,
            flags=flags,
        )
        self.command(order)

    def on_command(self, order: Event) -> None:
        submit = order.kind == K_ORDER_SUBMIT
        for stage in self.stages:
            if not submit and stage is self.stages[1]:
                continue  # cancels and modifies skip risk
            if not stage.process(order, self.kernel):
                if stage is self.stages[1]:
                    self.kernel.emit(order.as_kind(K_ORDER_REJECTED), payload="denied by risk")
                return
