"""A Dask cluster shared by the sweep tests (two worker processes, one thread each)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORCL_300 = ROOT / "tests/data/market/backtrader__orcl-1995-2014_head300.txt"
ORCL_2005 = ROOT / "python/admf/sample/orcl-2005-2014.csv"
FAULTY = "tests.sweep.strategies:Faulty"


@pytest.fixture(scope="session")
def dask_address() -> Iterator[str]:
    """``dask://HOST:PORT`` of a LocalCluster started here, as a user's scheduler would be."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # an HTTP server on a free port, not 8787
            silence_logs=logging.ERROR,
        )
    try:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    finally:
        cluster.close()
