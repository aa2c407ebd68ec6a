"""The event log: append-only, crash-safe Arrow segments, sealed into Parquet, queried with
DuckDB SQL, checked by `verify_log`. See `EventLog`."""

from admf.log.commit import LogWriteError, SeqRange
from admf.log.eventlog import EventLog, RunFinishedError
from admf.log.lock import LogLockedError
from admf.log.manifest import ManifestError
from admf.log.options import FsyncPolicy, LogOptions, LogOptionsError
from admf.log.payload import LOG_SCHEMA, PAYLOAD_COLUMN
from admf.log.segment import LogCorruptionError, TornTail
from admf.log.sql import VIEWS, LogQuery, QueryError, QueryRefusedError, open_logs, query
from admf.log.verify import LogVerificationError, VerifyReport, verify_log

__all__ = [
    "LOG_SCHEMA",
    "PAYLOAD_COLUMN",
    "VIEWS",
    "EventLog",
    "FsyncPolicy",
    "LogCorruptionError",
    "LogLockedError",
    "LogOptions",
    "LogOptionsError",
    "LogQuery",
    "LogVerificationError",
    "LogWriteError",
    "ManifestError",
    "QueryError",
    "QueryRefusedError",
    "RunFinishedError",
    "SeqRange",
    "TornTail",
    "VerifyReport",
    "open_logs",
    "query",
    "verify_log",
]
