"""Prints the benchmark table and writes it as JSON (see bench/README.md).

Reads the figures declared in bench/targets/*.toml, criterion's estimates under
target/criterion/ and pytest-benchmark's JSON, and reports the median time per element (or,
for a figure with a ``stat``, the statistic a pytest bench kept in its ``extra_info``, such
as the p99 of single latencies), the rate, the target and whether it is met, and the ratios
against the comparisons measured in the same run.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def criterion_ns(bench_id: str) -> float | None:
    """Median ns per element of a criterion benchmark, or None if it did not run."""
    base = ROOT / "target" / "criterion" / bench_id / "new"
    try:
        estimates = json.loads((base / "estimates.json").read_text())
        meta = json.loads((base / "benchmark.json").read_text())
    except FileNotFoundError:
        return None
    elements = (meta.get("throughput") or {}).get("Elements", 1)
    return float(estimates["median"]["point_estimate"]) / elements


def pytest_ns(results: dict[str, Any], name: str, stat: str | None = None) -> float | None:
    """Median ns per element of a pytest-benchmark test (with ``stat``: that entry of its
    ``extra_info``, in ns), or None if it did not run."""
    for bench in results.get("benchmarks", []):
        if bench["name"] == name or bench["name"].split("[")[0] == name:
            extra = bench.get("extra_info", {})
            if stat is not None:
                return float(extra[stat]) if stat in extra else None
            return float(bench["stats"]["median"]) * 1e9 / extra.get("elements", 1)
    return None


def measure(
    source: str, bench_id: str, pytest_results: dict[str, Any], stat: str | None = None
) -> float | None:
    if bench_id.startswith("criterion:"):
        return criterion_ns(bench_id.removeprefix("criterion:"))
    if bench_id.startswith("pytest:"):
        return pytest_ns(pytest_results, bench_id.removeprefix("pytest:"), stat)
    if source == "criterion":
        return criterion_ns(bench_id)
    return pytest_ns(pytest_results, bench_id, stat)


def rate(ns: float) -> str:
    per_second = 1e9 / ns
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f}M/s"
    if per_second >= 100:
        return f"{per_second / 1e3:.1f}k/s"
    return f"{per_second:.2f}/s"  # sweep trials, shape-record writes


def main(out: Path) -> int:
    # `make bench` runs each pytest bench file in its own process, into its own JSON file.
    pytest_results: dict[str, Any] = {"benchmarks": []}
    for path in sorted((ROOT / "bench").glob("pytest-*.json")):
        pytest_results["benchmarks"] += json.loads(path.read_text()).get("benchmarks", [])
    rows: list[dict[str, Any]] = []
    for targets in sorted((ROOT / "bench" / "targets").glob("*.toml")):
        for figure in tomllib.loads(targets.read_text()).get("figure", []):
            stat = figure.get("stat")
            ns = measure(figure["source"], figure["id"], pytest_results, stat)
            row: dict[str, Any] = {
                "figure": figure["name"],
                "unit": figure.get("unit", "event"),
                "statistic": stat.removesuffix("_ns") if stat else "median",
                "median_ns": ns,
                "per_second": 1e9 / ns if ns else None,
                "target": figure.get("target", ""),
                "comparisons": {},
            }
            met = None
            if ns is not None:
                if "max_ns" in figure:
                    met = ns <= figure["max_ns"]
                if "min_rate" in figure:
                    met = 1e9 / ns >= figure["min_rate"]
            for other in figure.get("compare", []):
                # A comparison is read with the same statistic as the figure.
                theirs = measure(figure["source"], other, pytest_results, stat)
                if ns and theirs:
                    ratio = theirs / ns
                    row["comparisons"][other] = {"median_ns": theirs, "ratio": ratio}
                    need = figure.get("min_ratio", {}).get(other)
                    if need is not None:
                        met = bool(met is not False and ratio >= need)
            row["met"] = met
            rows.append(row)

    table = Table(
        title="admf benchmarks (medians unless a row names its statistic; comparisons "
        "measured in the same run)"
    )
    for column in ("figure", "median", "rate", "target", "met", "comparisons (their time / ours)"):
        table.add_column(column, justify="left" if column in ("figure", "target") else "right")
    for row in rows:
        ns = row["median_ns"]
        median = f"{ns:,.1f} ns/{row['unit']}" if ns is not None else "not run"
        per_second = rate(ns) if ns else ""
        if ns is not None and row["statistic"] != "median":
            median = f"{row['statistic']} {median}"
            per_second = ""  # a percentile's inverse is no rate
        comparisons = ", ".join(
            f"{name.removeprefix('test_').removeprefix('criterion:')}: {c['ratio']:.1f}x"
            for name, c in row["comparisons"].items()
        )
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[row["met"]]
        table.add_row(row["figure"], median, per_second, row["target"], met, comparisons)
    Console(width=160).print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"))
