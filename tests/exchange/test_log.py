"""The exchange's own event log: every market event it played, every order and report,
queryable in SQL afterwards; no secret in it."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from admf.cli import main
from admf.log import EventLog
from tests.exchange.conftest import KEY, ORCL, SECRET, run_exchange

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def test_session_in_sql(tmp_path: Path, capsys: object) -> None:
    ex = run_exchange(f"ORCL={ORCL}", log_dir=str(tmp_path))
    try:
        ex.step(3)
        body = {
            "symbol": "ORCL",
            "qty": "7",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        }
        order = requests.post(f"{ex.url}/v2/orders", json=body, headers=HEADERS, timeout=5).json()
        refused = requests.post(
            f"{ex.url}/v2/orders", json={**body, "qty": "0"}, headers=HEADERS, timeout=5
        )
        assert refused.status_code == 422
        ex.step(2)
    finally:
        ex.close()
    (run,) = tmp_path.glob("run=*")
    with EventLog.open(run, read_only=True) as log:
        assert log.sql("SELECT count(*) FROM bars").column(0)[0].as_py() == 5
        fills = log.sql("SELECT price, qty FROM fills").to_pylist()
        assert [(float(f["price"]), float(f["qty"])) for f in fills] == [(2.092592, 7.0)]
        kinds = (
            log.sql("SELECT kind_name FROM events WHERE kind_name LIKE 'ORDER%' ORDER BY seq")
            .column(0)
            .to_pylist()
        )
        # The order, its acceptance (the `new` event), the refused one (qty 0).
        assert kinds == ["ORDER_SUBMIT", "ORDER_ACCEPTED", "ORDER_REJECTED"]
        submit = log.sql("SELECT decode(payload_data) FROM events WHERE kind_name = 'ORDER_SUBMIT'")
        assert json.loads(submit.column(0)[0].as_py())["id"] == order["id"]
    stored = b"".join(p.read_bytes() for p in run.rglob("*") if p.is_file())
    assert SECRET.encode() not in stored
    assert main(["query", str(tmp_path), "SELECT count(*) AS n FROM fills", "--format", "csv"]) == 0
