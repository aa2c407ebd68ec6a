"""Accounts: API credentials and the money and positions each account holds.

Credentials come from a TOML file (``[[accounts]]`` tables with ``key_id``, ``secret_key``
and optionally ``cash``) or are generated (``secrets``) and printed once by the command line.
A secret is compared in constant time and never appears in a log, a repr or an error
message. Cash, positions and fees are fixed point (``admf.SCALE``).
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import string
import tomllib
import uuid
from pathlib import Path

from admf.events import SCALE
from admf.exchange.config import ExchangeConfigError

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits


@dataclasses.dataclass(frozen=True)
class Credentials:
    """One account's key pair; ``repr`` hides the secret."""

    key_id: str
    secret_key: str = dataclasses.field(repr=False)

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_key.encode(), secret.encode())

    @staticmethod
    def generate() -> Credentials:
        key = "PK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        return Credentials(key, secret)


@dataclasses.dataclass
class Position:
    """A holding: signed quantity and the cost of it (``avg entry = cost / qty``)."""

    qty: int = 0
    cost: int = 0
    """Fixed-point currency: sum of price * qty of what is held (signed like ``qty``)."""


@dataclasses.dataclass
class Account:
    """An account's state. Only the exchange's single event loop changes it."""

    credentials: Credentials
    id: str
    number: str
    cash: int
    created_ns: int
    positions: dict[str, Position] = dataclasses.field(default_factory=dict)
    fees: int = 0

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position())


def load_credentials(path: str) -> list[tuple[Credentials, float | None]]:
    """The key pairs (and cash, if given) of an accounts file."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExchangeConfigError(f"accounts: cannot read {path}: {exc}") from None
    tables = data.get("accounts")
    if not isinstance(tables, list) or not tables:
        raise ExchangeConfigError(
            f"accounts: {path} must hold [[accounts]] tables with key_id and secret_key"
        )
    out: list[tuple[Credentials, float | None]] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        key, secret = table.get("key_id"), table.get("secret_key")
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ExchangeConfigError(
                f"accounts: entry {i + 1} of {path} needs a non-empty key_id and secret_key"
            )
        if key in seen:
            raise ExchangeConfigError(f"accounts: key_id {key} appears twice in {path}")
        seen.add(key)
        cash = table.get("cash")
        if cash is not None and (isinstance(cash, bool) or not isinstance(cash, int | float)):
            raise ExchangeConfigError(f"accounts: cash of entry {i + 1} must be a number")
        out.append((Credentials(key, secret), None if cash is None else float(cash)))
    return out


def make_accounts(
    credentials: list[tuple[Credentials, float | None]],
    initial_cash: float,
    ids: list[uuid.UUID],
    created_ns: int,
) -> dict[str, Account]:
    """Accounts by key id, with ids drawn from the exchange's seeded generator."""
    accounts: dict[str, Account] = {}
    for i, ((cred, cash), account_id) in enumerate(zip(credentials, ids, strict=True)):
        accounts[cred.key_id] = Account(
            credentials=cred,
            id=str(account_id),
            number=f"PA{i + 1:08d}",
            cash=round((initial_cash if cash is None else cash) * SCALE),
            created_ns=created_ns,
        )
    return accounts
