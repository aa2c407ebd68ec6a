"""Historical bars (``GET /v2/stocks/bars``) from the loaded bar data.

Only bars that closed at or before the exchange's clock are history: the exchange does not
show the future it is about to replay. Bars come in their own timeframe (a file of daily
bars answers ``1Day``; another timeframe is a 422 naming the one available), ordered by
symbol then time (``sort=desc`` reverses time), ``limit`` bars at most per page, at most
the exchange's page size; ``next_page_token`` is an opaque offset.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from admf.events import SCALE, Kind
from admf.exchange.engine import ExchangeCore
from admf.exchange.wire import parse_time, rfc3339, unprocessable

_TIMEFRAME_NS = {
    "Min": 60 * 10**9,
    "Hour": 3600 * 10**9,
    "Day": 86_400 * 10**9,
    "Week": 7 * 86_400 * 10**9,
}
_ALIASES = {"T": "Min", "H": "Hour", "D": "Day", "W": "Week"}


def _num(value: int) -> float | int:
    return value // SCALE if value % SCALE == 0 else value / SCALE


def timeframe_ns(text: str) -> int:
    digits = "".join(ch for ch in text if ch.isdigit())
    unit = text[len(digits) :]
    unit = _ALIASES.get(unit, unit)
    if not digits or unit not in _TIMEFRAME_NS or int(digits) <= 0:
        raise unprocessable(f"invalid timeframe {text!r}; e.g. 1Min, 5Min, 1Hour, 1Day")
    return int(digits) * _TIMEFRAME_NS[unit]


def timeframe_name(ns: int) -> str:
    for unit in ("Week", "Day", "Hour", "Min"):
        size = _TIMEFRAME_NS[unit]
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"admf:{offset}".encode()).decode()


def _offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "admf":
            raise ValueError
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise unprocessable("page_token is invalid") from None


def bars_page(core: ExchangeCore, q: Mapping[str, str], page_size: int) -> dict[str, Any]:
    symbols_text = q.get("symbols")
    if not symbols_text:
        raise unprocessable("symbols is required")
    timeframe = q.get("timeframe")
    if not timeframe:
        raise unprocessable("timeframe is required")
    frame = timeframe_ns(timeframe)
    start = parse_time(q["start"], "start") if q.get("start") else None
    end = parse_time(q["end"], "end") if q.get("end") else None
    try:
        limit = int(q.get("limit") or page_size)
    except ValueError:
        raise unprocessable(f"limit must be an integer, got {q.get('limit')!r}") from None
    if limit < 1:
        raise unprocessable(f"limit must be >= 1, got {limit}")
    limit = min(limit, page_size)
    sort = q.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise unprocessable(f"sort must be asc or desc, got {sort!r}")
    offset = _offset(q["page_token"]) if q.get("page_token") else 0
    rows: list[tuple[str, dict[str, Any]]] = []
    for symbol in sorted({s.strip().upper() for s in symbols_text.split(",") if s.strip()}):
        inst = core.by_symbol.get(symbol)
        if inst is None or inst.kind != Kind.BAR:
            continue
        if inst.interval_ns != frame:
            raise unprocessable(
                f"{symbol} has {timeframe_name(inst.interval_ns)} bars; timeframe "
                f"{timeframe} is not available"
            )
        ev = inst.events
        opens = ev["ts"] - inst.interval_ns
        keep = ev["ts"] <= core.now if core.position else ev["ts"] < ev["ts"][0]
        if start is not None:
            keep &= opens >= start
        if end is not None:
            keep &= opens <= end
        picked = [i for i in range(len(ev)) if keep[i]]
        if sort == "desc":
            picked.reverse()
        for i in picked:
            e = ev[i]
            rows.append(
                (
                    symbol,
                    {
                        "t": rfc3339(int(opens[i])),
                        "o": _num(int(e["aux"])),
                        "h": _num(int(e["order_id"])),
                        "l": _num(int(e["payload"])),
                        "c": _num(int(e["price"])),
                        "v": _num(int(e["qty"])),
                        "n": None,
                        "vw": None,
                    },
                )
            )
    page = rows[offset : offset + limit]
    bars: dict[str, list[dict[str, Any]]] = {}
    for symbol, bar in page:
        bars.setdefault(symbol, []).append(bar)
    more = offset + limit < len(rows)
    return {
        "bars": bars,
        "next_page_token": _token(offset + limit) if more else None,
        "currency": "USD",
    }
