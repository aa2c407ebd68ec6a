"""The sweep's progress bar: trials done, failed, running, and the best so far."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column


class SweepProgress:
    """A rich progress bar; ``enabled=False`` keeps the counts without drawing anything."""

    def __init__(self, enabled: bool) -> None:
        self.done = 0
        self.failed = 0
        self.running = 0
        self.best = ""
        self._progress: Progress | None = None
        self._task: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                # The best so far takes what is left of the line, cut short if need be.
                TextColumn(
                    "{task.fields[best]}",
                    table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
                ),
                transient=False,
                expand=True,
            )
            self._progress.start()

    def phase(self, description: str, total: int, done: int) -> None:
        """A new bar (a sweep has one; a walk-forward one for training, one for testing)."""
        self.done, self.failed, self.running = done, 0, 0
        if self._progress is not None:
            self._task = self._progress.add_task(
                description, total=total, completed=done, counts="", best=self.best
            )

    def update(self, running: int, finished: int = 0, failed: int = 0, best: str = "") -> None:
        self.done += finished
        self.failed += failed
        self.running = running
        if best:
            self.best = best
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                completed=self.done,
                counts=f"failed {self.failed}  running {self.running}",
                best=self.best,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
