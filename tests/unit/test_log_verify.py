"""``admf verify`` and the replay's refusal: a tampered run is found and named, an intact one
passes, an unfinished one says so; the exit codes say which."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from admf import empty_events
from admf.backtest import backtest
from admf.cli import main
from admf.errors import AdmfError
from admf.log import EventLog, verify_log
from admf.log.seal import sealed_name
from admf.log.segment import crc32
from admf.replay import replay

BARS = Path(__file__).resolve().parents[1] / "data" / "orcl-1995-daily-100.csv"
STRATEGY = "tests.integration.strategies:Rebalancer"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    result = backtest(STRATEGY, [BARS], {"qty": 3}, log_dir=tmp_path)
    assert result.run_dir is not None
    return result.run_dir


def test_an_intact_finished_run_verifies_and_replays(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = verify_log(run)
    assert report.ok
    assert report.finished
    assert report.closed
    assert main(["verify", str(run)]) == 0
    out = capsys.readouterr().out
    assert "intact: the run finished" in out
    assert f"chain:    {report.chain}" in out
    assert replay(run).identical


def test_a_sealed_file_rewritten_with_its_crc_recomputed_is_found(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sealed,) = sorted(run.glob("events-*.parquet"))
    table = pq.read_table(sealed)
    bars = pc.equal(table.column("kind"), 1)  # a bar's volume edited
    qty = pc.if_else(bars, pc.add(table.column("qty"), 1), table.column("qty"))
    table = table.set_column(table.schema.get_field_index("qty"), "qty", qty)
    pq.write_table(table, sealed.with_suffix(".new"), write_page_checksum=True)
    data = sealed.with_suffix(".new").read_bytes()
    sealed.with_suffix(".new").unlink()
    first, last = (int(x) for x in sealed.name.split("-")[1:3])
    forged = run / sealed_name(first, last, crc32(data))
    sealed.unlink()
    forged.write_bytes(data)  # a consistent name: its CRC is right
    report = verify_log(run)
    assert not report.ok
    assert any(sealed.name in p and "missing" in p for p in report.problems)
    assert any(forged.name in p and "not in the log's shape record" in p for p in report.problems)
    assert main(["verify", str(run)]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    with pytest.raises(AdmfError, match=forged.name + "|" + sealed.name):
        replay(run)
    # the same bytes under the old name: its size, CRC and SHA-256 are not the recorded ones
    forged.rename(sealed)
    report = verify_log(run)
    assert [p for p in report.problems if sealed.name in p]
    with pytest.raises(AdmfError):
        replay(run)


def test_an_edited_seed_is_found(run: Path) -> None:
    manifest = run / "manifest.json"
    raw = json.loads(manifest.read_text())
    raw["seed"] = 12345
    manifest.write_text(json.dumps(raw))
    report = verify_log(run)
    assert any("digest does not match" in p for p in report.problems)
    assert main(["verify", str(run)]) == 1


def test_an_unfinished_run_exits_3_and_not_a_log_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EventLog.create(tmp_path, "open") as log:
        log.append(empty_events(4))
    assert main(["verify", str(log.path)]) == 3
    assert "did not finish" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "no event log" in capsys.readouterr().err
