"""``admf exchange serve`` from the shell: it serves, stops on SIGTERM, refuses bad
settings with one line and exit 2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from admf.cli import main
from tests.exchange.conftest import ORCL

ADMF = [sys.executable, "-m", "admf"]


def test_serve_answers_and_stops(tmp_path: Path) -> None:
    accounts = tmp_path / "keys.toml"
    proc = subprocess.Popen(
        [
            *ADMF,
            "exchange",
            "serve",
            "--data",
            ORCL,
            "--paused",
            "--write-accounts",
            str(accounts),
            "--log",
            str(tmp_path / "log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("API key id:     PK")
        line = proc.stdout.readline()
        assert line.startswith("admf exchange: ORCL on http://127.0.0.1:")
        url = line.split(" on ")[1].strip()
        assert oct(accounts.stat().st_mode & 0o777) == "0o600"
        import tomllib

        (entry,) = tomllib.loads(accounts.read_text())["accounts"]
        headers = {"APCA-API-KEY-ID": entry["key_id"], "APCA-API-SECRET-KEY": entry["secret_key"]}
        r = requests.get(f"{url}/v2/account", headers=headers, timeout=5)
        assert r.status_code == 200
        assert r.json()["cash"] == "100000"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    secret = entry["secret_key"]
    assert secret not in out + err
    logs = b"".join(p.read_bytes() for p in (tmp_path / "log").rglob("*") if p.is_file())
    assert secret.encode() not in logs


def test_a_busy_port_exits_2_and_shows_no_key(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["exchange", "serve", "--data", ORCL, "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert "API" not in out
    assert len(err.strip().splitlines()) == 1
    assert "address already in use" in err.lower()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--data", ORCL, "--speed", "-1"], "speed must be a positive number"),
        (["--data", "/nonexistent/none.csv"], "no data file at"),
        (["--data", ORCL, "--fault", "bogus=1"], "unknown switch 'bogus'"),
        (["--data", ORCL, "--accounts", "/nonexistent/keys.toml"], "accounts: no file at"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["exchange", "serve", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1
