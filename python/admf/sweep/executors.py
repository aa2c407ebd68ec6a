"""Where trials run: a local process pool, a Dask LocalCluster, or an existing Dask scheduler.

Every trial runs in a sandbox process of a pebble ``ProcessPool``: a trial that runs past the
time limit has its process killed, one whose process dies (a crash, ``kill -9``) is reported
with the exit code, and both are recorded as failed while the pool starts a new process and
the sweep goes on. The local executor is that pool, sized from the cores and the memory a run
needs; the Dask executors send each trial to a Dask worker, which runs it in a sandbox pool
of its own (one process per worker thread), so a killed trial never takes a Dask worker down
and the isolation is the same whatever the executor. Sandbox processes live as long as the
pool: the imports (numpy, pyarrow, the strategy plugin) are paid once per process.

Scheduling is the pool's or Dask's; nothing here decides where a trial goes.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import pebble

from admf.errors import AdmfError
from admf.sweep.trial import TrialJob, TrialResult, failed, run_trial

RUN_BASE_BYTES: Final[int] = 150 << 20
"""Memory of one sandbox process before it reads data (Python, numpy, pyarrow, the engine:
about 90 MB measured), with room for the log writer."""
RUN_BYTES_PER_DATA_BYTE: Final[int] = 15
"""Memory a run needs per byte of input file (its events, their outputs, the result's
tables): measured 9-13 on the SMA plugin over minute bars in CSV (1M bars, a 64 MB file,
peak 680 MB), with room for strategies that trade more."""

EXECUTORS: Final[tuple[str, ...]] = ("local", "dask-local", "dask://HOST:PORT")


def default_workers(data: Sequence[str | os.PathLike[str]]) -> int:
    """As many workers as there are cores, fewer if the memory available does not hold that
    many runs of this data at once."""
    import psutil  # type: ignore[import-untyped]

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    data_bytes = sum(Path(p).stat().st_size for p in data if Path(p).is_file())
    per_run = RUN_BASE_BYTES + RUN_BYTES_PER_DATA_BYTE * data_bytes
    by_memory = int(psutil.virtual_memory().available // per_run)
    return max(1, min(cores or 1, by_memory))


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: a clean process (no threads, no inherited locks) started cheaply from a
    # template; spawn where there is no forkserver.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _sandbox_init() -> None:
    """Each sandbox runs one trial at a time on one core: the pool is sized by the cores, so
    Arrow's own thread pools (CSV and Parquet reading) would only oversubscribe them. Ctrl-C
    reaches the whole process group: the sweep, not its sandboxes, decides what it means
    (it stops the pool, and the trials it cut short stay unrecorded, to run again)."""
    import pyarrow as pa

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def sandbox_pool(workers: int) -> pebble.ProcessPool:
    return pebble.ProcessPool(max_workers=workers, initializer=_sandbox_init, context=_context())


def schedule(
    pool: pebble.ProcessPool, job: TrialJob, time_limit: float | None
) -> concurrent.futures.Future[TrialResult]:
    return pool.schedule(run_trial, (job,), timeout=time_limit)


def outcome(
    job: TrialJob, future: concurrent.futures.Future[TrialResult], time_limit: float | None
) -> TrialResult:
    """The trial's result, or a failed one saying why its sandbox gave none."""
    try:
        return future.result()
    except concurrent.futures.TimeoutError:
        limit = time_limit or 0.0
        return failed(job, f"timeout: still running after the {limit:g} s time limit", limit)
    except pebble.ProcessExpired as exc:
        return failed(job, f"killed: the trial's process died (exit code {exc.exitcode})")
    except Exception as exc:  # e.g. a result that could not be sent back
        return failed(job, f"{type(exc).__name__}: {exc}")


class Executor(Protocol):
    """Runs trial jobs and hands their results back as they finish."""

    name: str
    workers: int

    def submit(self, job: TrialJob) -> Any: ...

    def finished(self, futures: Iterable[Any]) -> Iterator[Any]:
        """The futures as they finish."""
        ...

    def result(self, job: TrialJob, future: Any) -> TrialResult: ...

    def close(self) -> None: ...


