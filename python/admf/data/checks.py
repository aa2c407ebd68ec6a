"""What the readers accept, and how they refuse: every value is checked before it becomes
fixed point, and a value that cannot be represented (or makes no sense) is an ``AdmfError``
naming the file, the line (CSV) or row (Parquet, DBN record), the column and the value.

Limits (the same for every reader):

- prices: ``|price| <= PRICE_LIMIT`` (1e9 units). The fixed-point range is about ±9.22e9
  units; a price nearer that edge leaves no room for the notional of even a few units.
  Prices must be positive unless the reader is told that negative prices are legitimate
  (``negative_prices=True``: spreads, some futures); zero is never a price.
- sizes and volumes: ``0 <= size <= QTY_LIMIT`` (the fixed-point range, about 9.22e9 units).
- a non-zero value that would round to zero at the fixed-point resolution (1e-9) is refused.
- timestamps: within the ``int64`` nanosecond range, 1677-09-21 to 2262-04-11 UTC; a
  missing (null) timestamp is refused.

Rows out of time order are sorted and counted in one ``AdmfWarning``; what else is refused or
counted is listed in the docstring of each reader.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from admf.data.file import DataPath
from admf.errors import AdmfError, AdmfWarning
from admf.events import SCALE, EventArray

I64_MAX: Final[int] = 2**63 - 1
PRICE_LIMIT: Final[int] = 10**9 * SCALE
"""The largest price magnitude a reader accepts, in fixed point (1e9 units)."""
QTY_LIMIT: Final[int] = I64_MAX
"""The largest size or volume a reader accepts, in fixed point (the whole positive range)."""
TS_MIN: Final[int] = -(2**63) + 1
TS_MAX: Final[int] = I64_MAX
"""Timestamps are int64 nanoseconds since the epoch; the smallest value is kept for "none"."""


def units(value: int) -> str:
    """A fixed-point value as the decimal a user wrote."""
    text = format(Decimal(value) / SCALE, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Rows:
    """Where the rows of a table came from, so that an error can name a row's line.

    ``header`` is the number of lines before the first row of a CSV file (``None`` for a
    Parquet or binary file, whose rows are named by number). Arrow skips empty lines, so a
    row's line is found by counting the non-empty ones; this is done only for an error.
    """

    path: DataPath
    header: int | None = 1
    columns: list[str] = field(default_factory=list)
    """The file's column names in order (to quote a CSV field as it is written)."""

    def _line(self, row: int) -> tuple[int, str] | None:
        if self.header is None:
            return None
        seen = -1
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if number <= self.header or not raw.strip(b"\r\n"):
                    continue
                seen += 1
                if seen == row:
                    return number, raw.decode("utf-8", errors="replace").rstrip("\r\n")
        return None

    def where(self, row: int) -> str:
        """``path:line`` (CSV) or ``path: row N`` (others)."""
        found = self._line(row)
        if found is None:
            return f"{self.path}: row {row + 1}"
        return f"{self.path}:{found[0]}"

    def field(self, row: int, column: str) -> str | None:
        """The text of a CSV field as written, if it can be found."""
        found = self._line(row)
        if found is None or column not in self.columns:
            return None
        parts = found[1].split(",")
        index = self.columns.index(column)
        return parts[index].strip() if index < len(parts) else None

    def line_with(self, index: int, text: str) -> int | None:
        """The first data line whose field ``index`` is ``text`` (to place an Arrow error)."""
        if self.header is None:
            return None
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if number <= self.header:
                    continue
                parts = raw.decode("utf-8", errors="replace").rstrip("\r\n").split(",")
                if index < len(parts) and parts[index].strip().strip('"') == text:
                    return number
        return None

    def refuse(self, row: int, column: str, value: str, why: str) -> AdmfError:
        """The error for a value the reader cannot take."""
        shown = self.field(row, column) or value
        return AdmfError(f"{self.where(row)}: column {column!r}: {shown} {why}")


def first(bad: npt.NDArray[np.bool_]) -> int | None:
    """Index of the first true entry, or None."""
    if not bad.any():
        return None
    return int(np.argmax(bad))


def check_prices(
    rows: Rows, column: str, values: npt.NDArray[np.int64], *, negative: bool = False
) -> None:
    """Prices within ``PRICE_LIMIT``, and positive unless ``negative`` (never zero)."""
    row = first(np.abs(values) > PRICE_LIMIT)
    if row is not None:
        raise rows.refuse(
            row,
            column,
            units(int(values[row])),
            f"is beyond the accepted price range (±{units(PRICE_LIMIT)})",
        )
    bad = values == 0 if negative else values <= 0
    row = first(bad)
    if row is not None:
        what = "zero" if negative else "zero or negative"
        hint = "" if negative else " (pass negative_prices=True where they are legitimate)"
        raise rows.refuse(
            row, column, units(int(values[row])), f"is not a price: {what} prices are refused{hint}"
        )


def check_sizes(rows: Rows, column: str, values: npt.NDArray[np.int64]) -> None:
    """Sizes and volumes are not negative."""
    row = first(values < 0)
    if row is not None:
        raise rows.refuse(row, column, units(int(values[row])), "is negative; sizes are >= 0")


def in_time_order(events: EventArray, what: object) -> EventArray:
    """``events`` in time order (a stable sort); rows that were not are counted in one
    ``AdmfWarning`` naming ``what`` (the file)."""
    ts = events["ts"]
    if len(ts) < 2:
        return events
    back = ts[1:] < ts[:-1]
    if not back.any():
        return events
    count = int(back.sum())
    warnings.warn(
        f"{what}: {count} row(s) earlier than the row before them (first at row "
        f"{int(np.argmax(back)) + 2}); sorted into time order",
        AdmfWarning,
        stacklevel=3,
    )
    return events[np.argsort(ts, kind="stable")]
