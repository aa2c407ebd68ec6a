"""The sweep's durable record: torn last lines, damaged lines, another sweep's directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from admf.errors import AdmfError
from admf.sweep.journal import JOURNAL_NAME, Journal, check_or_write_spec, read_journal
from admf.sweep.trial import Curve, TrialResult


def _result(n: int) -> TrialResult:
    return TrialResult(
        f"{n:05d}-x",
        n,
        {"fast": n, "ratio": 0.5, "mode": "a"},
        7,
        "ok",
        statistics={"sharpe": float("nan"), "trades": 3},
        equity=Curve([1, 2], [1.0, 1.5]),
    )


def test_records_round_trip_and_a_torn_tail_is_dropped(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for n in range(3):
        journal.append(_result(n))
    journal.close()
    with open(tmp_path / JOURNAL_NAME, "ab") as f:
        f.write(b'{"trial": "00003-x", "ind')  # the process died while writing
    got = read_journal(tmp_path)
    assert sorted(got) == ["00000-x", "00001-x", "00002-x"]
    assert got["00001-x"].params == {"fast": 1, "ratio": 0.5, "mode": "a"}
    assert list(got["00001-x"].params) == ["fast", "ratio", "mode"]
    assert got["00001-x"].statistics["trades"] == 3
    assert got["00001-x"].equity == Curve([1, 2], [1.0, 1.5])
    # Appending again cuts the torn line first: the next record is whole.
    journal = Journal(tmp_path)
    journal.append(_result(3))
    journal.close()
    assert sorted(read_journal(tmp_path)) == ["00000-x", "00001-x", "00002-x", "00003-x"]


def test_a_damaged_line_inside_is_an_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append(_result(0))
    journal.close()
    with open(tmp_path / JOURNAL_NAME, "ab") as f:
        f.write(b"garbage\n")
    journal = Journal(tmp_path)
    journal.append(_result(1))
    journal.close()
    with pytest.raises(AdmfError, match="line 2 is not a trial record"):
        read_journal(tmp_path)


def test_a_directory_holds_one_sweep(tmp_path: Path) -> None:
    spec = {"strategy": "sma-cross", "grid": {"fast": [5, 10]}}
    assert check_or_write_spec(tmp_path / "s", spec) is False
    assert check_or_write_spec(tmp_path / "s", dict(spec)) is True
    with pytest.raises(AdmfError, match="differs in: grid"):
        check_or_write_spec(tmp_path / "s", {**spec, "grid": {"fast": [5]}})
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine")
    with pytest.raises(AdmfError, match="not a sweep directory"):
        check_or_write_spec(tmp_path / "other", spec)
    assert (tmp_path / "other/notes.txt").read_text() == "mine"
