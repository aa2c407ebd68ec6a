# admf: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)
RUST_SOURCES := $(shell find rust -name '*.rs') Cargo.toml
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: help venv develop test test-rust test-python lint bench demo clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.created:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "maturin>=1.16,<2"
	touch $@

$(VENV)/.built: $(VENV)/.created $(RUST_SOURCES) pyproject.toml $(PLUGINS)
	maturin develop --release --extras dev -q
	@for p in $(dir $(PLUGINS)); do $(PY) -m pip install -q -e $$p || exit 1; done
	touch $@

venv: $(VENV)/.built ## create .venv, build the extension (release) and install admf with its test tools

develop: venv ## rebuild the extension after a Rust change

test: venv lint test-rust test-python ## set up everything, then run cargo tests, pytest and the lints

test-rust: ## cargo tests of the pure Rust core (no Python needed)
	cargo test --all-targets --quiet

test-python: venv ## pytest (including the plugins' tests)
	$(PY) -m pytest -q tests $(wildcard plugins/*/tests)

lint: venv ## ruff, mypy --strict, stubtest, cargo fmt --check, clippy -D warnings
	$(PY) -m ruff check python tests plugins scripts
	$(PY) -m ruff format --check python tests plugins scripts
	$(PY) -m mypy
	$(PY) -m mypy.stubtest admf._core --allowlist .stubtest-allowlist
	cargo fmt --check
	cargo clippy --all-targets --features python --quiet -- -D warnings

bench: venv ## run the benchmarks (criterion + pytest-benchmark); print a table, write bench/results.json
	cargo bench --quiet -- --warm-up-time 1 --measurement-time 3
	@# One process per file: a figure and its comparisons run side by side, and no area's
	@# leftovers (DuckDB's threads, a grown heap) weigh on the next one's figures.
	rm -f bench/pytest-*.json
	for f in tests/bench/test_*.py; do \
		$(PY) -m pytest -q $$f --benchmark-enable --benchmark-only -p no:randomly \
			--benchmark-json=bench/pytest-$$(basename $$f .py).json || exit 1; \
	done
	$(PY) scripts/bench_report.py bench/results.json

demo: venv ## backtest the SMA plugin on bundled real data (log, report, replay, SQL), then trade it live on the paper exchange
	$(PY) -m admf demo --out demo-output
	rm -rf demo-output/live
	$(PY) -m admf.live.demo demo-output/live
	@echo "admf is installed in $(VENV)/bin: 'source $(VENV)/bin/activate' puts it on your PATH"

clean: ## remove build products and the venv
	rm -rf target $(VENV) bench/*.json
