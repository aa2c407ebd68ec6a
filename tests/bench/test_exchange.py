"""Benchmarks of the paper exchange (figures declared in bench/targets/exchange.toml), with
the client in the same bench, over loopback. The exchange runs as ``admf exchange serve`` in
a process of its own (as users run it), so client and server do not share a GIL:

- round trip: an order submitted over REST to its ``fill`` received on trade_updates
  (USD/JPY quotes: a market order is marketable at once), p50 and p99 in ``extra_info``;
- market data: every trade of a tiled Binance trade file streamed as fast as possible to 1
  and to 10 MessagePack clients (messages delivered per second, all clients together);
- orders accepted per second: limit orders that rest, one REST request after another.

With benchmarks disabled (the default test run) the sizes shrink so the file is a quick test.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from tests.exchange.conftest import DATA, KEY, ORCL, SECRET, USDJPY

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


class Served:
    """``admf exchange serve`` in a subprocess, paused, with the tests' key pair."""

    def __init__(self, *data: str, cash: float = 100_000.0) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="admf-bench-exchange-")
        keys = Path(self.tmp.name) / "keys.toml"
        keys.write_text(f'[[accounts]]\nkey_id = "{KEY}"\nsecret_key = "{SECRET}"\n')
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "admf",
                "exchange",
                "serve",
                "--paused",
                "--accounts",
                str(keys),
                "--cash",
                str(cash),
                "--data",
                *data,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split(" on ")[1].strip()

    def step(self, events: int) -> None:
        requests.post(
            f"{self.url}/admin/replay", json={"action": "step", "events": events}, timeout=30
        ).raise_for_status()

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=30)
        self.tmp.cleanup()


def enabled(request: pytest.FixtureRequest) -> bool:
    config = request.config
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _percentiles(benchmark: Any) -> None:
    times = sorted(benchmark.stats.stats.data) if benchmark.stats else []
    if times:
        benchmark.extra_info["p50_us"] = round(statistics.median(times) * 1e6, 1)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        benchmark.extra_info["p99_us"] = round(p99 * 1e6, 1)