class LocalPool:
    """A pool of sandbox processes on this machine."""

    def __init__(self, workers: int, time_limit: float | None) -> None:
        self.name = "local"
        self.workers = workers
        self.time_limit = time_limit
        self._pool = sandbox_pool(workers)

    def submit(self, job: TrialJob) -> concurrent.futures.Future[TrialResult]:
        return schedule(self._pool, job, self.time_limit)

    def finished(self, futures: Iterable[Any]) -> Iterator[Any]:
        return concurrent.futures.as_completed(list(futures))

    def result(self, job: TrialJob, future: Any) -> TrialResult:
        return outcome(job, future, self.time_limit)

    def close(self) -> None:
        self._pool.stop()  # kills what still runs: an interrupted sweep ends now
        self._pool.join()


_WORKER_POOL: pebble.ProcessPool | None = None
_WORKER_POOL_LOCK = threading.Lock()


def run_in_worker(job: TrialJob, time_limit: float | None) -> TrialResult:
    """Runs on a Dask worker: the trial in this worker's sandbox pool."""
    global _WORKER_POOL
    with _WORKER_POOL_LOCK:
        if _WORKER_POOL is None:
            from distributed import get_worker

            _WORKER_POOL = sandbox_pool(get_worker().state.nthreads)
        pool = _WORKER_POOL
    return outcome(job, schedule(pool, job, time_limit), time_limit)


def _stop_worker_pool() -> None:
    """Runs on a Dask worker at the end of a sweep: its sandbox processes end with it."""
    global _WORKER_POOL
    with _WORKER_POOL_LOCK:
        if _WORKER_POOL is not None:
            _WORKER_POOL.stop()
            _WORKER_POOL.join()
            _WORKER_POOL = None


def _daemonic() -> bool:
    return multiprocessing.current_process().daemon


class DaskExecutor:
    """Trials on a Dask ``distributed`` cluster: a LocalCluster of ``workers`` processes
    (one thread each) when ``address`` is None, else the scheduler at ``address``."""

    def __init__(self, address: str | None, workers: int, time_limit: float | None) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.time_limit = time_limit
        self._cluster: Any = None
        # Sandbox processes are children of the worker process: it must not be daemonic.
        with dask.config.set({"distributed.worker.daemon": False}):
            if address is None:
                self.name = "dask-local"
                self._cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # an HTTP server on a free port, not 8787
                    silence_logs=logging.ERROR,
                )
                self._client = Client(self._cluster)
            else:
                self.name = f"dask://{address}"
                try:
                    self._client = Client(address, timeout=10)
                except OSError as exc:
                    raise AdmfError(f"no Dask scheduler at {address}: {exc}") from None
        daemonic = sorted(a for a, d in self._client.run(_daemonic).items() if d)
        if daemonic:
            self.close()
            raise AdmfError(
                f"the Dask workers {', '.join(daemonic)} are daemonic processes, which cannot "
                "start a trial's sandbox process: start them with "
                "DASK_DISTRIBUTED__WORKER__DAEMON=False in their environment"
            )
        self.workers = sum(self._client.nthreads().values())

    def submit(self, job: TrialJob) -> Any:
        return self._client.submit(run_in_worker, job, self.time_limit, pure=False)

    def finished(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed

        return iter(as_completed(list(futures)))

    def result(self, job: TrialJob, future: Any) -> TrialResult:
        try:
            result: TrialResult = future.result()
        except Exception as exc:  # the worker itself was lost (KilledWorker, ...)
            return failed(job, f"{type(exc).__name__}: {exc}")
        return result

    def close(self) -> None:
        self._client.run(_stop_worker_pool, on_error="ignore")  # a lost worker took its own
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def check_executor(name: str, workers: int | None) -> None:
    """Refuses an unknown executor or worker count before anything starts."""
    if workers is not None and workers < 1:
        raise AdmfError(f"--workers must be at least 1, got {workers}")
    if name in ("local", "dask-local"):
        return
    if not (name.startswith("dask://") and len(name) > len("dask://")):
        raise AdmfError(f"unknown executor {name!r}; expected one of: {', '.join(EXECUTORS)}")


def make_executor(
    name: str, workers: int | None, time_limit: float | None, data: Sequence[str]
) -> Executor:
    """The executor ``--executor`` names (see `EXECUTORS`)."""
    check_executor(name, workers)
    count = workers or default_workers(data)
    if name == "local":
        return LocalPool(count, time_limit)
    if name == "dask-local":
        return DaskExecutor(None, count, time_limit)
    return DaskExecutor("tcp://" + name.removeprefix("dask://"), count, time_limit)
