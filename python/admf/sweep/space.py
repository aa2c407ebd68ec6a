"""Parameter spaces: a grid of values per parameter, searched whole or by random draws.

``fast=5:20:5`` is the inclusive range 5, 10, 15, 20 (``start:stop:step``; decimals step
exactly, ``0.1:0.3:0.1`` is 0.1, 0.2, 0.3); ``fast=5,8,13`` lists values; a single value
fixes the parameter. Values stay numbers when they parse as numbers, else strings (the
strategy's config converts them, as for ``--param``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import numpy as np

from admf.errors import AdmfError

Params = dict[str, Any]

MAX_VALUES: Final[int] = 1_000_000
"""The most values one dimension may have (a typo in a step should not fill the memory)."""


class SpaceError(AdmfError, ValueError):
    """A parameter space that cannot be searched, with the offending specification."""


@dataclass(frozen=True)
class Dimension:
    """One parameter and the values it takes, in order."""

    name: str
    values: tuple[Any, ...]


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _decimal(text: str, spec: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise SpaceError(f"--grid {spec}: {text!r} is not a number") from None


def parse_dimension(spec: str) -> Dimension:
    """``NAME=START:STOP:STEP``, ``NAME=V1,V2,...`` or ``NAME=VALUE``."""
    name, sep, body = spec.partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name or not body:
        raise SpaceError(f"--grid takes NAME=START:STOP:STEP or NAME=V1,V2,..., got {spec!r}")
    if ":" in body:
        parts = body.split(":")
        if len(parts) != 3:
            raise SpaceError(f"--grid {spec}: a range is START:STOP:STEP")
        start, stop, step = (_decimal(p.strip(), spec) for p in parts)
        if step <= 0:
            raise SpaceError(f"--grid {spec}: the step must be positive")
        if stop < start:
            raise SpaceError(f"--grid {spec}: STOP is below START")
        count = int((stop - start) / step) + 1
        if count > MAX_VALUES:
            raise SpaceError(f"--grid {spec}: {count:,} values, more than {MAX_VALUES:,}")
        integral = all(d == d.to_integral_value() for d in (start, step))
        # Decimal arithmetic: 0.1 + 0.1 + 0.1 is 0.3, not 0.30000000000000004.
        steps = (start + i * step for i in range(count))
        values: tuple[Any, ...] = tuple(int(d) if integral else float(d) for d in steps)
    else:
        values = tuple(_number(v.strip()) for v in body.split(","))
        if any(v == "" for v in values):
            raise SpaceError(f"--grid {spec}: an empty value")
    if len(set(values)) != len(values):
        raise SpaceError(f"--grid {spec}: a value is repeated")
    return Dimension(name, values)


def parse_space(specs: list[str]) -> list[Dimension]:
    """The dimensions of ``--grid`` options; each parameter once."""
    dims = [parse_dimension(s) for s in specs]
    names = [d.name for d in dims]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpaceError(f"--grid names a parameter more than once: {', '.join(repeated)}")
    return dims


def size(dims: list[Dimension]) -> int:
    return math.prod(len(d.values) for d in dims)


def grid(dims: list[Dimension]) -> list[Params]:
    """Every combination, the last dimension varying fastest."""
    return [
        dict(zip((d.name for d in dims), combo, strict=True))
        for combo in itertools.product(*(d.values for d in dims))
    ]


def random_draws(dims: list[Dimension], n: int, seed: int) -> list[Params]:
    """``n`` distinct combinations of the grid drawn at random (all of them when ``n`` is
    larger), in the order drawn; the same ``seed`` draws the same ones."""
    if n <= 0:
        raise SpaceError(f"--random takes a positive number of trials, got {n}")
    total = size(dims)
    rng = np.random.default_rng(seed)
    picks = rng.choice(total, size=min(n, total), replace=False)
    out = []
    for pick in picks.tolist():
        combo: Params = {}
        for d in reversed(dims):  # mixed radix, the last dimension fastest (as in `grid`)
            pick, i = divmod(pick, len(d.values))
            combo[d.name] = d.values[i]
        out.append({d.name: combo[d.name] for d in dims})
    return out
