"""The exchange on a loopback ephemeral port, run by its async context manager on an event
loop in a thread, so that alpaca-py's synchronous clients (and its streams, on the test's
own loop) talk to it over real sockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from admf.exchange import Credentials, ExchangeConfig, ExchangeServer

DATA = Path(__file__).resolve().parents[1] / "data"
ORCL = str(DATA / "orcl-1995-daily-100.csv")
USDJPY = str(DATA / "usdjpy-quotes-100.csv")
BTC_QUOTES = str(DATA / "market" / "nautilus__binance_btcusdt-quotes.parquet")
AAPL_L3 = str(DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv")
KEY, SECRET = "PKADMFTEST0000000001", "s3cr3t-for-tests-only-0123456789abcdefgh"
OTHER_KEY, OTHER_SECRET = "PKADMFTEST0000000002", "another-secret-for-tests-0123456789abcd"

T = TypeVar("T")


class RunningExchange:
    """An ``ExchangeServer`` served from a thread; ``call`` runs a function on its loop."""

    def __init__(
        self,
        config: ExchangeConfig,
        faults: dict[str, Any] | None = None,
        creds: list[tuple[Credentials, float | None]] | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        if creds is None:
            creds = [
                (Credentials(KEY, SECRET), None),
                (Credentials(OTHER_KEY, OTHER_SECRET), None),
            ]
        self.server: ExchangeServer | None = None
        self._config, self._creds, self._faults = config, creds, faults
        self._started: Future[None] = Future()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="exchange", daemon=True)
        self.thread.start()
        self._started.result(timeout=30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with ExchangeServer(self._config, self._creds, self._faults) as server:
                self.server = server
                self._started.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            raise

    def call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def step(self, events: int = 1) -> int:
        assert self.server is not None
        server = self.server
        return self.call(lambda: server.step(events))

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def close(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(stop.set)
        self.thread.join(timeout=30)


def run_exchange(
    *data: str, faults: dict[str, Any] | None = None, **settings: Any
) -> RunningExchange:
    settings.setdefault("paused", True)
    return RunningExchange(ExchangeConfig(data=data, **settings), faults)


@pytest.fixture
def orcl() -> Iterator[RunningExchange]:
    """ORCL daily bars, paused before the first bar."""
    ex = run_exchange(f"ORCL={ORCL}")
    yield ex
    ex.close()
