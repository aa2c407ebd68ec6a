"""A live session: the node fed by asyncio adapters, recorded, supervised, stopped cleanly.

Threads: the asyncio loop (adapters, clock, control, signals) and one kernel thread that
drains the ``EventQueue`` in batches and applies events in ``seq`` order (`admf.node`).

Orders take the engine's order path in Rust, as in a backtest: validation, risk, then the live
gate (``rust/src/orders/gate.rs``), which reads the session's records (`admf.live.codes`) to
hold new exposure back while reconciling, paused or stopping, and cancels and flattens on
``FLATTEN`` and ``STOP``. With ``--exec-adapter sim`` the simulated venues fill what passes;
with a venue adapter the commands are collected in Rust, and the venue's reports and fills
come back as inputs, folded by the same portfolio.

The order of things:

1. the execution adapter connects, reconciles its orders with the venue and records
   ``RECONCILED``; until then the gate lets no new exposure out;
2. market data, ``CLOCK`` readings and control commands flow in;
3. after each batch the kernel flushes what happened to the log, and only once the log holds
   them (synchronously, durable under the log's fsync policy) are the batch's order commands
   taken from the order path (`Outbox`) and handed to the execution adapter;
4. on SIGINT, SIGTERM, ``admf live ctl LOG stop``, the end of the data or ``duration``: a
   ``STOP`` record (the gate cancels open orders unless told to keep them), a wait for the
   venue's answers up to ``stop_deadline``, then the adapters disconnect, the queue closes,
   the kernel drains it and stops the strategy, and the log is flushed and sealed.

The exit code says how it ended (`Ending`).

Resume (`LiveSession.resume`): the log's recorded inputs go through a fresh node first (the
same events come out again; the log refuses any that differ), which rebuilds the strategy,
orders, positions and cash; the adapter's order tracker is folded from the log; then the
session reconciles with the venue and goes on appending to the same log. Commands already in
the log are never sent again: an order the venue does not know after a crash is reported
rejected, one it knows is adopted with its fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import os
import shutil
import signal
import threading
from collections import deque
from typing import Any

import numpy as np

from admf._core import Event, KernelCore
from admf.backtest import BacktestSettings, RunSettings, SimulationSettings, resolve_strategy
from admf.clock import WallClock, clock_ticks
from admf.errors import AdmfError
from admf.events import (
    K_CUSTOM,
    K_ORDER_MODIFY,
    K_ORDER_REJECTED,
    K_ORDER_SUBMIT,
    EventArray,
    Flag,
    Kind,
)
from admf.kernel import Feed, Payload, extend_inputs, recorded_inputs
from admf.live.adapter import (
    SIM,
    AdapterContext,
    DataAdapter,
    ExecutionAdapter,
    LiveSetupError,
    load_adapter,
)
from admf.live.codes import LiveCode
from admf.live.control import ControlWatcher, Flattener
from admf.live.inbox import BUSY_POLL, Inbox
from admf.live.outbox import Outbox, client_prefix
from admf.live.tracker import OrderTracker
from admf.log import EventLog
from admf.node import Node, build_node

SECRET_WORDS = ("key", "secret", "token", "password")
LEG_KEYS = "fill_leg_keys"
"""In a live manifest: its fills' keys name their leg (`admf.live.tracker.execution_key`)."""


class Ending(enum.IntEnum):
    """How a session ended: its exit code."""

    FINISHED = 0
    """The data ended, ``duration`` passed, or ``admf live ctl LOG stop``."""
    FAILED = 1
    """An adapter or the kernel failed (the log says which)."""
    UNANSWERED = 3
    """Stopped, but orders were still waiting for the venue at the deadline."""
    SIGINT = 130
    SIGTERM = 143


