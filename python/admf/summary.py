"""The summary of a run: what it did, counted from its events, and its statistics.

Every count is a count of the run's events, the rows its log holds, so a summary and
``admf query`` always agree: ``orders`` are ``ORDER_SUBMIT`` events, ``rejected``
``ORDER_REJECTED``, ``risk_denied`` the ``RISK`` decisions that refused an order (a non-zero
reason code), ``fills`` ``FILL`` events, ``errors`` every ``ERROR`` event and
``handler_errors`` those a handler raised (their payload names the handler; the others are
market data the venue refused, for one). The statistics are ``admf.metrics`` of the equity
curve; on book data without trades or bars (a Databento MBO file read as book deltas) the
curve is marked at the run's own fills, and the summary says so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from admf.errors import AdmfError
from admf.events import EventArray, Kind
from admf.metrics import Summary, summarize

if TYPE_CHECKING:
    from admf.analysis import Analysis

MARKET_HANDLERS: Final[tuple[str, ...]] = ("on_bar", "on_quote", "on_trade", "on_book")
"""The handlers of a strategy that receive market data (their kinds: ``HANDLER_KINDS``)."""

FIRST_EVENTS: Final[int] = 4096
"""How many of a run's first events ``unhandled_warning`` looks at before counting all."""

MARKED_AT_FILLS: Final[str] = "the run's own fills (the data has no trades or bars to mark at)"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a run did (counts of its events), its statistics and its warnings.

    ``statistics`` is None when there are none (``no_statistics`` says why); ``marked_at``
    says what the equity curve is marked at when it is not the market's own prices.
    ``r.summary["sharpe"]`` reads one number (a count or a ``Summary`` field);
    ``formatted()`` gives the display strings.
    """

    events: int
    orders: int
    fills: int
    rejected: int
    risk_denied: int
    errors: int
    handler_errors: int
    output_hash: str
    statistics: Summary | None = None
    no_statistics: str | None = None
    marked_at: str | None = None
    stopped: str | None = None
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The counts, the statistics' fields (flattened) and the hash, as numbers."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("statistics", "warnings")
        }
        out["warnings"] = list(self.warnings)
        if self.statistics is not None:
            out.update(self.statistics.as_dict())
        return out

    def __getitem__(self, name: str) -> Any:
        values = self.as_dict()
        if name not in values:
            raise KeyError(f"{name!r} is not in the summary; it has {', '.join(values)}")
        return values[name]

    def formatted(self) -> dict[str, str]:
        """Display strings, in the order a summary table shows them."""
        out: dict[str, str] = {}
        if self.stopped is not None:
            out["stopped early"] = self.stopped
        if self.statistics is not None:
            out.update(self.statistics.formatted())
            if self.marked_at is not None:
                out["equity marked at"] = self.marked_at
        else:
            out["statistics"] = f"n/a ({self.no_statistics})"
        out["events"] = f"{self.events:,}"
        out["orders"] = f"{self.orders:,}"
        out["fills"] = f"{self.fills:,}"
        out["rejected orders"] = f"{self.rejected:,}"
        out["risk denials"] = f"{self.risk_denied:,}"
        errors = f"{self.errors:,}"
        if self.errors:
            others = self.errors - self.handler_errors
            errors += (
                f" ({self.handler_errors:,} raised by handlers, {others:,} other: "
                "see the errors view)"
            )
        out["errors"] = errors
        for i, warning in enumerate(self.warnings, start=1):
            out["warning" if len(self.warnings) == 1 else f"warning {i}"] = warning
        out["output hash"] = self.output_hash
        return out


def _decoded(payload: Any) -> Any:
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return json.loads(bytes(payload))
        except ValueError:
            return None
    return payload


def handler_error_count(errors: EventArray, payloads: Mapping[int, Any]) -> int:
    """How many of the ``ERROR`` events a handler raised (their payload names it)."""
    count = 0
    for seq in errors["seq"]:
        detail = _decoded(payloads.get(int(seq)))
        if isinstance(detail, dict) and "handler" in detail:
            count += 1
    return count


def unhandled_warning(name: str, handlers: Collection[str], events: EventArray) -> str | None:
    """A warning when a strategy has market-data handlers and the run held no event any of
    them receives (the SMA plugin's ``on_bar`` on a quote file), else None."""
    from admf.strategy import HANDLER_KINDS

    def kinds_of(handler: str) -> set[Kind]:
        return {Kind[name] for name in HANDLER_KINDS[handler]}

    mine = sorted(h for h in handlers if h in MARKET_HANDLERS)
    wanted = set().union(*(kinds_of(h) for h in mine))
    if not wanted:
        return None
    # The usual answer (a handled kind among the first events) without a pass over them all.
    if wanted & set(events["kind"][:FIRST_EVENTS].tolist()):
        return None
    # Kinds by count (no sort of a long run's kinds); values no Kind names are left out.
    counts = kind_counts(events)
    present = {k for k in Kind if counts[k]}
    if wanted & present:
        return None
    every_market = set().union(*(kinds_of(h) for h in MARKET_HANDLERS))
    market = sorted(present & every_market, key=int)
    has = ", ".join(k.name for k in market) or "no market data"
    return (
        f"{name} received no event it handles: it has {', '.join(mine)}, the data has {has} "
        "(no orders could follow from the market)"
    )


def kind_counts(events: EventArray) -> npt.NDArray[np.intp]:
    """How many events of each kind code (indexed by the code), in one pass over the kinds."""
    counts: npt.NDArray[np.intp] = np.bincount(events["kind"], minlength=max(Kind) + 1)
    return counts


def marked_events(
    events: EventArray, counts: npt.NDArray[np.intp] | npt.NDArray[np.uint64] | None = None
) -> tuple[EventArray, str | None]:
    """The events with what the equity curve is marked at: as they are when they hold two
    market marks or more, else with a ``TRADE`` mark at each fill's price right after the
    fill (book deltas without trades). The second item says so (None: the market's prices).
    ``counts``: the events' ``kind_counts``, when the caller has them."""
    from admf.analysis import MARK_KINDS

    counts = kind_counts(events) if counts is None else counts
    marks = int(sum(counts[k] for k in MARK_KINDS))
    if marks >= 2 or counts[Kind.FILL] < 2:
        return events, None
    at_fills = events[events["kind"] == Kind.FILL]
    at_fills["kind"] = Kind.TRADE
    merged = np.concatenate([events, at_fills])
    out: EventArray = merged[np.argsort(merged["seq"], kind="stable")]
    return out, MARKED_AT_FILLS


class Statistics(NamedTuple):
    """The statistics of a run's events, or why there are none, and what the equity curve
    is marked at when it is not the market's prices."""

    summary: Summary | None
    missing: str | None
    marked_at: str | None


def statistics_of(events: EventArray, initial_cash: int, analysis: Analysis) -> Statistics:
    """The statistics of a run's events (see ``Statistics``), from their ``analysis`` (one
    fold; a second only for a curve marked at the fills)."""
    from admf.analysis import analyze, statistics_inputs

    marked, marked_at = marked_events(events, analysis.tally.kinds)
    if marked_at is not None:
        analysis = analyze(marked, initial_cash, cash_and_exposure=False)
    try:
        return Statistics(summarize(*statistics_inputs(analysis)), None, marked_at)
    except AdmfError as exc:
        return Statistics(None, str(exc), None)


def summarize_run(
    events: EventArray,
    payloads: Mapping[int, Any],
    initial_cash: int,
    output_hash: str,
    *,
    stopped: str | None = None,
    warnings: tuple[str, ...] = (),
) -> RunSummary:
    """The summary of a run from its events and payloads (by seq; objects or the log's
    bytes)."""
    from admf.analysis import analyze

    # One fold gives the counts and what the statistics are made of.
    analysis = analyze(events, initial_cash, cash_and_exposure=False)
    counts = analysis.tally.kinds
    # Most runs have no errors: no pass over the kinds for them.
    errors = events[events["kind"] == Kind.ERROR] if counts[Kind.ERROR] else events[:0]
    statistics = statistics_of(events, initial_cash, analysis)
    return RunSummary(
        events=len(events),
        orders=int(counts[Kind.ORDER_SUBMIT]),
        fills=int(counts[Kind.FILL]),
        rejected=int(counts[Kind.ORDER_REJECTED]),
        risk_denied=analysis.tally.risk_denied,
        errors=len(errors),
        handler_errors=handler_error_count(errors, payloads),
        output_hash=output_hash,
        statistics=statistics.summary,
        no_statistics=statistics.missing,
        marked_at=statistics.marked_at,
        stopped=stopped,
        warnings=warnings,
    )
