"""Crashes: a session trading through the ``alpaca`` adapter is killed with SIGKILL at random
moments and resumed from its log, again and again; afterwards the venue holds no order twice,
every order's fills (each leg's, for a modified order) are counted once, the positions agree
and the log replays exactly. The default test's strategy modifies orders as well as flipping
a position (`FlipModify`), so kills land mid-replace too; the slow one's only flips.

The default test forks the session from the test process (admf already imported, so the
kills land in the session rather than in interpreter start-up); the slow variant starts each
session as ``python -m admf live`` and kills it after it opened its log.
``ADMF_KILL_TRIALS`` sets the number of kills of the default test (20), ``ADMF_SLOW_KILL_TRIALS``
those of the slow one (4 by default, since slow tests run in ``make test`` too; raise it for
a soak)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from admf.events import Flag, Kind
from admf.live.codes import LiveCode
from admf.replay import read_recording, replay

from .conftest import KEY, SECRET, Exchange, alpaca_options, venue_agrees

ROOT = Path(__file__).resolve().parents[2]


def _session(argv: list[str]) -> None:
    """A forked child: runs one ``admf live`` command (until it is killed)."""
    from admf.cli import main

    os._exit(main(argv))


def _kill_and_resume(
    tmp_path: Path, exchange: Exchange, kills: int, seed: int, *, fork: bool, strategy: str
) -> None:
    options = alpaca_options(exchange)
    env = dict(os.environ, APCA_API_KEY_ID=KEY, APCA_API_SECRET_KEY=SECRET)
    start = [
        sys.executable, "-m", "admf", "live",
        "--strategy", f"tests.live.strategies:{strategy}", "--param", "every=2",
        "--data-adapter", "alpaca", "--exec-adapter", "alpaca", "--symbol", "ORCL",
        "--log", str(tmp_path), "--duration", "1.5", "--stop-deadline", "3",
    ]  # fmt: skip
    for name in ("trading_url", "data_url", "backoff_min", "timeout", "inflight_check"):
        start += ["--adapter-option", f"{name}={options[name]}"]
    rng = random.Random(seed)
    run: Path | None = None
    played = False
    for _ in range(kills):
        command = (
            start if run is None else [sys.executable, "-m", "admf", "live", "--resume", str(run)]
        )
        if fork:
            child = multiprocessing.get_context("fork").Process(
                target=_session, args=(command[3:],)
            )
            child.start()
            deadline = time.monotonic() + 20
            while run is None and not list(tmp_path.glob("run=*/manifest.json")):
                assert time.monotonic() < deadline, "the first session created no log"
                time.sleep(0.01)
            if not played:
                exchange.play(25.0)
                played = True
            time.sleep(rng.uniform(0.02, 1.0))
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
            child.join(timeout=10)
        else:
            _kill_subprocess(command, env, rng)
            if not played:
                exchange.play(25.0)
                played = True
        if run is None:
            (run,) = tmp_path.glob("run=*")
    assert run is not None
    final = subprocess.run(
        [sys.executable, "-m", "admf", "live", "--resume", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert final.returncode == 0, final.stderr
    events = read_recording(run).events
    live = (events["kind"] == Kind.CUSTOM) & ((events["flags"] & Flag.INPUT) != 0)
    assert (live & (events["order_id"] == LiveCode.RESUMED)).sum() >= 1
    venue = venue_agrees(events, exchange)  # no order twice; each leg's fills counted once
    assert venue, "the strategy traded"
    if strategy == "FlipModify":
        assert (events["kind"] == Kind.ORDER_MODIFY).sum() >= 1
    assert replay(run).identical


def _kill_subprocess(command: list[str], env: dict[str, str], rng: random.Random) -> None:
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        # The session prints where its log is once it has opened it.
        assert proc.stdout.readline().startswith("log: ")
        time.sleep(rng.uniform(0.05, 0.8))
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_sigkill_and_resume(
    tmp_path: Path, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    kills = int(os.environ.get("ADMF_KILL_TRIALS", "20"))
    _kill_and_resume(tmp_path, exchange, kills, seed=kills, fork=True, strategy="FlipModify")


@pytest.mark.slow
def test_sigkill_and_resume_many(tmp_path: Path, exchange: Exchange) -> None:
    kills = int(os.environ.get("ADMF_SLOW_KILL_TRIALS", "4"))
    _kill_and_resume(tmp_path, exchange, kills, seed=kills + 1, fork=False, strategy="Flip")
