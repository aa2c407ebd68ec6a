"""SQL over event logs: DuckDB views over the sealed Parquet files plus the live tail.

``events`` has every row (the raw record columns, ``run``, ``kind_name``, ``side_name``,
``payload_data``, and any extra columns). The other views decode one family of kinds into the
names users ask for, prices and quantities as exact ``DECIMAL(29, 9)`` next to the raw
fixed-point ``BIGINT`` columns (suffix ``_fx``): ``bars``, ``quotes``, ``trades``, ``book``,
``orders``, ``fills``, ``signals``, ``risk``, ``errors``, ``custom``; ``runs`` has one row
per run (its manifest). Many runs are queried together: their sealed files are read with
``hive_partitioning`` (the ``run=<id>`` directory becomes the ``run`` column).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.parquet as pq

from admf.errors import AdmfError
from admf.events import Kind
from admf.log.manifest import MANIFEST_NAME
from admf.log.payload import LOG_SCHEMA

if TYPE_CHECKING:
    from admf.log.eventlog import EventLog


class QueryError(AdmfError):
    """DuckDB refused a query; the message is DuckDB's."""


VIEWS: Final[tuple[str, ...]] = (
    "events",
    "bars",
    "quotes",
    "trades",
    "book",
    "orders",
    "fills",
    "signals",
    "risk",
    "errors",
    "custom",
    "runs",
    "positions",
    "equity",
)

_KIND_NAMES: Final[str] = " ".join(f"WHEN {k.value} THEN '{k.name}'" for k in Kind)
_COMMON: Final[str] = "run, seq, ts, instrument"

_VIEW_SQL: Final[dict[str, str]] = {
    "events": f"""
        SELECT run, seq, ts, kind,
               CASE kind {_KIND_NAMES} ELSE 'KIND_' || kind::VARCHAR END AS kind_name,
               instrument, side, admf_side(side) AS side_name, flags,
               order_id, price, qty, aux, payload,
               * EXCLUDE (run, seq, ts, kind, instrument, side, flags, order_id, price, qty,
                          aux, payload)
        FROM _admf_rows""",
    "bars": f"""
        SELECT {_COMMON},
               admf_dec(aux) AS open, admf_dec(order_id) AS high, admf_dec(payload) AS low,
               admf_dec(price) AS close, admf_dec(qty) AS volume,
               aux AS open_fx, order_id AS high_fx, payload AS low_fx, price AS close_fx,
               qty AS volume_fx, flags
        FROM _admf_rows WHERE kind = {Kind.BAR.value}""",
    "quotes": f"""
        SELECT {_COMMON},
               admf_dec(price) AS bid, admf_dec(qty) AS bid_size,
               admf_dec(aux) AS ask, admf_dec(order_id) AS ask_size,
               price AS bid_fx, qty AS bid_size_fx, aux AS ask_fx, order_id AS ask_size_fx,
               flags
        FROM _admf_rows WHERE kind = {Kind.QUOTE.value}""",
    "trades": f"""
        SELECT {_COMMON}, admf_side(side) AS side,
               admf_dec(price) AS price, admf_dec(qty) AS size, order_id AS trade_id,
               price AS price_fx, qty AS size_fx, flags
        FROM _admf_rows WHERE kind = {Kind.TRADE.value}""",
    "book": f"""
        SELECT {_COMMON},
               CASE kind WHEN {Kind.BOOK_ADD.value} THEN 'add'
                         WHEN {Kind.BOOK_CANCEL.value} THEN 'cancel'
                         WHEN {Kind.BOOK_MODIFY.value} THEN 'modify'
                         WHEN {Kind.BOOK_EXECUTE.value} THEN 'execute'
                         ELSE 'clear' END AS action,
               admf_side(side) AS side, order_id, admf_dec(price) AS price,
               admf_dec(qty) AS qty, price AS price_fx, qty AS qty_fx,
               (flags & 2) <> 0 AS snapshot, flags
        FROM _admf_rows WHERE kind BETWEEN {Kind.BOOK_ADD.value} AND {Kind.BOOK_CLEAR.value}""",
    "orders": f"""
        SELECT {_COMMON},
               CASE kind WHEN {Kind.ORDER_SUBMIT.value} THEN 'submit'
                         WHEN {Kind.ORDER_CANCEL.value} THEN 'cancel'
                         WHEN {Kind.ORDER_MODIFY.value} THEN 'modify'
                         WHEN {Kind.ORDER_ACCEPTED.value} THEN 'accepted'
                         WHEN {Kind.ORDER_REJECTED.value} THEN 'rejected'
                         WHEN {Kind.ORDER_CANCELED.value} THEN 'canceled'
                         WHEN {Kind.ORDER_EXPIRED.value} THEN 'expired'
                         ELSE 'modified' END AS event,
               order_id, admf_side(side) AS side,
               CASE WHEN (flags & 8) <> 0 THEN 'market' ELSE 'limit' END AS order_type,
               CASE WHEN (flags & 16) <> 0 THEN 'ioc' WHEN (flags & 32) <> 0 THEN 'fok'
                    ELSE 'gtc' END AS time_in_force,
               (flags & 64) <> 0 AS post_only,
               admf_dec(price) AS price, admf_dec(qty) AS qty, aux AS reason,
               price AS price_fx, qty AS qty_fx, flags
        FROM _admf_rows
        WHERE kind BETWEEN {Kind.ORDER_SUBMIT.value} AND {Kind.ORDER_MODIFIED.value}""",
    "fills": f"""
        SELECT {_COMMON}, order_id, payload AS contra_order_id, admf_side(side) AS side,
               admf_dec(price) AS price, admf_dec(qty) AS qty, admf_dec(aux) AS fee,
               price AS price_fx, qty AS qty_fx, aux AS fee_fx,
               (flags & 128) <> 0 AS own, (flags & 256) <> 0 AS aggressor, flags
        FROM _admf_rows WHERE kind = {Kind.FILL.value}""",
    "signals": f"""
        SELECT {_COMMON}, admf_side(side) AS side, admf_dec(price) AS value, price AS value_fx,
               order_id, qty, aux, payload, payload_data,
               try(decode(payload_data)) AS payload_text, flags
        FROM _admf_rows WHERE kind = {Kind.SIGNAL.value}""",
    "risk": f"""
        SELECT {_COMMON}, order_id, admf_side(side) AS side, admf_dec(price) AS price,
               admf_dec(qty) AS qty, aux AS reason, price AS price_fx, qty AS qty_fx,
               payload_data, try(decode(payload_data)) AS payload_text, flags
        FROM _admf_rows WHERE kind = {Kind.RISK.value}""",
    "errors": f"""
        SELECT {_COMMON}, aux AS code, order_id, payload_data,
               try(decode(payload_data)) AS message, flags
        FROM _admf_rows WHERE kind = {Kind.ERROR.value}""",
    "custom": f"""
        SELECT {_COMMON}, admf_dec(price) AS value, price AS value_fx, order_id, qty, aux,
               payload, payload_data, try(decode(payload_data)) AS payload_text, flags
        FROM _admf_rows WHERE kind = {Kind.CUSTOM.value}""",
    "runs": "SELECT * FROM _admf_runs",
}


