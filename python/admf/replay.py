"""Replays: the recorded inputs of a run through the same kernel.

``replay(log)`` rebuilds the run from its manifest (strategy, parameters, settings, seed),
feeds the log's recorded inputs (the events flagged ``INPUT``, in their recorded order)
through a fresh kernel, and compares every event it produces with the log, byte for byte,
payloads included. It reports the output hash of both and the first difference, if any.

``replay_as_backtest(log, ...)`` re-runs the recorded market data (bars, quotes, trades, book
deltas; not the venue's reports of a live session) through the simulated venue, with the same
strategy or another one, as a new backtest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from admf.backtest import (
    BacktestResult,
    BacktestSettings,
    Source,
    StrategySpec,
    _Collector,
    close_run_log,
    make_result,
    resolve_strategy,
    run_kernel,
)
from admf.errors import AdmfError
from admf.events import EVENT_DTYPE, EventArray, Flag, Kind
from admf.kernel import Payload, combine_hashes, hash_outputs
from admf.log.payload import encode_payload
from admf.log.verify import VerifyReport

MARKET_KINDS = (
    Kind.BAR,
    Kind.QUOTE,
    Kind.TRADE,
    Kind.BOOK_ADD,
    Kind.BOOK_CANCEL,
    Kind.BOOK_MODIFY,
    Kind.BOOK_EXECUTE,
    Kind.BOOK_CLEAR,
)


@dataclasses.dataclass
class Recording:
    """A run read back from its log."""

    path: Path
    config: dict[str, Any]
    seed: int
    events: EventArray
    payloads: list[bytes | None]

    @property
    def output_hash(self) -> str:
        """The hash of the recorded output events and payloads (see ``hash_outputs``)."""
        return _output_hash(self.events, self.payloads)

    @property
    def inputs(self) -> EventArray:
        inputs: EventArray = self.events[(self.events["flags"] & Flag.INPUT) != 0]
        return inputs


def read_recording(
    path: str | os.PathLike[str], *, contents: Mapping[str, bytes] | None = None
) -> Recording:
    """Reads a run's manifest, events and payloads (read-only); ``contents``: the bytes of
    the log's files, read by the caller (see `EventLog.open`)."""
    from admf.log import PAYLOAD_COLUMN, EventLog

    with EventLog.open(path, read_only=True, contents=contents) as log:
        table = log.read()
        config = dict(log.manifest.config)
        seed = log.manifest.seed or 0
    from admf.events import from_arrow

    events = from_arrow(table.drop_columns([PAYLOAD_COLUMN]))
    payloads = [None if p is None else bytes(p) for p in table.column(PAYLOAD_COLUMN).to_pylist()]
    if config.get("command") not in ("backtest", "replay-as-backtest", "live"):
        raise AdmfError(
            f"{path} was not recorded by a backtest (its manifest's command is "
            f"{config.get('command')!r}); nothing to replay"
        )
    return Recording(Path(path), config, seed, events, payloads)


@dataclasses.dataclass
class ReplayReport:
    """The outcome of an exact replay."""

    recorded_hash: str
    replayed_hash: str
    events: int
    first_difference: str | None

    @property
    def identical(self) -> bool:
        return self.first_difference is None and self.recorded_hash == self.replayed_hash


def _output_hash(events: EventArray, payloads: list[Any] | list[bytes | None]) -> str:
    event_hash, payload_hash = hashlib.sha256(), hashlib.sha256()
    hash_outputs(events, payloads, event_hash, payload_hash)
    return combine_hashes(event_hash, payload_hash)


def _describe(row: np.void | None) -> str:
    if row is None:
        return "nothing"
    return ", ".join(f"{name}={row[name]}" for name in EVENT_DTYPE.names or ())


def _rerun(
    strategy: StrategySpec,
    params: dict[str, Any],
    settings: BacktestSettings,
    inputs: EventArray,
    data: list[dict[str, Any]],
    collector: _Collector,
) -> tuple[Any, Any]:
    clean = inputs.copy()
    clean["seq"] = 0
    instruments = [int(d["instrument"]) for d in data]
    books = {int(d["instrument"]): int(d["tick"]) for d in data if d.get("tick")}
    kernel, portfolio = run_kernel(
        resolve_strategy(strategy),
        params,
        settings,
        [clean],
        instruments,
        collector,
        books=books,
    )
    return kernel, portfolio


def reached_its_end(status: VerifyReport, config: dict[str, Any]) -> bool:
    """Whether a log holds its whole run: a backtest's once it was marked finished; a live
    session's once a session shut down and closed it (it is never marked finished, since
    ``admf live --resume`` may go on appending; what happened is all in its inputs)."""
    if config.get("command") == "live":
        return status.closed
    return status.finished


