"""A strategy that can be killed mid-run after its events reached the log (loaded as
``module:Class`` by a replay)."""

from __future__ import annotations

import time

from tests.integration.strategies import Rebalancer


class SlowStop(Rebalancer):
    """`Rebalancer`, pausing when it stops (wall-clock time only: the outputs are the same),
    after the kernel flushed the run's events to the log and before the run finishes."""

    def on_stop(self) -> None:
        time.sleep(2)
        super().on_stop()