# The portfolio's fold of fills (rust/src/orders/portfolio.rs, admf.analysis) as views:
# `positions` has the position of the instrument and the account's cash after every fill;
# `equity` the equity at every mark (bar close, trade, two-sided quote's mid, book execution):
# the cash after every fill before the next mark plus each position at its instrument's last
# price (its last fill's before any). Notionals are rounded half away from zero as the fold
# does, so these columns equal `BacktestResult.analysis` to the unit.
def _notional(price: str, qty: str) -> str:
    product = f"(CAST({price} AS HUGEINT) * ({qty}))"
    return (
        f"CAST(CASE WHEN {product} >= 0 THEN ({product} + 500000000) // 1000000000 "
        f"ELSE -((-{product} + 500000000) // 1000000000) END AS BIGINT)"
    )


_FOLD: Final[str] = f"""
    WITH cash0 AS (
        SELECT run, CAST(round(TRY_CAST(json_extract(config, '$.settings.initial_cash')
                                        AS DOUBLE) * 1e9) AS BIGINT) AS cash0
        FROM _admf_runs),
    fill AS (
        SELECT run, seq, ts, instrument, price, CASE side WHEN 1 THEN qty ELSE -qty END AS signed,
               CASE side WHEN 1 THEN -1 ELSE 1 END * {_notional("price", "qty")} - aux AS flow
        FROM _admf_rows WHERE kind = {Kind.FILL.value}),
    step AS (
        SELECT run, seq, ts, instrument, price,
               CAST(SUM(signed) OVER (PARTITION BY run, instrument ORDER BY seq) AS BIGINT)
                   AS qty_fx,
               CAST(COALESCE(cash0, 0) + SUM(flow) OVER (PARTITION BY run ORDER BY seq)
                    AS BIGINT) AS cash_fx
        FROM fill LEFT JOIN cash0 USING (run))"""

