"""Crash safety: a child process appends (sync, async, sequenced, with seals and segment
rollovers) and reports every acknowledged seq; the parent kills it with SIGKILL at a random
moment, reopens the log and checks that every acknowledged event is there, the seqs are
contiguous, the content is right, and appends resume."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from admf import EventLog

CHILD = r"""
import random, sys, time
from admf.log import LogOptions
from pathlib import Path
import numpy as np
from admf import EventLog, empty_events

root, run_id, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])

def content(first, n, sequenced):
    ev = empty_events(n)
    seq = np.arange(first, first + n, dtype=np.int64)
    if sequenced:
        ev["seq"] = seq.astype(np.uint64)
    ev["ts"] = seq * 1000
    ev["kind"] = 3
    ev["price"] = seq * 3
    ev["qty"] = seq % 97
    ev["instrument"] = (seq % 5).astype(np.uint32)
    return ev

options = LogOptions(group_events=500, group_ms=2, segment_events=3000)
log = EventLog.open(Path(root) / f"run={run_id}", options=options)
rng = random.Random(seed)
print("ready", log.next_seq, flush=True)
while True:
    n = rng.choice([1, 3, 50, 400, 1200])
    start = log.next_seq
    what = rng.random()
    if what < 0.4:
        futures = []
        for k in range(rng.randint(1, 6)):
            futures.append(log.append_async(content(start, n, False)))
            start += n
        for f in futures:
            print(f.result().last, flush=True)
    elif what < 0.6:
        # sequenced, overlapping what is already in the log: stored once
        back = min(start - 1, rng.randint(0, 20))
        print(log.append(content(start - back, n + back, True)).last, flush=True)
    else:
        print(log.append(content(start, n, False)).last, flush=True)
    if rng.random() < 0.05:
        log.seal()
    if rng.random() < 0.3:
        time.sleep(0.001)
"""


def expected_content(first: int, stop: int) -> dict[str, np.ndarray]:
    seq = np.arange(first, stop, dtype=np.int64)
    return {
        "ts": seq * 1000,
        "price": seq * 3,
        "qty": seq % 97,
        "instrument": (seq % 5).astype(np.uint32),
    }


def run_child_and_kill(root: Path, run_id: str, seed: int, rng: random.Random) -> int:
    """Starts the child, kills it with SIGKILL at a random moment after it is ready; returns
    the highest seq it reported as acknowledged (0 if none)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), run_id, str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    assert ready.startswith("ready"), proc.stderr.read() if proc.stderr else ready
    # The first append of a process pays one-time imports (pyarrow loads its pandas shim
    # when pandas is installed: about 0.3 s), longer than the kill window: wait for it, so
    # every kill lands among appends in flight.
    first = proc.stdout.readline()
    assert first.strip().isdigit(), proc.stderr.read() if proc.stderr else first
    acked: list[int] = [0, int(first)]

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(int(line))

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(rng.uniform(0.0, 0.25))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    thread.join(timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, err
    return max(acked)


def crash_many_times(root: Path, kills: int, seed: int) -> None:
    EventLog.create(root, "crash").close()
    run_dir = root / "run=crash"
    rng = random.Random(seed)
    checked = 0  # events already verified in earlier rounds
    torn = 0
    for k in range(kills):
        acked = run_child_and_kill(root, "crash", seed * 1000 + k, rng)
        with EventLog.open(run_dir) as log:
            torn += bool(log.recovery)
            n = len(log)
            assert n >= acked, f"kill {k}: acknowledged up to seq {acked}, recovered {n}"
            assert n >= checked
            table = log.read(max(1, checked - 100))
            seqs = table.column("seq").to_numpy()
            first = max(1, checked - 100)
            assert np.array_equal(seqs, np.arange(first, n + 1, dtype=np.uint64))
            want = expected_content(first, n + 1)
            for name, values in want.items():
                column = table.column(name)
                got = column.cast("int64") if name == "ts" else column
                assert np.array_equal(got.to_numpy(), values), f"kill {k}: wrong {name}"
            checked = n
    # appends resume after the last kill, and the whole log reads back in order
    with EventLog.open(run_dir) as log:
        n = len(log)
        assert log.append(log.read(n, n + 1)).last == n  # a duplicate: stored once
        log.seal()
        seqs = log.read().column("seq").to_numpy()
        assert np.array_equal(seqs, np.arange(1, n + 1, dtype=np.uint64))
        assert log.sql("SELECT count(*) AS n, max(seq) AS hi FROM events").to_pylist() == [
            {"n": n, "hi": n}
        ]


def test_sigkill_never_loses_an_acknowledged_event(tmp_path: Path) -> None:
    crash_many_times(tmp_path, kills=15, seed=1)


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_event_100_times(tmp_path: Path) -> None:
    crash_many_times(tmp_path, kills=100, seed=2)


KILLED = r"""
import sys
from admf.backtest import backtest
backtest("tests.integration.log_slow_strategy:SlowStop", [sys.argv[1]], {"qty": 3},
         log_dir=sys.argv[2], run_id=sys.argv[3])
print("done", flush=True)
"""
ROOT = Path(__file__).resolve().parents[2]
BARS = ROOT / "tests" / "data" / "orcl-1995-daily-100.csv"


def _backtest_process(root: Path, run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", KILLED, str(BARS), str(root), run_id],
        env=env,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def test_backtests_killed_mid_run_never_replay_as_identical(tmp_path: Path) -> None:
    """A run records that it finished: a killed one replays as unfinished (comparing what it
    reached), never as "identical"; `admf verify` says it did not finish."""
    from admf.cli import main
    from admf.replay import replay

    rng = random.Random(5)
    done = _backtest_process(tmp_path, "complete")
    assert done.wait(timeout=60) == 0
    assert replay(tmp_path / "run=complete").identical
    assert main(["verify", str(tmp_path / "run=complete")]) == 0
    killed = 0
    for trial in range(3):
        proc = _backtest_process(tmp_path, f"k{trial}")
        run = tmp_path / f"run=k{trial}"
        deadline = time.monotonic() + 30
        while not list((run / "tail").glob("seg-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.5))
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        report = replay(run)
        assert report.events > 0  # the run had reached the log
        assert not report.identical, trial
        assert report.first_difference is not None
        assert "did not finish" in report.first_difference
        assert main(["verify", str(run)]) == 3
        killed += 1
    assert killed == 3
