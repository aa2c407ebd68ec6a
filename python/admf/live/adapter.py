"""What a live adapter is, and how the node finds one (plugin group ``admf.adapters``).

A data adapter turns a venue's market data into input events; an execution adapter sends
the node's order commands and turns the venue's answers into input events. Both have an async
lifecycle the session supervises (`admf.live.session`): ``connect``, then ``run`` (a task
that lives until the session ends and reconnects by itself), then ``disconnect``. An
execution adapter also ``send``s commands (after they are in the log) and ``reconcile``s its
orders with the venue.

An adapter plugin is a factory: ``factory(context) -> adapter``, where `AdapterContext` gives
the inbox to push into, the session's symbols, the tracker of its orders, and the adapter's
settings (from ``--adapter-option KEY=VALUE``, the environment and a config file). An adapter
pushes what one message of its venue carried (``inbox.offer_market`` for market data,
``inbox.push`` or the tracker for the rest), then calls ``inbox.hand_off()``: the kernel
thread, polling for input, applies it at once instead of waiting for the GIL. The built-in
ones are ``alpaca``, ``replay`` and ``sim`` (``sim`` as execution: the simulated venue runs
inside the kernel, no adapter task).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from admf.errors import AdmfError
from admf.live.inbox import Inbox
from admf.live.outbox import Command
from admf.live.tracker import OrderTracker

BUILTIN: dict[str, str] = {
    "alpaca": "admf.live.alpaca:make_adapter",
    "replay": "admf.live.replay_data:make_adapter",
    "sim": "admf.live.adapter:make_sim",
}
"""The adapters of this package (also declared as entry points of ``admf.adapters``)."""

SIM = "sim"


class LiveSetupError(AdmfError, ValueError):
    """A live session's settings are wrong (named, with what is accepted)."""


@dataclasses.dataclass
class AdapterContext:
    inbox: Inbox
    symbols: list[str]
    """Symbol of instrument ``i + 1`` at index ``i``."""
    options: dict[str, Any]
    tracker: OrderTracker | None = None
    after_ns: int = 0
    """For a resumed session: the venue time of the last market data in its log (a data
    adapter that replays history goes on after it; live data is live anyway)."""

    def instrument(self, symbol: str) -> int | None:
        try:
            return self.symbols.index(symbol) + 1
        except ValueError:
            return None


@runtime_checkable
class DataAdapter(Protocol):
    async def connect(self) -> None: ...
    async def run(self) -> None:
        """Pushes market data until the source ends (returns) or the task is cancelled."""

    async def disconnect(self) -> None: ...


@runtime_checkable
class ExecutionAdapter(Protocol):
    async def connect(self) -> None: ...
    async def reconcile(self) -> None:
        """Compares orders, fills and positions with the venue; pushes what it found."""

    async def run(self) -> None: ...
    def send(self, commands: Sequence[Command]) -> None:
        """Takes commands that are in the log (called on the event loop)."""

    def busy(self) -> bool:
        """Whether requests are still waiting for the venue's answer."""

    async def disconnect(self) -> None: ...


AdapterFactory = Callable[[AdapterContext], Any]


def load_adapter(name: str) -> AdapterFactory:
    """The factory of adapter ``name``: built-in, an entry point of ``admf.adapters``, or
    ``module:attribute``."""
    from admf.plugins import load

    try:
        found = load("adapters", BUILTIN.get(name, name))
    except AdmfError as exc:
        raise LiveSetupError(
            f"no adapter {name!r}; built in: {', '.join(BUILTIN)} ({exc})"
        ) from None
    if not callable(found):
        raise LiveSetupError(f"adapter {name!r} is {found!r}, not a factory of adapters")
    factory: AdapterFactory = found
    return factory


def make_sim(context: AdapterContext) -> None:
    """``sim`` as execution: the simulated venue inside the kernel (no adapter task)."""
    return None