_VIEW_SQL["positions"] = f"""{_FOLD}
    SELECT run, seq, ts, instrument, admf_dec(qty_fx) AS qty, admf_dec(cash_fx) AS cash,
           qty_fx, cash_fx
    FROM step"""

_VIEW_SQL["equity"] = f"""{_FOLD},
    marks AS (
        SELECT run, seq, ts, instrument,
               CASE WHEN kind <> {Kind.QUOTE.value} THEN price
                    WHEN price > 0 AND aux > 0
                    THEN price // 2 + aux // 2 + (price % 2 + aux % 2) // 2 END AS price_fx,
               COALESCE(LEAD(seq) OVER (PARTITION BY run ORDER BY seq),
                        18446744073709551615::UBIGINT) AS upto
        FROM _admf_rows
        WHERE kind IN ({Kind.BAR.value}, {Kind.TRADE.value}, {Kind.QUOTE.value},
                       {Kind.BOOK_EXECUTE.value})),
    priced AS (SELECT run, seq, instrument, price_fx FROM marks WHERE price_fx IS NOT NULL),
    grid AS (
        SELECT m.run, m.seq, m.upto, i.instrument
        FROM marks m JOIN (SELECT DISTINCT run, instrument FROM fill) i USING (run)),
    held AS (
        SELECT g.run, g.seq, s.qty_fx, COALESCE(p.price_fx, s.price) AS price_fx
        FROM grid g
        ASOF JOIN step s
            ON g.run = s.run AND g.instrument = s.instrument AND g.upto > s.seq
        ASOF LEFT JOIN priced p
            ON g.run = p.run AND g.instrument = p.instrument AND g.seq >= p.seq),
    valued AS (
        SELECT run, seq, CAST(SUM({_notional("price_fx", "qty_fx")}) AS BIGINT) AS value_fx,
               CAST(SUM({_notional("price_fx", "abs(qty_fx)")}) AS BIGINT) AS exposure_fx
        FROM held GROUP BY run, seq),
    cashed AS (
        SELECT m.run, m.seq, m.ts, COALESCE(s.cash_fx, c.cash0, 0) AS cash_fx
        FROM marks m
        LEFT JOIN cash0 c USING (run)
        ASOF LEFT JOIN step s ON m.run = s.run AND m.upto > s.seq)
    SELECT run, seq, ts, admf_dec(equity_fx) AS equity, admf_dec(cash_fx) AS cash,
           admf_dec(exposure_fx) AS exposure, equity_fx, cash_fx, exposure_fx
    FROM (
        SELECT c.run, c.seq, c.ts, c.cash_fx + COALESCE(v.value_fx, 0) AS equity_fx, c.cash_fx,
               COALESCE(v.exposure_fx, 0) AS exposure_fx
        FROM cashed c LEFT JOIN valued v USING (run, seq))
    ORDER BY run, seq"""

_MACROS: Final[tuple[str, ...]] = (
    "CREATE OR REPLACE TEMP MACRO admf_dec(x) AS CAST(x AS DECIMAL(19, 0)) * 0.000000001",
    "CREATE OR REPLACE TEMP MACRO admf_side(s) AS "
    "CASE s WHEN 1 THEN 'buy' WHEN 2 THEN 'sell' ELSE NULL END",
)

