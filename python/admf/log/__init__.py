"""The event log: append-only, crash-safe Arrow segments, sealed into Parquet, queried with
DuckDB SQL. See `EventLog`."""

from admf.log.eventlog import EventLog, FsyncPolicy, LogLockedError, SeqRange
from admf.log.payload import LOG_SCHEMA, PAYLOAD_COLUMN
from admf.log.segment import LogCorruptionError, TornTail
from admf.log.sql import VIEWS, LogQuery, QueryError, open_logs, query

__all__ = [
    "LOG_SCHEMA",
    "PAYLOAD_COLUMN",
    "VIEWS",
    "EventLog",
    "FsyncPolicy",
    "LogCorruptionError",
    "LogLockedError",
    "LogQuery",
    "QueryError",
    "SeqRange",
    "TornTail",
    "open_logs",
    "query",
]
