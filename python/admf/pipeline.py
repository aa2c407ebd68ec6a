"""The order path: a pipeline of stages, each replaceable by a plugin.

signal -> validation -> risk -> execution -> audit. A strategy's command is an event
(``ORDER_SUBMIT``, ``ORDER_CANCEL``, ``ORDER_MODIFY``); the pipeline runs it through each stage
in order, and a stage that refuses it logs why and stops it there. Cancels and modifies skip
risk. Replace a stage by passing another object with ``name`` and ``process(order, kernel)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from admf._core import Event
from admf.events import K_ORDER_REJECTED, K_ORDER_SUBMIT
from admf.kernel import ORDER_COMMANDS, Kernel, OrderStage
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
        for kind in ORDER_COMMANDS:
            kernel.subscribe(kind, self.on_command, "pipeline")

    def on_command(self, order: Event) -> None:
        submit = order.kind == K_ORDER_SUBMIT
        for stage in self.stages:
            if not submit and stage is self.stages[1]:
                continue  # cancels and modifies skip risk
            if not stage.process(order, self.kernel):
                if stage is self.stages[1]:
                    self.kernel.emit(order.as_kind(K_ORDER_REJECTED), payload="denied by risk")
                return
