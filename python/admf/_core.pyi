"""Type stubs for the compiled core. Checked against the module by ``mypy.stubtest``."""

from typing import Any, Final, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = [
    "EVENT_SIZE",
    "FIELDS",
    "FLAGS",
    "KINDS",
    "SCALE",
    "EndOfStream",
    "Event",
    "EventQueue",
    "QueueClosed",
    "QueueFull",
]

EVENT_SIZE: Final[int]
SCALE: Final[int]
FIELDS: Final[list[tuple[str, int, str]]]
KINDS: Final[list[tuple[str, int]]]
FLAGS: Final[list[tuple[str, int]]]

class QueueClosed(Exception): ...
class EndOfStream(QueueClosed): ...
class QueueFull(Exception): ...

@final
class Event:
    def __new__(
        cls,
        kind: int,
        ts: int = 0,
        *,
        instrument: int = 0,
        order_id: int = 0,
        side: int = 0,
        price: int = 0,
        qty: int = 0,
        aux: int = 0,
        payload: int = 0,
        flags: int = 0,
        seq: int = 0,
    ) -> Event: ...
    def replace(
        self,
        *,
        kind: int | None = None,
        ts: int | None = None,
        instrument: int | None = None,
        order_id: int | None = None,
        side: int | None = None,
        price: int | None = None,
        qty: int | None = None,
        aux: int | None = None,
        payload: int | None = None,
        flags: int | None = None,
        seq: int | None = None,
    ) -> Event: ...
    @property
    def seq(self) -> int: ...
    @property
    def ts(self) -> int: ...
    @property
    def order_id(self) -> int: ...
    @property
    def price(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def aux(self) -> int: ...
    @property
    def payload(self) -> int: ...
    @property
    def instrument(self) -> int: ...
    @property
    def kind(self) -> int: ...
    @property
    def side(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def open(self) -> int: ...
    @property
    def high(self) -> int: ...
    @property
    def low(self) -> int: ...
    @property
    def close(self) -> int: ...
    @property
    def volume(self) -> int: ...
    @property
    def bid(self) -> int: ...
    @property
    def bid_size(self) -> int: ...
    @property
    def ask(self) -> int: ...
    @property
    def ask_size(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Event: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@disjoint_base
class EventQueue:
    def __new__(cls, capacity: int = 65536) -> EventQueue: ...
    @property
    def capacity(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def __len__(self) -> int: ...
    def push(self, event: Event) -> bool: ...
    def push_wait(self, event: Event, timeout: float | None = None) -> None: ...
    def pop(self) -> Event | None: ...
    def pop_wait(self, timeout: float | None = None) -> Event | None: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def close(self) -> bool: ...
    def _push_bytes(self, data: npt.NDArray[np.uint8]) -> int: ...
    def _push_bytes_wait(
        self, data: npt.NDArray[np.uint8], timeout: float | None = None
    ) -> int: ...
    def _push_columns(
        self,
        seq: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        order_id: npt.NDArray[np.int64],
        price: npt.NDArray[np.int64],
        qty: npt.NDArray[np.int64],
        aux: npt.NDArray[np.int64],
        payload: npt.NDArray[np.int64],
        instrument: npt.NDArray[np.uint32],
        kind: npt.NDArray[np.uint8],
        side: npt.NDArray[np.uint8],
        flags: npt.NDArray[np.uint16],
        wait: bool = False,
        timeout: float | None = None,
    ) -> int: ...
    def _pop_into(self, out: npt.NDArray[np.uint8]) -> int: ...
    def _pop_columns(
        self,
        seq: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        order_id: npt.NDArray[np.int64],
        price: npt.NDArray[np.int64],
        qty: npt.NDArray[np.int64],
        aux: npt.NDArray[np.int64],
        payload: npt.NDArray[np.int64],
        instrument: npt.NDArray[np.uint32],
        kind: npt.NDArray[np.uint8],
        side: npt.NDArray[np.uint8],
        flags: npt.NDArray[np.uint16],
    ) -> int: ...
