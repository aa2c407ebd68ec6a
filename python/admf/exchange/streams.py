"""Stream clients: one bounded queue and one writer task per WebSocket connection.

The exchange never waits for a client: it offers a frame to the client's queue and moves
on. A client that falls ``client_buffer`` frames behind (stalled, or too slow) is cut off,
with a last error frame where the protocol has one (market data: 407 slow client); one that
disconnects just stops being offered frames. So no client can slow the replay, the REST API
or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

Frame = bytes | str
WRITE_BUFFER = 32 * 1024
"""Bytes a connection may hold beyond its queue: the transport's high-water mark and the
socket's send buffer. Without a bound the kernel would let a stalled client's socket absorb
megabytes, and the exchange would notice it late."""
_DROP = object()
_DRAIN_POLL = 0.001
MALFORMED_FRAME = b"\xc1\x00{not json"
"""Bytes that are neither JSON nor MessagePack (0xc1 is never used in MessagePack)."""


class StreamClient:
    """A connected WebSocket and the frames waiting for it."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        maxsize: int,
        on_overflow: Callable[[StreamClient], None],
    ) -> None:
        self.ws = ws
        self.request = request
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.on_overflow = on_overflow
        self.closed = False
        self.sent = 0
        transport = request.transport
        if transport is not None:
            transport.set_write_buffer_limits(high=WRITE_BUFFER)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WRITE_BUFFER)
        self.task = asyncio.get_running_loop().create_task(self._write())

    def offer(self, frame: Frame) -> bool:
        """Queues a frame; on overflow cuts the client off. False if the frame was not
        queued."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.on_overflow(self)
            self.abort()
            return False
        return True

    def drop(self) -> None:
        """Closes the connection abruptly once the frames before now are sent."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_DROP)

    def abort(self) -> None:
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.task.cancel()

    async def _write(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                if frame is _DROP:
                    self.abort()
                    return
                if isinstance(frame, str):
                    await self.ws.send_str(frame)
                else:
                    await self.ws.send_bytes(frame)
                self.sent += 1
                # aiohttp's WebSocket writer keeps writing past the transport's high-water
                # mark (it drains only every 64 KiB of its own count, and not always then),
                # so the bound is kept here: while the client has not taken what is
                # buffered, its queue fills, and a full queue cuts it off.
                transport = self.request.transport
                while transport is not None and transport.get_write_buffer_size() > WRITE_BUFFER:
                    await asyncio.sleep(_DRAIN_POLL)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            self.closed = True

    async def close(self) -> None:
        self.closed = True
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
