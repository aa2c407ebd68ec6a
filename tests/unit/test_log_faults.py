"""Fault injection: every file kind of a closed log deleted, truncated, renamed, duplicated or
bit-flipped, before open and after. Each trial is read back exactly (read() and SQL alike) or
refused with an error naming a file involved; anything else is "silent", and there are none.

A fast subset runs by default; the ``slow`` run takes ``ADMF_LOG_FAULT_TRIALS`` trials
(default 400; thousands with the variable set). Only closed logs are attacked: in the live
segment of a log whose writer was killed, a cut at a frame boundary is what a crash leaves,
and reads back as the prefix that was durable.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from admf import EventLog, Kind, empty_events
from admf.errors import AdmfError
from admf.log import LogOptions

OPS = ("delete", "truncate", "rename", "duplicate", "flip")
FAST_TRIALS = 120
SLOW_TRIALS = int(os.environ.get("ADMF_LOG_FAULT_TRIALS", "400"))


def events(n: int, start: int = 0) -> np.ndarray:
    ev = empty_events(n)
    i = np.arange(start, start + n)
    ev["ts"] = 5_000 + i
    ev["kind"] = Kind.TRADE
    ev["instrument"] = (i % 3).astype(np.uint32)
    ev["price"] = 9_000_000_000 + i * 7
    ev["qty"] = i + 1
    return ev


@dataclass(frozen=True)
class Reference:
    run: Path
    table: pa.Table
    sql: list[dict[str, int]]


SQL = "SELECT count(*) AS n, sum(price) AS p, sum(qty) AS q, max(seq) AS m FROM events"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("fault-ref")
    options = LogOptions(group_events=50, segment_events=200, auto_seal=False)
    with EventLog.create(root, "f", config={"k": "v"}, seed=11, options=options) as log:
        for i in range(8):
            log.append(events(50, 50 * i))
        log.seal()  # 1..400 in two sealed files
        for i in range(8, 13):
            log.append(events(50, 50 * i))  # 401..650: a closed segment and a live one
        table = log.read()
        rows = log.sql(SQL).to_pylist()
    return Reference(log.path, table, rows)


def _files(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if p.is_file())


def _sibling_name(path: Path, rng: random.Random) -> Path:
    """Another name of the same kind (a valid-looking log file name where it has one)."""
    name = path.name
    if name.startswith("events-"):
        first, last, crc = name[len("events-") : -len(".parquet")].split("-")
        choice = rng.randrange(3)
        if choice == 0:
            last = f"{max(int(first), int(last) - rng.randint(1, 100)):020d}"
        elif choice == 1:
            crc = f"{rng.getrandbits(32):08x}"
        else:
            first, last = (f"{int(x) + 1000:020d}" for x in (first, last))
        return path.with_name(f"events-{first}-{last}-{crc}.parquet")
    if name.startswith("seg-"):
        first = int(name[4:-8]) + rng.choice([-1, 1, 50, 1000])
        return path.with_name(f"seg-{max(first, 0):020d}.admfseg")
    return path.with_name(name + rng.choice([".old", ".bak", "2"]))


def damage(path: Path, op: str, rng: random.Random) -> set[str]:
    """Applies ``op`` to ``path``; returns the file names an error may name."""
    names = {path.name}
    if op == "delete":
        path.unlink()
    elif op == "truncate":
        size = path.stat().st_size
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.truncate(rng.randrange(size) if size else 0)
    elif op == "rename":
        target = _sibling_name(path, rng)
        names.add(target.name)
        path.rename(target)
    elif op == "duplicate":
        target = _sibling_name(path, rng)
        names.add(target.name)
        shutil.copy(path, target)
    else:
        data = bytearray(path.read_bytes())
        if not data:
            return names
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
        os.chmod(path, 0o644)
        path.write_bytes(bytes(data))
    return names


def _refused(exc: Exception, names: set[str]) -> str:
    return "refused" if any(n in str(exc) for n in names) else f"unnamed: {exc}"


def _outcome(ref: Reference, run: Path, hurt: Callable[[], set[str]], *, after_open: bool) -> str:
    """Damages the log (``hurt``) before or after opening it, then reads it: "exact",
    "refused" (an error naming a file ``hurt`` involved) or what went wrong."""
    names = set() if after_open else hurt()
    try:
        log = EventLog.open(run, read_only=True)
    except AdmfError as exc:
        return _refused(exc, names)
    with log:
        if after_open:
            names = hurt()
        try:
            table = log.read()
            rows = log.sql(SQL).to_pylist()
        except AdmfError as exc:
            return _refused(exc, names)
        if table.equals(ref.table) and rows == ref.sql:
            return "exact"
        return f"silent: {table.num_rows} rows, sql {rows}"


def run_trials(ref: Reference, tmp: Path, trials: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    tally: dict[str, int] = {"exact": 0, "refused": 0}
    failures: list[str] = []
    for trial in range(trials):
        run = tmp / f"t{trial}" / ref.run.name
        shutil.copytree(ref.run, run)
        files = _files(run)
        after_open = rng.random() < 0.25
        if after_open:  # damage under a reader that has the log open: its sealed files
            files = [f for f in files if f.suffix == ".parquet"]
        target = rng.choice(files)
        op = rng.choice(OPS)
        outcome = _outcome(ref, run, partial(damage, target, op, rng), after_open=after_open)
        key = outcome.split(":")[0]
        tally[key] = tally.get(key, 0) + 1
        if key not in ("exact", "refused"):
            where = target.relative_to(run)
            failures.append(f"trial {trial}: {op} {where} (after open: {after_open}): {outcome}")
        shutil.rmtree(run.parent)
    assert not failures, "\n".join(failures[:10])
    return tally


def _report(capsys: pytest.CaptureFixture[str], trials: int, tally: dict[str, int]) -> None:
    silent = trials - tally["exact"] - tally["refused"]
    with capsys.disabled():
        print(
            f"\nlog fault injection: {trials} trials, {silent} silent "
            f"({tally['refused']} refused naming the file, {tally['exact']} read back exactly)"
        )


def test_fault_injection_fast(
    reference: Reference, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = run_trials(reference, tmp_path, FAST_TRIALS, seed=1)
    assert tally["refused"] > FAST_TRIALS // 2  # the attacks do land
    _report(capsys, FAST_TRIALS, tally)


@pytest.mark.slow
def test_fault_injection_soak(
    reference: Reference, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = run_trials(reference, tmp_path, SLOW_TRIALS, seed=2)
    _report(capsys, SLOW_TRIALS, tally)


def test_every_op_on_every_file_kind(reference: Reference, tmp_path: Path) -> None:
    """Each (file, op) pair at least once, deterministically."""
    rng = random.Random(3)
    for i, original in enumerate(_files(reference.run)):
        for op in OPS:
            run = tmp_path / f"{i}-{op}" / reference.run.name
            shutil.copytree(reference.run, run)
            target = run / original.relative_to(reference.run)
            outcome = _outcome(reference, run, partial(damage, target, op, rng), after_open=False)
            assert outcome in ("exact", "refused"), (op, target.name, outcome)
            if target.name.startswith(("events-", "seg-", "shape")) and op != "duplicate":
                assert outcome == "refused", (op, target.name)