def replay(path: str | os.PathLike[str]) -> ReplayReport:
    """Replays a run's recorded inputs and compares every event with the log."""
    from admf.log.verify import verify_log

    status = verify_log(path).check()  # a log that fails verification is refused, before any rerun
    rec = read_recording(path)
    cfg = rec.config
    settings = BacktestSettings.from_dict(cfg["settings"])
    if cfg["command"] == "live":
        from admf.live.record import rerun_live
        from admf.log.manifest import Manifest

        run_id = Manifest.read(rec.path).run_id
        collector, kernel = rerun_live(cfg, run_id, rec.events, rec.payloads)
    else:
        collector = _Collector(None)
        kernel, _ = _rerun(
            cfg["strategy"], cfg["params"], settings, rec.inputs, cfg["data"], collector
        )
    replayed = collector.events()
    replayed_payloads: list[Payload | None] = [None] * len(replayed)
    for seq, payload in kernel.payloads.items():
        replayed_payloads[seq - 1] = payload
    encoded = [None if p is None else encode_payload(p) for p in replayed_payloads]
    recorded_hash = rec.output_hash
    replayed_hash = _output_hash(replayed, encoded)
    difference = None
    n = min(len(rec.events), len(replayed))
    raw_a = rec.events.view(np.uint8).reshape(-1, EVENT_DTYPE.itemsize)[:n]
    raw_b = replayed.view(np.uint8).reshape(-1, EVENT_DTYPE.itemsize)[:n]
    rows = np.flatnonzero((raw_a != raw_b).any(axis=1))
    first_event = int(rows[0]) if len(rows) else None
    first_payload = next((i for i in range(n) if rec.payloads[i] != encoded[i]), None)
    first = min((i for i in (first_event, first_payload) if i is not None), default=None)
    if first is not None:
        what = "event" if first == first_event else "payload"
        difference = (
            f"seq {first + 1}: the {what} differs\n  recorded: {_describe(rec.events[first])}"
            f"\n  replayed: {_describe(replayed[first])}"
        )
    if not reached_its_end(status, cfg):  # compare only what the run reached, and say so
        what = (
            "the live session was not shut down (its log was never closed)"
            if cfg.get("command") == "live"
            else "the recorded run did not finish"
        )
        difference = difference or (
            f"seq {n + 1}: {what} (its log stops at seq {len(rec.events)}; the events it "
            "reached match)"
        )
    elif len(rec.events) != len(replayed):
        longer = rec.events if len(rec.events) > n else replayed
        which = "recorded" if len(rec.events) > n else "replayed"
        difference = f"seq {n + 1}: only the {which} run has {_describe(longer[n])}"
    return ReplayReport(recorded_hash, replayed_hash, len(rec.events), difference)


def replay_as_backtest(
    path: str | os.PathLike[str],
    strategy: StrategySpec | None = None,
    params: dict[str, Any] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
) -> BacktestResult:
    """Re-runs the recorded market data through the simulated venue as a new backtest. With
    the recorded strategy (``strategy`` None or the same), the given ``params`` override the
    recorded ones and the others are kept; another strategy gets only the given ones."""
    rec = read_recording(path)
    cfg = rec.config
    settings = BacktestSettings.from_dict(cfg["settings"])
    spec: StrategySpec = strategy if strategy is not None else cfg["strategy"]
    same = strategy is None or strategy == cfg["strategy"]
    chosen_params = {**(cfg["params"] if same else {}), **(params or {})}
    # Checked before a new log is created: a bad parameter leaves no run behind.
    resolve_strategy(spec).make_config(chosen_params)
    # The market data and, from a live session, its wall-clock readings: the simulated venue
    # and the strategy's timers then see the session's time pass as it did live (an order in
    # flight after the last quote is answered when its time has come, as live).
    rerun_kinds = [int(k) for k in (*MARKET_KINDS, Kind.CLOCK)]
    market = rec.inputs[np.isin(rec.inputs["kind"], rerun_kinds)]
    sources = [
        Source(d["path"], int(d["instrument"]), d["name"], Kind.NONE, market[:0])
        for d in cfg["data"]
    ]
    spec_text = spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"
    log = None
    if log_dir is not None:
        from admf.log import EventLog

        config = {
            "command": "replay-as-backtest",
            "replayed_from": str(rec.path),
            "strategy": spec_text,
            "params": chosen_params,
            "settings": cfg["settings"],
            "data": cfg["data"],
        }
        log = EventLog.create(log_dir, None, config=config, seed=settings.seed)
    collector = _Collector(log)
    completed = False
    try:
        kernel, portfolio = _rerun(spec, chosen_params, settings, market, cfg["data"], collector)
        completed = True
    finally:
        if log is not None:
            close_run_log(log, collector, completed)
    return make_result(
        spec_text, chosen_params, settings, sources, collector, kernel, portfolio, log
    )
