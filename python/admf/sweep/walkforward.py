"""Walk-forward windows: train on one stretch of the data, test the best parameters on the
stretch after it, step forward, and stitch the test runs into one out-of-sample curve.

``train=2y,test=6m[,step=6m]`` (units ``d``, ``w``, ``m`` months, ``y`` years; ``step``
defaults to ``test``). Windows are laid from the first timestamp of the data: window ``k``
trains on ``[start + k*step, + train)`` and tests on the ``test`` after it; the last window
is the one whose test stretch still has data (it may be cut short by the end of the data).
The last test stretch may hold less data than ``test`` (the data ends inside it). A bar
belongs to the window that holds its timestamp (its close, see ``admf.data.bars``).

Each window's data is written as files of the same format holding the rows of that window
(``SWEEP_DIR/data/w<k>-train/``, ``.../w<k>-test/``), read back and checked equal to the
events of the window before any trial uses them; every run of a window starts flat with the
initial cash (indicators warm up again at the start of each window).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from admf.errors import AdmfError

if TYPE_CHECKING:
    from admf.data.source import ReadOptions

_DURATION: Final[re.Pattern[str]] = re.compile(r"(\d+)([dwmy])")
_NS: Final[int] = 1_000_000_000


class WalkForwardError(AdmfError, ValueError):
    """A walk-forward specification or data that cannot be split into windows."""


@dataclass(frozen=True)
class Duration:
    count: int
    unit: str  # d, w, m, y

    def after(self, ts_ns: int, times: int = 1) -> int:
        """``ts_ns`` moved forward by ``times`` of this duration (calendar months and years:
        the same day of the month, or the month's last day)."""
        n = self.count * times
        when = datetime.fromtimestamp(ts_ns // _NS, UTC)
        rest = ts_ns % _NS
        if self.unit in ("d", "w"):
            when += timedelta(days=n * (7 if self.unit == "w" else 1))
        else:
            months = n * (12 if self.unit == "y" else 1) + when.month - 1
            year, month = when.year + months // 12, months % 12 + 1
            day = min(when.day, calendar.monthrange(year, month)[1])
            when = when.replace(year=year, month=month, day=day)
        return int(when.timestamp()) * _NS + rest

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def _duration(text: str, key: str) -> Duration:
    m = _DURATION.fullmatch(text.strip())
    if m is None or int(m.group(1)) == 0:
        raise WalkForwardError(
            f"--walk-forward {key}={text!r}: expected a positive count and a unit d, w, m or y "
            "(e.g. 2y, 6m)"
        )
    return Duration(int(m.group(1)), m.group(2))


@dataclass(frozen=True)
class WalkForwardSpec:
    train: Duration
    test: Duration
    step: Duration

    def __str__(self) -> str:
        return f"train={self.train},test={self.test},step={self.step}"


def parse_walk_forward(text: str) -> WalkForwardSpec:
    """``train=2y,test=6m[,step=6m]``."""
    values: dict[str, Duration] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("train", "test", "step"):
            raise WalkForwardError(
                f"--walk-forward takes train=DURATION,test=DURATION[,step=DURATION], got {text!r}"
            )
        values[key] = _duration(value, key)
    if "train" not in values or "test" not in values:
        raise WalkForwardError(f"--walk-forward needs train= and test=, got {text!r}")
    return WalkForwardSpec(values["train"], values["test"], values.get("step", values["test"]))


@dataclass(frozen=True)
class Window:
    """One walk-forward window: train on ``[train_start, train_end)``, test on
    ``[train_end, test_end)`` (ns, UTC; the data may end before ``test_end``)."""

    index: int
    train_start: int
    train_end: int
    test_end: int


def windows(first_ns: int, last_ns: int, spec: WalkForwardSpec) -> list[Window]:
    out: list[Window] = []
    k = 0
    while True:
        start = spec.step.after(first_ns, k)
        train_end = spec.train.after(start)
        if train_end > last_ns:
            break
        out.append(Window(k, start, train_end, spec.test.after(train_end)))
        k += 1
    if not out:
        raise WalkForwardError(
            f"the data ({_day(first_ns)} to {_day(last_ns)}) is too short for one window of {spec}"
        )
    return out


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns // _NS, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class MarketFile:
    """A data file read once by the driver: its events' timestamps, to cut windows."""

    path: Path
    ts: np.ndarray


def _reader(read: ReadOptions | None) -> dict[str, Any]:
    return read.market_kwargs() if read is not None else {}


def read_files(paths: list[str], read: ReadOptions | None = None) -> list[MarketFile]:
    from admf.data.bars import load_market_data

    files = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise AdmfError(f"no data file at {path}")
        if "_message_" in path.name or path.name.endswith((".dbn", ".dbn.zst")):
            raise WalkForwardError(
                f"{path}: walk-forward cuts bar, quote and trade files; not book data"
            )
        files.append(MarketFile(path, load_market_data(path, **_reader(read)).events["ts"].copy()))
    return files


def span(files: list[MarketFile]) -> tuple[int, int]:
    """The first and last timestamp over all files."""
    non_empty = [f.ts for f in files if len(f.ts)]
    if not non_empty:
        raise WalkForwardError("the data files hold no rows")
    return min(int(t[0]) for t in non_empty), max(int(t[-1]) for t in non_empty)


def cut(
    file: MarketFile, start_ns: int, end_ns: int, dest: Path, read: ReadOptions | None = None
) -> str:
    """Writes the rows of ``file`` stamped in ``[start_ns, end_ns)`` to ``dest/<name>`` in
    the file's own format, checks that they read back as those events, and returns the path.
    Existing cuts (a resumed sweep) are checked and kept."""
    from admf.data.bars import detect_format, load_market_data

    i, j = (int(x) for x in np.searchsorted(file.ts, [start_ns, end_ns], side="left"))
    out = dest / file.path.name
    if not out.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        with open(file.path, "rb") as f:
            parquet = f.read(4) == b"PAR1"
        if parquet:
            table = pq.read_table(file.path)
            pq.write_table(table.slice(i, j - i), tmp)
        else:
            lines = file.path.read_bytes().splitlines(keepends=True)
            # A file read with --columns has a header of its own; the known formats say.
            mapped = read is not None and read.columns is not None
            headerless = not mapped and detect_format(file.path).name == "nautilus-quote-ticks"
            head, rows = ([], lines) if headerless else (lines[:1], lines[1:])
            rows = [r for r in rows if r.strip()]
            if len(rows) != len(file.ts):
                raise WalkForwardError(f"{file.path}: rows do not map one to one to events")
            tmp.write_bytes(b"".join(head + rows[i:j]))
        tmp.replace(out)
    expected = file.ts[i:j]
    got = load_market_data(out, **_reader(read)).events["ts"] if j > i else np.zeros(0, np.int64)
    if not np.array_equal(got, expected):
        raise WalkForwardError(
            f"{file.path}: its rows are not in time order, so a window cannot be cut from it"
        )
    return str(out)


def stitch(curves: list[tuple[int, list[int], list[float]]], initial: float) -> pa.Table:
    """The out-of-sample curve: each test window's equity, scaled so that it starts where
    the previous window ended (returns compound across windows)."""
    ts: list[np.ndarray] = []
    eq: list[np.ndarray] = []
    win: list[np.ndarray] = []
    level = initial
    for window, t, e in curves:
        if not e:
            continue
        values = np.asarray(e, np.float64)
        scaled = values * (level / values[0]) if values[0] else values
        level = float(scaled[-1])
        ts.append(np.asarray(t, np.int64))
        eq.append(scaled)
        win.append(np.full(len(values), window, np.int32))
    if not ts:
        return pa.table(
            {
                "ts": pa.array([], pa.timestamp("ns", tz="UTC")),
                "equity": pa.array([], pa.float64()),
                "window": pa.array([], pa.int32()),
            }
        )
    return pa.table(
        {
            "ts": pa.array(np.concatenate(ts), pa.timestamp("ns", tz="UTC")),
            "equity": np.concatenate(eq),
            "window": np.concatenate(win),
        }
    )
