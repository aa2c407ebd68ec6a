"""The live loop in under a minute (``make demo``; ``python -m admf.live.demo OUT``).

1. ``admf exchange serve`` on the bundled ORCL bars (2005-2014), paused, with a generated
   key pair written to a private file;
2. the SMA plugin trading on it live through the ``alpaca`` adapter (market data and orders),
   the exchange playing ten years of daily bars in a few seconds;
3. the session's log replayed exactly, then replayed as a backtest, with the difference
   between the live session and the simulation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

from admf.backtest import BacktestSettings
from admf.live.alpaca import AlpacaData
from admf.live.session import LiveSession, LiveSpec, run_session

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "orcl-2005-2014.csv"
PLAY_SECONDS = 6.0
BARS = 2_516
"""Daily bars in the sample (played in ``PLAY_SECONDS``)."""


def _start_exchange(out: Path) -> tuple[subprocess.Popen[str], str, Path]:
    accounts = out / "exchange-accounts.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "admf",
            "exchange",
            "serve",
            "--data",
            f"ORCL={SAMPLE}",
            "--paused",
            "--write-accounts",
            str(accounts),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("admf exchange:"):
            return proc, line.split(" on ", 1)[1].strip(), accounts
    raise RuntimeError("admf exchange serve did not start")


def _adapter_config(out: Path, url: str, accounts: Path) -> Path:
    """The adapter's settings and credentials in a private file (never on a command line)."""
    account = tomllib.loads(accounts.read_text())["accounts"][0]
    config = out / "alpaca.toml"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            "[alpaca]\n"
            f'key_id = "{account["key_id"]}"\n'
            f'secret_key = "{account["secret_key"]}"\n'
            f'trading_url = "{url}"\n'
            f'data_url = "{url.replace("http", "ws", 1)}/v2/iex"\n'
        )
    return config


def _play_when_subscribed(session: LiveSession, url: str) -> None:
    data = session.data
    assert isinstance(data, AlpacaData)
    data.subscribed.wait(30)
    speed = BARS * 86_400 / PLAY_SECONDS
    request = urllib.request.Request(
        f"{url}/admin/replay",
        data=json.dumps({"action": "play", "speed": speed}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def main(out: Path) -> int:
    from admf.live.record import print_live_diff
    from admf.replay import replay, replay_as_backtest

    out.mkdir(parents=True, exist_ok=True)
    exchange, url, accounts = _start_exchange(out)
    try:
        print(f"1. admf exchange serve: ORCL daily bars 2005-2014 on {url}")
        config = _adapter_config(out, url, accounts)
        spec = LiveSpec(
            strategy="sma-cross",
            symbols=("ORCL",),
            data_adapter="alpaca",
            exec_adapter="alpaca",
            params={"fast": 10, "slow": 30, "fraction": 0.9},
            # Alpaca sizes value orders in fractional shares.
            settings=BacktestSettings(lot_size=1e-9),
            options={"config": str(config)},
            duration=PLAY_SECONDS + 2.0,
        )
        session = LiveSession.create(spec, out / "logs")
        threading.Thread(target=_play_when_subscribed, args=(session, url), daemon=True).start()
        print(f"2. admf live: sma-cross through the alpaca adapter, log {session.run_dir}")
        started = time.monotonic()
        ending = run_session(session)
        kernel = session.node.kernel
        print(
            f"   ended {ending.name.lower()} after {time.monotonic() - started:.1f} s "
            f"({session.reason}): {kernel.core.next_seq - 1:,} events, "
            f"{session.node.portfolio.fills} fills"
        )
    finally:
        exchange.terminate()
        exchange.wait(timeout=10)
    report = replay(session.run_dir)
    verdict = "identical" if report.identical else f"DIFFERENT: {report.first_difference}"
    print(f"3. admf replay {session.run_dir.name}: {report.events:,} events, {verdict}")
    print(f"   output hash {report.replayed_hash}")
    result = replay_as_backtest(session.run_dir)
    print("4. admf replay --as-backtest:")
    print_live_diff(session.run_dir, result)
    return 0 if report.identical else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output/live")))