def test_exchange_roundtrip_submit_to_fill(
    benchmark: Any, request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    rounds = 300 if enabled(request) else 5
    ex = Served(f"USDJPY={USDJPY}", cash=1e9)
    try:
        ex.step(1)
        session, ws = loop.run_until_complete(_trade_client(ex))
        order = {
            "symbol": "USDJPY",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "gtc",
        }

        async def one() -> None:
            async with session.post(f"{ex.url}/v2/orders", json=order, headers=HEADERS) as r:
                order_id = (await r.json())["id"]
            while True:
                data = json.loads((await ws.receive()).data)["data"]
                if data["event"] == "fill" and data["order"]["id"] == order_id:
                    return

        benchmark.extra_info["elements"] = 1
        benchmark.pedantic(lambda: loop.run_until_complete(one()), rounds=rounds, iterations=1)
        _percentiles(benchmark)
        loop.run_until_complete(ws.close())
        loop.run_until_complete(session.close())
    finally:
        ex.close()


# The floor under the round trip: a bare aiohttp server in its own process that answers a
# POST and pushes one WebSocket frame, the same two messages with no exchange behind them.
_FLOOR_SERVER = """
import asyncio, json, sys
from aiohttp import web
sockets = []
async def stream(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets.append(ws)
    async for _ in ws:
        pass
    return ws
async def post(request):
    body = await request.json()
    for ws in sockets:
        await ws.send_bytes(json.dumps({"data": {"event": "fill", "order": body}}).encode())
    return web.json_response(body)
app = web.Application()
app.router.add_get("/stream", stream)
app.router.add_post("/v2/orders", post)
async def main():
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def test_aiohttp_floor_roundtrip(
    benchmark: Any, request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    rounds = 300 if enabled(request) else 5
    proc = subprocess.Popen(
        [sys.executable, "-c", _FLOOR_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()

        async def connect() -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
            session = aiohttp.ClientSession()
            return session, await session.ws_connect(url.replace("http", "ws") + "/stream")

        session, ws = loop.run_until_complete(connect())

        async def one() -> None:
            async with session.post(f"{url}/v2/orders", json={"id": "x"}) as r:
                await r.json()
            json.loads((await ws.receive()).data)

        benchmark.extra_info["elements"] = 1
        benchmark.pedantic(lambda: loop.run_until_complete(one()), rounds=rounds, iterations=1)
        _percentiles(benchmark)
        loop.run_until_complete(ws.close())
        loop.run_until_complete(session.close())
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


async def _trade_client(
    ex: Served,
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(ex.url.replace("http", "ws") + "/stream")
    await ws.send_str(
        json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}})
    )
    await ws.receive()
    await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    await ws.receive()
    return session, ws


@pytest.fixture(scope="module")
def many_trades() -> Iterator[tuple[str, int]]:
    """The bundled Binance trades tiled 40 times end to end (about 80k trades)."""
    table = pq.read_table(DATA / "market" / "nautilus__binance_btcusdt-trades.parquet")
    stamps = table.column("timestamp").cast(pa.int64()).to_numpy()
    span = int(stamps[-1] - stamps[0]) + 1
    parts = []
    for i in range(40):
        part = table.set_column(
            0, "timestamp", pa.array(stamps + i * span, pa.int64()).cast(table.schema.field(0).type)
        )
        parts.append(
            part.set_column(
                1, "trade_id", pa.array(table.column("trade_id").to_numpy() + i * len(table))
            )
        )
    tiled = pa.concat_tables(parts).replace_schema_metadata(None)
    with tempfile.TemporaryDirectory(prefix="admf-bench-exchange-") as tmp:
        path = Path(tmp) / "binance_btcusdt-trades.parquet"
        pq.write_table(tiled, path)
        yield str(path), len(tiled)


def _stream_to(
    clients: int, path: str, n: int, small: bool, loop: asyncio.AbstractEventLoop
) -> None:
    ex = Served(f"BTC={path}")
    try:
        loop.run_until_complete(_stream_rounds(ex, clients, n if not small else 2000))
    finally:
        ex.close()


async def _stream_rounds(ex: Served, clients: int, n: int) -> None:
    async with aiohttp.ClientSession() as session:
        sockets = []
        for _ in range(clients):
            ws = await session.ws_connect(
                ex.url.replace("http", "ws") + "/v2/iex",
                headers={"Content-Type": "application/msgpack"},
                max_msg_size=0,
            )
            await ws.receive()
            await ws.send_bytes(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            await ws.receive()
            await ws.send_bytes(msgpack.packb({"action": "subscribe", "trades": ["*"]}))
            await ws.receive()
            sockets.append(ws)

        async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
            got = 0
            while got < n:
                got += len(msgpack.unpackb((await ws.receive()).data))

        async with session.post(
            f"{ex.url}/admin/replay", json={"action": "play", "as_fast_as_possible": True}
        ) as r:
            assert r.status == 200
        await asyncio.gather(*(drain(ws) for ws in sockets))
        for ws in sockets:
            await ws.close()


@pytest.mark.parametrize("clients", [1, 10])
def test_exchange_market_data(
    benchmark: Any,
    request: pytest.FixtureRequest,
    clients: int,
    many_trades: tuple[str, int],
    loop: asyncio.AbstractEventLoop,
) -> None:
    path, n = many_trades
    small = not enabled(request)
    benchmark.extra_info["elements"] = (2000 if small else n) * clients
    benchmark.pedantic(
        lambda: _stream_to(clients, path, n, small, loop), rounds=1 if small else 3, iterations=1
    )


def test_exchange_orders_accepted(
    benchmark: Any, request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    n = 1000 if enabled(request) else 20
    ex = Served(f"ORCL={ORCL}", cash=1e12)
    try:
        ex.step(1)
        order = {
            "symbol": "ORCL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "1",
            "time_in_force": "gtc",
        }

        async def submit_all() -> None:
            async with aiohttp.ClientSession() as session:
                for _ in range(n):
                    async with session.post(
                        f"{ex.url}/v2/orders", json=order, headers=HEADERS
                    ) as r:
                        assert r.status == 200

        benchmark.extra_info["elements"] = n
        benchmark.pedantic(
            lambda: loop.run_until_complete(submit_all()),
            rounds=3 if enabled(request) else 1,
            iterations=1,
        )
    finally:
        ex.close()
