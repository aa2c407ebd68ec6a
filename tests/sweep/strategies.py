"""Strategies of the sweep tests (loaded as ``module:Class`` in the workers)."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

from admf import Event, Side, Strategy, StrategyConfig


@dataclasses.dataclass(frozen=True)
class FaultyConfig(StrategyConfig):
    mode: str = "ok"
    """ok: trade a little; raise: fail while being built; hang: never return from a bar;
    kill: SIGKILL its own process; slow: sleep ``sleep`` seconds per run."""
    every: int = 5
    sleep: float = 0.0
    marks: str = ""
    """A directory where each run leaves a file (counts how often a trial ran)."""

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")


class Faulty(Strategy):
    """Buys every ``every``-th bar and sells on the next, or misbehaves as ``mode`` says."""

    Config = FaultyConfig
    config: FaultyConfig

    def __init__(self, config: FaultyConfig, ctx: object) -> None:
        super().__init__(config, ctx)  # type: ignore[arg-type]
        if config.marks:
            mark = Path(config.marks) / f"{config.mode}-{config.every}-{time.time_ns()}"
            mark.write_text(str(os.getpid()))
        if config.mode == "raise":
            raise RuntimeError("boom: this trial fails on purpose")
        self.bars = 0

    def on_bar(self, bar: Event) -> None:
        self.bars += 1
        if self.config.mode == "hang":
            time.sleep(3600)
        if self.config.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.mode == "slow" and self.bars == 1:
            time.sleep(self.config.sleep)
        if self.bars % self.config.every == 0:
            self.ctx.submit(Side.BUY, 10)
        elif self.ctx.position() > 0:
            self.ctx.submit(Side.SELL, self.ctx.position())
