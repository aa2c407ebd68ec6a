"""The live node: asyncio adapters feed the kernel through the ``EventQueue``; every session
is recorded, can be resumed after a crash, replayed exactly and replayed as a backtest.

Parts: ``session`` (supervision, shutdown, resume), ``inbox`` (the queue seen by adapters and
by the kernel), ``outbox`` (commands on their way out, client order ids), ``tracker`` (the
adapter's orders: dedup, overfills), ``codes`` (the session's own records, which the live gate
of the Rust order path reads: what may go out, flattening), ``control`` (``admf live ctl``),
``record`` (replays of a live log), and the adapters: ``alpaca``, ``replay_data`` and ``sim``
(the simulated venue in the kernel).
"""

from admf.live.adapter import AdapterContext, DataAdapter, ExecutionAdapter, LiveSetupError
from admf.live.codes import LiveCode
from admf.live.session import Ending, LiveSession, LiveSpec, run_session

__all__ = [
    "AdapterContext",
    "DataAdapter",
    "Ending",
    "ExecutionAdapter",
    "LiveCode",
    "LiveSession",
    "LiveSetupError",
    "LiveSpec",
    "run_session",
]