@dataclasses.dataclass(frozen=True)
class LiveSpec:
    """What a live session runs."""

    strategy: str
    symbols: tuple[str, ...]
    data_adapter: str
    exec_adapter: str = SIM
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    settings: RunSettings = dataclasses.field(default_factory=BacktestSettings)
    """`BacktestSettings` with the simulated venue (``sim``); with a venue adapter the run
    settings only (`RunSettings`: it fills and charges by itself)."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Adapter options (``--adapter-option``); credentials never go here."""
    ticks: dict[str, int] = dataclasses.field(default_factory=dict)
    """Price step per symbol, fixed point (``--tick``): a symbol with one trades on the book
    venue, which fills on quotes (queue position, latency); the others on the bar venue."""
    cancel_on_stop: bool = True
    stop_deadline: float = 5.0
    clock_interval: float = 0.1
    duration: float | None = None
    queue_capacity: int = 65_536
    connect_timeout: float = 10.0
    busy_poll: float = BUSY_POLL
    """Seconds the kernel thread polls its queue before it parks (``--busy-poll``; 0: park at
    once, saving that CPU at the price of a wake-up per quiet spell; see `BUSY_POLL`)."""

    def __post_init__(self) -> None:
        if not self.symbols:
            raise LiveSetupError("symbols: a live session needs at least one symbol")
        if not 0 <= self.busy_poll <= 1:
            raise LiveSetupError(f"busy_poll must be 0..1 seconds, got {self.busy_poll}")
        if self.stop_deadline < 0:
            raise LiveSetupError(f"stop_deadline must be >= 0, got {self.stop_deadline}")
        if not self.clock_interval > 0:
            raise LiveSetupError(f"clock_interval must be > 0, got {self.clock_interval}")
        if self.duration is not None and not self.duration > 0:
            raise LiveSetupError(f"duration must be > 0, got {self.duration}")
        if self.exec_adapter != SIM and isinstance(self.settings, SimulationSettings):
            chosen = self.settings.simulation_set()
            if chosen:
                raise LiveSetupError(
                    f"{', '.join(chosen)}: settings of the simulated venue; the "
                    f"{self.exec_adapter} venue fills and charges by itself (they go with "
                    "--exec-adapter sim)"
                )
            # A venue's session holds its run settings only (the simulation's are defaults).
            object.__setattr__(self, "settings", self.settings.run)
        unknown = sorted(set(self.ticks) - set(self.symbols))
        if unknown:
            raise LiveSetupError(
                f"--tick: {', '.join(unknown)} is not a symbol of the session "
                f"({', '.join(self.symbols)})"
            )
        if self.ticks and self.exec_adapter != SIM:
            raise LiveSetupError(
                f"--tick: a price step for the simulated book venue; the {self.exec_adapter} "
                "venue fills by itself (it goes with --exec-adapter sim)"
            )
        for symbol, tick in sorted(self.ticks.items()):
            if not tick > 0:
                raise LiveSetupError(f"--tick: {symbol}'s tick must be > 0, got {tick}")
        for name in self.options:
            if any(word in name.lower() for word in SECRET_WORDS):
                raise LiveSetupError(
                    f"adapter option {name!r} looks like a credential: give credentials "
                    "in the environment or in --adapter-config, never on the command line"
                )

    def to_config(self) -> dict[str, Any]:
        """The manifest's record of the session (no credentials)."""
        return {
            "command": "live",
            "strategy": self.strategy,
            "params": {
                k: v if isinstance(v, int | float | bool) else str(v)
                for k, v in self.params.items()
            },
            "settings": self.settings.to_dict(),
            "data": [
                {
                    "path": symbol,
                    "instrument": i + 1,
                    "name": symbol,
                    "tick": self.ticks.get(symbol),
                }
                for i, symbol in enumerate(self.symbols)
            ],
            "live": {
                "symbols": list(self.symbols),
                "data_adapter": self.data_adapter,
                "exec_adapter": self.exec_adapter,
                "options": dict(self.options),
                "cancel_on_stop": self.cancel_on_stop,
                "stop_deadline": self.stop_deadline,
                "clock_interval": self.clock_interval,
                "duration": self.duration,
                "queue_capacity": self.queue_capacity,
                "busy_poll": self.busy_poll,
            },
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LiveSpec:
        live = config["live"]
        return cls(
            strategy=config["strategy"],
            symbols=tuple(live["symbols"]),
            data_adapter=live["data_adapter"],
            exec_adapter=live["exec_adapter"],
            params=dict(config["params"]),
            settings=BacktestSettings.from_dict(config["settings"]),
            options=dict(live["options"]),
            ticks={d["name"]: int(d["tick"]) for d in config["data"] if d.get("tick")},
            cancel_on_stop=live["cancel_on_stop"],
            stop_deadline=live["stop_deadline"],
            clock_interval=live["clock_interval"],
            duration=live["duration"],
            queue_capacity=live["queue_capacity"],
            busy_poll=live.get("busy_poll", BUSY_POLL),  # logs from before the setting
        )


def build_live_node(
    spec: LiveSpec,
    run_id: str,
    sink: Any,
    feed: Feed,
    start_ns: int = 0,
) -> tuple[Node, Outbox | None]:
    """The node of a live session (also what `admf replay` rebuilds from its log), its clock
    at ``start_ns`` (the session's recorded start) until the first input arrives, so that
    ``on_start`` reads a real time and can set timers from it; with a venue adapter, the
    `Outbox` its commands are taken from."""
    venue = spec.exec_adapter != SIM
    instruments = list(range(1, len(spec.symbols) + 1))
    node = build_node(
        resolve_strategy(spec.strategy),
        spec.params,
        spec.settings.run,
        [],
        instruments,
        sink,
        feed=feed,
        external=venue,
        simulation=spec.settings.simulation
        if isinstance(spec.settings, SimulationSettings)
        else None,
        books={i: spec.ticks[s] for i, s in enumerate(spec.symbols, 1) if s in spec.ticks},
    )
    core = node.kernel.core
    core.advance_clock(start_ns)
    return node, (Outbox(core, client_prefix(run_id)) if venue else None)


def check_spec(spec: LiveSpec) -> None:
    """Raises the error a session with ``spec`` would meet at its start (unknown strategy or
    parameter, unknown adapter, bad adapter option, missing credentials), without starting
    anything."""
    resolve_strategy(spec.strategy).make_config(spec.params)
    inbox = Inbox(2)
    venue = spec.exec_adapter != SIM
    symbols = list(spec.symbols)
    data = load_adapter(spec.data_adapter)(AdapterContext(inbox, symbols, spec.options))
    if data is None:
        raise LiveSetupError(f"adapter {spec.data_adapter!r} has no market data side")
    if venue:
        tracker = OrderTracker("check", inbox)
        context = AdapterContext(inbox, symbols, spec.options, tracker)
        if load_adapter(spec.exec_adapter)(context) is None:
            raise LiveSetupError(f"adapter {spec.exec_adapter!r} has no execution side")


def last_venue_time(events: EventArray) -> int:
    """The venue time of the last market data a session's log holds (0 if none): bars carry
    it in the ``CLOCK`` reading before them, quotes and trades in their ``payload`` slot."""
    inputs = events[(events["flags"] & Flag.INPUT) != 0]
    clocks = inputs[inputs["kind"] == Kind.CLOCK]["aux"]
    ticks = inputs[np.isin(inputs["kind"], [int(Kind.QUOTE), int(Kind.TRADE)])]["payload"]
    return int(max(clocks.max(initial=0), ticks.max(initial=0)))


class LiveSession:
    """One live session (see the module docstring)."""

    def __init__(
        self,
        spec: LiveSpec,
        log: EventLog,
        recorded: tuple[EventArray, list[Payload | None]] | None = None,
    ) -> None:
        self.spec = spec
        self.log = log
        self.run_dir = log.path
        self.prefix = client_prefix(log.run_id)
        self.inbox = Inbox(spec.queue_capacity, busy_poll=spec.busy_poll)
        self.recorded = recorded
        self.recorded_last = log.last_seq
        venue = spec.exec_adapter != SIM
        if recorded is not None and venue:
            leg_keys = bool(log.manifest.config.get("live", {}).get(LEG_KEYS, False))
            self.tracker = OrderTracker.from_log(
                self.prefix, self.inbox, recorded[0], leg_keys=leg_keys
            )
        else:
            self.tracker = OrderTracker(self.prefix, self.inbox)
        self.data: DataAdapter = self._adapter(spec.data_adapter, None)
        self.execution: ExecutionAdapter | None = (
            self._adapter(spec.exec_adapter, self.tracker) if venue else None
        )
        self.flattener = (
            Flattener(self.inbox, self.tracker, self.execution.busy)
            if self.execution is not None
            else None
        )
        start_ns = int(log.manifest.config.get("live", {}).get("start_ns", 0))
        self.node, self.outbox = build_live_node(
            spec, log.run_id, self._sink, self._feed(), start_ns
        )
        self._kernel: threading.Thread | None = None
        self.ending: Ending | None = None
        self.reason = ""
        self.kernel_error: BaseException | None = None
        self.stop_applied = threading.Event()
        self._closing = False
        self._stop = asyncio.Event()
        self._futures: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0

    # -- construction -------------------------------------------------------------------

    @classmethod
    def create(cls, spec: LiveSpec, root: str | os.PathLike[str]) -> LiveSession:
        """A new session logging under ``root``; its settings (strategy, parameters,
        adapters and their options) are checked before the log is created."""
        check_spec(spec)
        config = spec.to_config()
        config["live"]["start_ns"] = WallClock().now_ns()
        config["live"][LEG_KEYS] = True
        log = EventLog.create(root, None, config=config, seed=spec.settings.seed)
        try:
            return cls(spec, log)
        except BaseException:
            log.close()
            shutil.rmtree(log.path, ignore_errors=True)  # a run that never started
            raise

    @classmethod
    def resume(cls, run_dir: str | os.PathLike[str]) -> LiveSession:
        from admf.events import from_arrow
        from admf.log import PAYLOAD_COLUMN

        log = EventLog.open(run_dir)
        try:
            config = dict(log.manifest.config)
            if config.get("command") != "live":
                raise AdmfError(
                    f"{run_dir} is not the log of a live session (its command is "
                    f"{config.get('command')!r}); nothing to resume"
                )
            spec = LiveSpec.from_config(config)
            table = log.read()
            events = from_arrow(table.drop_columns([PAYLOAD_COLUMN]))
            payloads = [
                None if p is None else bytes(p) for p in table.column(PAYLOAD_COLUMN).to_pylist()
            ]
            return cls(spec, log, (events, payloads))
        except BaseException:
            log.close()
            raise

    def _adapter(self, name: str, tracker: OrderTracker | None) -> Any:
        context = AdapterContext(
            self.inbox,
            list(self.spec.symbols),
            self.spec.options,
            tracker,
            last_venue_time(self.recorded[0]) if self.recorded is not None else 0,
        )
        adapter = load_adapter(name)(context)
        if adapter is None:
            raise LiveSetupError(
                f"adapter {name!r} has no {'execution' if tracker else 'data'} side"
            )
        return adapter

    # -- the kernel thread ----------------------------------------------------------------

    def _feed(self) -> Feed:
        recorded = self.recorded
        inbox = self.inbox

        def feed(core: KernelCore, input_payloads: deque[Payload]) -> bool:
            nonlocal recorded
            if recorded is not None:
                extend_inputs(core, input_payloads, *recorded_inputs(*recorded))
                recorded = None
                return True
            return inbox.fill(core, input_payloads)

        return feed

    def _sink(self, events: EventArray, payloads: list[Payload | None] | None) -> None:
        commands = self.outbox.take() if self.outbox is not None else []
        if commands:
            # The commands go out only once the log holds them.
            self.log.append(events, payloads)
        else:
            self._futures.append(self.log.append_async(events, payloads))
        fresh = [c for c in commands if c.seq > self.recorded_last]
        loop = self._loop
        if fresh and loop is not None:
            loop.call_soon_threadsafe(self._hand_over, fresh)
        flattener = self.flattener
        if flattener is not None and flattener.waiting() and loop is not None:
            flattens = events[
                (events["kind"] == K_CUSTOM)
                & (events["order_id"] == LiveCode.FLATTEN)
                & ((events["flags"] & Flag.INPUT) != 0)
                & (events["seq"] > self.recorded_last)
            ]
            if len(flattens):
                flattener.applied_count += len(flattens)
                # After the batch's commands, so the flattener sees them on their way.
                loop.call_soon_threadsafe(flattener.applied, int(flattens["aux"][-1]))
        # This session's STOP applied (a resumed log holds older ones): the loop hears of it
        # after the batch's commands, so the shutdown sees them as requests.
        stop = self.node.kernel.core.stop_seq
        stopped = stop is not None and stop > self.recorded_last
        if stopped and not self.stop_applied.is_set() and loop is not None:
            loop.call_soon_threadsafe(self.stop_applied.set)

    def _hand_over(self, events: list[Event]) -> None:
        """Gives the execution adapter commands the log holds (on the event loop). Once the
        adapters are closing, an order is not sent any more: it is reported rejected (while
        the queue is still open; otherwise a resumed session finds it not at the venue and
        reports it then)."""
        if self.execution is None or self.outbox is None:
            return
        commands = self.outbox.commands(events)
        if self._closing:
            for command in commands:
                if command.kind == K_ORDER_SUBMIT:
                    order = self.tracker.add(command)
                    self.tracker.finish(order, K_ORDER_REJECTED, "not sent: the session stopped")
                elif command.kind == K_ORDER_MODIFY:
                    self.tracker.refuse(
                        command.order_id,
                        command.instrument,
                        command,
                        "not sent: the session stopped",
                    )
            return
        self.sent += len(commands)
        self.execution.send(commands)

    def _kernel_main(self) -> None:
        try:
            self.node.run()
        except BaseException as exc:  # reported by the session, which then stops
            self.kernel_error = exc
        finally:
            # Nobody drains the queue any more: producers must not wait for room.
            self.inbox.consumer_gone.set()
            stopped = self.node.kernel.stopped
            reason = f"the run stopped: {stopped}" if stopped else "the kernel ended"
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._request_stop, reason, Ending.FAILED)

    # -- the session ----------------------------------------------------------------------

    def _request_stop(self, reason: str, ending: Ending = Ending.FINISHED) -> None:
        if self.ending is None:
            self.ending = ending
            self.reason = reason
        self._stop.set()

    async def run(self) -> Ending:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._request_stop, "SIGINT", Ending.SIGINT)
            loop.add_signal_handler(signal.SIGTERM, self._request_stop, "SIGTERM", Ending.SIGTERM)
        kernel = threading.Thread(target=self._kernel_main, name="admf-kernel", daemon=True)
        self._kernel = kernel
        if self.recorded is not None:
            self.inbox.record(LiveCode.RESUMED, {"from_seq": self.recorded_last + 1})
        kernel.start()
        tasks: list[asyncio.Task[Any]] = []
        try:
            async with asyncio.TaskGroup() as group:
                if self.execution is not None:
                    async with asyncio.timeout(self.spec.connect_timeout):
                        await self.execution.connect()
                        # Reconciled before any market data: no new exposure before it.
                        await self.execution.reconcile()
                    tasks.append(group.create_task(self._guard(self.execution.run(), "execution")))
                async with asyncio.timeout(self.spec.connect_timeout):
                    await self.data.connect()
                tasks.append(group.create_task(self._data()))
                tasks.append(
                    group.create_task(
                        clock_ticks(self.inbox.push, self.inbox.clock, self.spec.clock_interval)
                    )
                )
                watcher = ControlWatcher(
                    self.run_dir, self.inbox, self._request_stop, self.flattener
                )
                tasks.append(group.create_task(watcher.run()))
                if self.spec.duration is not None:
                    tasks.append(group.create_task(self._timer(self.spec.duration)))
                await self._stop.wait()
                await self._shutdown(tasks)
                for task in tasks:
                    task.cancel()
        except* (OSError, AdmfError, TimeoutError) as failure:
            self.ending = Ending.FAILED
            self.reason = "; ".join(f"{type(e).__name__}: {e}" for e in failure.exceptions)
        finally:
            self._closing = True
            if self.flattener is not None:
                self.flattener.close()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await self.data.disconnect()
            if self.execution is not None:
                with contextlib.suppress(Exception):
                    await self.execution.disconnect()
            self.inbox.close()
            await asyncio.to_thread(kernel.join)
            for future in self._futures:
                future.result()
            self.log.close(seal=True)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
        if self.kernel_error is not None:
            self.ending = Ending.FAILED
            self.reason = f"kernel: {type(self.kernel_error).__name__}: {self.kernel_error}"
        return self.ending if self.ending is not None else Ending.FINISHED

    async def _guard(self, coroutine: Any, what: str) -> None:
        """Runs an adapter task; if it fails (for any reason: an adapter is a plugin), the
        failure is recorded and the session stops cleanly instead of dying mid-order."""
        try:
            await coroutine
        except Exception as exc:
            reason = f"{what} failed: {type(exc).__name__}: {exc}"
            self.inbox.record(LiveCode.VENUE_ERROR, {"failed": what, "error": reason})
            self._request_stop(reason, Ending.FAILED)

    async def _data(self) -> None:
        await self._guard(self.data.run(), "market data")
        self._request_stop("the market data ended")

    async def _timer(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._request_stop(f"duration of {seconds:g} s reached")

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Stops market data, records ``STOP`` and waits for the venue's answers."""
        loop = asyncio.get_running_loop()
        cancel = self.spec.cancel_on_stop
        if self.flattener is not None:
            self.flattener.close()  # a flatten not done yet stops with the session
        for task in tasks[1 if self.execution is not None else 0 :]:
            task.cancel()
        self.inbox.record(
            LiveCode.STOP,
            {"reason": self.reason, "cancel_open_orders": cancel},
            aux=1 if cancel else 0,
        )
        deadline = loop.time() + self.spec.stop_deadline
        while loop.time() < deadline:
            if self.stop_applied.is_set() and self._answered(cancel):
                return
            if self._kernel is None or not self._kernel.is_alive():
                return
            await asyncio.sleep(0.01)
        if self.ending in (None, Ending.FINISHED):
            self.ending = Ending.UNANSWERED
        open_orders = [o.client_id for o in self.tracker.open_orders()]
        self.inbox.record(LiveCode.VENUE_ERROR, {"unanswered_at_stop": open_orders})

    def _answered(self, cancel: bool) -> bool:
        if self.execution is None:
            return True
        if self.execution.busy():
            return False
        if cancel:
            return not self.tracker.open_orders()
        return True


def run_session(session: LiveSession) -> Ending:
    """Runs a session on a fresh event loop; returns how it ended."""
    return asyncio.run(session.run())
