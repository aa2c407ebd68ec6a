"""What goes over the wire: fixed-point numbers as Alpaca's decimal strings, timestamps as
RFC 3339, and the API's error bodies (``{"code", "message", ...}``).

Alpaca encodes money and quantities as decimal strings and accepts JSON numbers or strings
in requests (alpaca-py sends numbers); inside the exchange they are ``admf.SCALE`` fixed
point, converted exactly here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
from typing import Any, Final

from admf.errors import AdmfError
from admf.events import SCALE

_DECIMALS: Final[int] = 9  # admf.SCALE = 1e9

ASSET_CLASS: Final[str] = "us_equity"
"""Every symbol of the exchange is traded as a US equity (what alpaca-py's models accept)."""
ASSET_EXCHANGE: Final[str] = "NASDAQ"

# Alpaca's error codes (see the protocol reference, section 1.5).
CODE_BAD_REQUEST: Final[int] = 40010000
CODE_UNPROCESSABLE: Final[int] = 40010001
CODE_FORBIDDEN: Final[int] = 40310000
CODE_NOT_FOUND: Final[int] = 40410000
CODE_NOT_CANCELABLE: Final[int] = 42210000
CODE_RATE_LIMITED: Final[int] = 42910000
CODE_INTERNAL: Final[int] = 50010000


class ApiError(AdmfError):
    """An answer other than success: an HTTP status and Alpaca's error body. ``body=None``
    with ``message`` set sends the code-less shape of Alpaca's auth errors."""

    def __init__(self, status: int, code: int | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.code is not None:
            out["code"] = self.code
        out["message"] = self.message
        return out


def unprocessable(message: str, **extra: Any) -> ApiError:
    return ApiError(422, CODE_UNPROCESSABLE, message, **extra)


def not_found(message: str) -> ApiError:
    return ApiError(404, CODE_NOT_FOUND, message)


def fixed_to_str(value: int) -> str:
    """``1_500_000_000`` -> ``"1.5"``: exact, no exponent, no trailing zeros."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), SCALE)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{_DECIMALS}d}".rstrip("0")


def parse_fixed(value: object, field: str) -> int:
    """A JSON number or decimal string as fixed point; raises a 422 ``ApiError`` naming the
    field for anything else (booleans, NaN, more than nine decimals)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise unprocessable(f"{field} must be a number or a decimal string, got {value!r}")
    try:
        # repr of a float is its shortest exact decimal, so 0.1 stays 0.1.
        number = decimal.Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except decimal.InvalidOperation:
        raise unprocessable(f"{field} is not a number: {value!r}") from None
    if not number.is_finite():
        raise unprocessable(f"{field} must be finite, got {value!r}")
    scaled = number.scaleb(_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise unprocessable(f"{field} has more than {_DECIMALS} decimal places: {value!r}")
    if abs(scaled) >= 2**62:
        raise unprocessable(f"{field} is too large: {value!r}")
    return int(scaled)


@functools.lru_cache(maxsize=4096)  # the replay clock repeats: orders and reports share times
def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as ``2026-11-28T10:00:00.123456789Z``."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z" if nanos else f"{base}Z"


def parse_time(value: str, field: str) -> int:
    """An RFC 3339 timestamp or a date (``YYYY-MM-DD``, midnight UTC) as nanoseconds; a 422
    naming the field otherwise. Fractions beyond microseconds are kept."""
    text = value.strip()
    frac_ns = 0
    try:
        if len(text) == 10:
            stamp = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        else:
            text = text.replace("Z", "+00:00").replace("z", "+00:00")
            head, dot, rest = text.partition(".")
            if dot:
                digits = ""
                while rest and rest[0].isdigit():
                    digits, rest = digits + rest[0], rest[1:]
                frac_ns = int((digits + "000000000")[:9]) if digits else 0
                text = head + rest
            stamp = dt.datetime.fromisoformat(text)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
    except ValueError:
        raise unprocessable(f"{field} is not an RFC 3339 time or a date: {value!r}") from None
    return int(stamp.timestamp()) * 1_000_000_000 + frac_ns
