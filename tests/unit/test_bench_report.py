"""The bench table's reading of pytest-benchmark results: the median round per element, or a
statistic a bench kept in its ``extra_info`` (a latency's percentile)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "scripts/bench_report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RESULTS = {
    "benchmarks": [
        {
            "name": "test_live_tick_to_order",
            "stats": {"median": 40e-6},
            "extra_info": {"p50_ns": 15_500.0, "p99_ns": 53_000.0},
        },
        {"name": "test_many", "stats": {"median": 2e-3}, "extra_info": {"elements": 1000}},
    ]
}


def test_a_figure_reads_its_statistic_or_the_median_round() -> None:
    report = _report()
    assert report.pytest_ns(RESULTS, "test_live_tick_to_order") == 40_000.0
    assert report.pytest_ns(RESULTS, "test_live_tick_to_order", "p50_ns") == 15_500.0
    assert report.pytest_ns(RESULTS, "test_live_tick_to_order", "p99_ns") == 53_000.0
    assert report.pytest_ns(RESULTS, "test_live_tick_to_order", "p90_ns") is None
    assert report.pytest_ns(RESULTS, "test_many") == 2_000.0  # per element
    assert report.measure("pytest", "test_live_tick_to_order", RESULTS, "p99_ns") == 53_000.0


def test_the_tick_to_order_rows_are_percentiles_against_their_targets() -> None:
    figures = tomllib.loads((ROOT / "bench/targets/live.toml").read_text())["figure"]
    rows = {f.get("stat"): f for f in figures if f["id"] == "test_live_tick_to_order"}
    assert set(rows) == {"p50_ns", "p99_ns"}
    assert rows["p50_ns"]["max_ns"] == 20_000
    assert rows["p99_ns"]["max_ns"] == 100_000
