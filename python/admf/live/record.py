"""A live session's log, replayed: exactly (`rerun_live`, used by ``admf replay``) and as a
backtest compared with what happened live (`compare_live`, ``admf replay --as-backtest``).

The exact replay feeds the recorded inputs (market data with both timestamps, the venue's
acknowledgements and fills, clock readings, reconnects, reconciliation results, control
commands), with their payloads, through the node a live session builds (`build_live_node`);
nothing is sent anywhere. Every output must come out identical.

The comparison matches the fills of the live session and of the simulation by the decision
that caused them (instrument, side and the time of the order's command: the simulation runs
on the recorded market data with its recorded times) and reports the unmatched ones on each
side, the price and time differences of the matched ones, and each run's P&L (final equity
marked at the last price, minus the cash it started with).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from admf.analysis import analyze
from admf.events import SCALE, EventArray, Flag, Kind
from admf.kernel import Kernel, Payload, batch_feed, recorded_inputs


def rerun_live(
    config: dict[str, Any], run_id: str, events: EventArray, payloads: list[bytes | None]
) -> tuple[Any, Kernel]:
    """Runs a live log's inputs through a fresh live node; returns (collector, kernel)."""
    from admf.backtest import _Collector
    from admf.live.session import LiveSpec, build_live_node

    spec = LiveSpec.from_config(config)
    fed: list[tuple[EventArray, list[Payload | None]] | None] = [
        None,
        recorded_inputs(events, payloads),
    ]
    collector = _Collector(None)
    start_ns = int(config["live"].get("start_ns", 0))
    node, _ = build_live_node(spec, run_id, collector, batch_feed(fed.pop), start_ns)
    node.run()
    return collector, node.kernel


class FillMatch(NamedTuple):
    order_id: int
    side: int
    live_price: int
    sim_price: int
    live_qty: int
    sim_qty: int
    live_ts: int
    sim_ts: int


@dataclasses.dataclass
class LiveDiff:
    """Live session against its simulation (fixed point, ns)."""

    matched: list[FillMatch]
    live_only: EventArray
    sim_only: EventArray
    live_pnl: int
    sim_pnl: int

    def lines(self) -> list[str]:
        out = [
            f"fills matched: {len(self.matched)}; live only: {len(self.live_only)}; "
            f"simulation only: {len(self.sim_only)}",
        ]
        if self.matched:
            price = [m.sim_price - m.live_price for m in self.matched]
            timing = [m.sim_ts - m.live_ts for m in self.matched]
            out.append(
                "price, simulation - live: mean "
                f"{np.mean(price) / SCALE:+.4f}, max |{np.max(np.abs(price)) / SCALE:.4f}|"
            )
            out.append(
                "time, simulation - live: mean "
                f"{np.mean(timing) / 1e6:+.3f} ms, max |{np.max(np.abs(timing)) / 1e6:.3f}| ms"
            )
        out.append(f"P&L live: {self.live_pnl / SCALE:,.2f}")
        out.append(f"P&L simulation: {self.sim_pnl / SCALE:,.2f}")
        out.append(
            f"P&L difference (simulation - live): {(self.sim_pnl - self.live_pnl) / SCALE:,.2f}"
        )
        return out


def _pnl(events: EventArray, cash: int) -> int:
    curve = analyze(events, cash).curve
    return int(curve.equity[-1]) - cash if len(curve.equity) else 0


def _keyed_fills(events: EventArray) -> tuple[EventArray, list[tuple[int, int, int, int]]]:
    """The fills of a run, each keyed by (instrument, side, time of the order's command,
    occurrence): the same decision on the same market data has the same key in both runs,
    even when their order ids differ (a refusal in one run shifts the other's numbering)."""
    submits = events[events["kind"] == Kind.ORDER_SUBMIT]
    decided = dict(zip(submits["order_id"].tolist(), submits["ts"].tolist(), strict=True))
    fills = events[events["kind"] == Kind.FILL]
    keys: list[tuple[int, int, int, int]] = []
    seen: dict[tuple[int, int, int], int] = {}
    for row in fills:
        base = (
            int(row["instrument"]),
            int(row["side"]),
            int(decided.get(int(row["order_id"]), -1)),
        )
        n = seen.get(base, 0)
        seen[base] = n + 1
        keys.append((*base, n))
    return fills, keys


def compare_live(live: EventArray, sim: EventArray, initial_cash: int) -> LiveDiff:
    """Matches the fills of ``live`` and ``sim`` (see `_keyed_fills`)."""
    fills_live, keys_live = _keyed_fills(live)
    fills_sim, keys_sim = _keyed_fills(sim)
    by_key = {key: j for j, key in enumerate(keys_sim)}
    matched: list[FillMatch] = []
    used_sim: set[int] = set()
    live_only: list[int] = []
    for i, key in enumerate(keys_live):
        j = by_key.get(key)
        if j is None:
            live_only.append(i)
            continue
        used_sim.add(j)
        row, s = fills_live[i], fills_sim[j]
        matched.append(
            FillMatch(
                int(row["order_id"]),
                key[1],
                int(row["price"]),
                int(s["price"]),
                int(row["qty"]),
                int(s["qty"]),
                int(row["ts"]),
                int(s["ts"]),
            )
        )
    sim_only = [j for j in range(len(fills_sim)) if j not in used_sim]
    return LiveDiff(
        matched,
        fills_live[live_only],
        fills_sim[sim_only],
        _pnl(live, initial_cash),
        _pnl(sim, initial_cash),
    )


def print_live_diff(path: Any, result: Any) -> None:
    """Prints the live-vs-simulation comparison when ``path`` is a live session's log."""
    from admf.replay import read_recording

    rec = read_recording(path)
    if rec.config.get("command") != "live":
        return
    diff = compare_live(rec.events, result.events, result.portfolio.initial_cash_fx)
    print("live session vs. simulation (fills matched by the decision that caused them):")
    for line in diff.lines():
        print(f"  {line}")
    for line in decisions(rec.events, result.events) + refusals(rec.events, rec.payloads):
        print(f"  {line}")


def decisions(live: EventArray, sim: EventArray) -> list[str]:
    """Orders (decisions, keyed by instrument, side and time) that only one run made: the
    strategy saw a different state there (live, a fill arrives after the venue's latency;
    simulated, at the next bar)."""

    def keys(events: EventArray) -> set[tuple[int, int, int]]:
        s = events[events["kind"] == Kind.ORDER_SUBMIT]
        return set(zip(s["instrument"].tolist(), s["side"].tolist(), s["ts"].tolist(), strict=True))

    a, b = keys(live), keys(sim)
    return [f"orders only live: {len(a - b)}; only in the simulation: {len(b - a)}"]


def refusals(events: EventArray, payloads: list[bytes | None]) -> list[str]:
    """Why orders of the live session got no fill: the venue's refusals by reason (the
    simulation, with its own cash and no latency, may have filled them)."""
    rejected = np.flatnonzero(
        (events["kind"] == Kind.ORDER_REJECTED) & ((events["flags"] & Flag.INPUT) != 0)
    )
    if not len(rejected):
        return []
    reasons: dict[str, int] = {}
    for i in rejected.tolist():
        raw = payloads[i]
        reason = raw.decode(errors="replace") if raw else "no reason given"
        reasons[reason] = reasons.get(reason, 0) + 1
    out = [f"orders the live venue refused: {len(rejected)}"]
    out += [f"  {n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda r: -r[1])]
    return out