_ROW_SCHEMA: Final[pa.Schema] = pa.schema([*LOG_SCHEMA, pa.field("run", pa.string())])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _runs_table(logs: Sequence[EventLog]) -> pa.Table:
    rows = []
    for log in logs:
        m = log.manifest
        rows.append(
            {
                "run": m.run_id,
                "created_at": datetime.fromisoformat(m.created_at),
                "engine_version": m.engine_version,
                "config": json.dumps(m.config, sort_keys=True),
                "config_hash": m.config_hash,
                "seed": m.seed,
                "libraries": json.dumps(m.libraries, sort_keys=True),
                "events": len(log),
                "sealed_files": len(log.sealed_files),
                "path": str(log.path),
            }
        )
    schema = pa.schema(
        [
            ("run", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("engine_version", pa.string()),
            ("config", pa.string()),
            ("config_hash", pa.string()),
            ("seed", pa.int64()),
            ("libraries", pa.string()),
            ("events", pa.int64()),
            ("sealed_files", pa.int64()),
            ("path", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


class LogQuery:
    """A DuckDB connection with the admf views over one or more logs. The views follow the
    logs: before each query, newly sealed files and new tail rows are picked up."""

    def __init__(self, logs: Sequence[EventLog]) -> None:
        import duckdb  # imported on first use: writing a log does not need it

        self._duckdb_error: type[Exception] = duckdb.Error
        self._lock = threading.Lock()  # one DuckDB connection: one query at a time
        self._logs = list(logs)
        self._con = duckdb.connect(":memory:")
        for macro in _MACROS:
            self._con.execute(macro)
        self._files: tuple[str, ...] | None = None
        self._versions: tuple[int, ...] | None = None
        self._signatures: dict[str, tuple[tuple[str, str], ...]] = {}

    def _refresh(self) -> None:
        from admf.log.eventlog import unify

        files: list[str] = []
        tails: list[pa.Table] = []
        versions: list[int] = []
        for log in self._logs:
            sealed, tail, version = log._snapshot()
            files += [str(s.path) for s in sealed]
            versions.append(version)
            if tail:
                table = unify(tail)
                tails.append(
                    table.append_column("run", pa.array([log.run_id] * table.num_rows, pa.string()))
                )
        if tuple(versions) == self._versions and tuple(files) == self._files:
            return
        tail_table = unify(tails) if tails else _ROW_SCHEMA.empty_table()
        self._con.register("_admf_tail", tail_table)
        self._con.register("_admf_runs", _runs_table(self._logs))
        parts = []
        # Files with the same columns are read together (DuckDB's fastest path); only
        # groups of different schemas (the schema grew) are combined by column name.
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for f in files:
            groups.setdefault(self._signature(f), []).append(f)
        for group in groups.values():
            listing = ", ".join(_literal(f) for f in group)
            parts.append(
                f"SELECT * FROM read_parquet([{listing}], hive_partitioning = true, "
                "hive_types = {'run': VARCHAR})"
            )
        if tails or not files:
            parts.append("SELECT * FROM _admf_tail")
        self._con.execute(
            "CREATE OR REPLACE TEMP VIEW _admf_rows AS " + " UNION ALL BY NAME ".join(parts)
        )
        for name, body in _VIEW_SQL.items():  # rebound: the columns may have grown
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {body}")
        self._files = tuple(files)
        self._versions = tuple(versions)

    def _signature(self, path: str) -> tuple[tuple[str, str], ...]:
        """The columns of a sealed file (files are immutable: read once)."""
        known = self._signatures.get(path)
        if known is None:
            schema = pq.read_schema(path)
            known = tuple((f.name, str(f.type)) for f in schema)
            self._signatures[path] = known
        return known

    def sql(self, query: str) -> pa.Table:
        """Runs ``query``; returns the result as an Arrow table (empty for a statement that
        returns no rows)."""
        with self._lock:
            self._refresh()
            try:
                relation = self._con.sql(query)
                if relation is None:
                    return pa.table({})
                table: pa.Table = relation.to_arrow_table()
            except self._duckdb_error as exc:
                raise QueryError(str(exc)) from None
        return table

    def close(self) -> None:
        with self._lock:
            self._con.close()


def open_logs(path: str | Path, *, verify: bool = True) -> list[EventLog]:
    """Opens for reading the log at ``path`` (a ``run=<id>`` directory) or every run under it
    (a directory of ``run=<id>`` directories)."""
    from admf.log.eventlog import EventLog

    root = Path(path)
    if (root / MANIFEST_NAME).is_file():
        return [EventLog.open(root, read_only=True, verify=verify)]
    if not root.is_dir():
        raise AdmfError(f"no event log at {root}: not a directory")
    runs = sorted(p for p in root.glob("run=*") if (p / MANIFEST_NAME).is_file())
    if not runs:
        raise AdmfError(
            f"no event log at {root}: expected a run directory (with {MANIFEST_NAME}) or a "
            "directory of run=<id> directories"
        )
    return [EventLog.open(run, read_only=True, verify=verify) for run in runs]


def query(path: str | Path, sql: str) -> pa.Table:
    """Runs ``sql`` over the log(s) at ``path`` (see `open_logs`)."""
    logs = open_logs(path)
    engine = LogQuery(logs)
    try:
        return engine.sql(sql)
    finally:
        engine.close()
