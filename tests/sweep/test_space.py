"""Parameter spaces, trial ids and seeds."""

from __future__ import annotations

import pytest

from admf.sweep.space import SpaceError, grid, parse_dimension, parse_space, random_draws
from admf.sweep.trial import trial_id, trial_seed


def test_ranges_are_inclusive_and_exact() -> None:
    assert parse_dimension("fast=5:20:5").values == (5, 10, 15, 20)
    assert parse_dimension("fast=5:21:5").values == (5, 10, 15, 20)
    assert parse_dimension("x=0.1:0.3:0.1").values == (0.1, 0.2, 0.3)
    assert parse_dimension("x=1, 2.5,abc").values == (1, 2.5, "abc")
    assert parse_dimension("mode=fast").values == ("fast",)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fast", "NAME=START:STOP:STEP"),
        ("fast=", "NAME=START:STOP:STEP"),
        ("fast=1:2", "a range is START:STOP:STEP"),
        ("fast=1:x:1", "'x' is not a number"),
        ("fast=1:10:-1", "the step must be positive"),
        ("fast=1,1", "a value is repeated"),
        ("fast=1,,2", "an empty value"),
        ("fast=0:1e9:1", "more than"),
    ],
)
def test_bad_dimensions(spec: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_dimension(spec)


def test_a_parameter_once() -> None:
    with pytest.raises(SpaceError, match="more than once: fast"):
        parse_space(["fast=1", "slow=2", "fast=3"])


def test_grid_order_and_random_draws() -> None:
    dims = parse_space(["a=1:3:1", "b=x,y"])
    points = grid(dims)
    assert points[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}]
    draws = random_draws(dims, 4, seed=3)
    assert len(draws) == 4
    assert all(d in points for d in draws)
    assert len({tuple(d.values()) for d in draws}) == 4
    assert random_draws(dims, 4, seed=3) == draws
    assert sorted(map(str, random_draws(dims, 100, seed=1))) == sorted(map(str, points))
    with pytest.raises(SpaceError, match="positive number"):
        random_draws(dims, 0, seed=1)


def test_trial_ids_and_seeds_depend_on_the_parameters_only() -> None:
    a, b = {"fast": 5, "slow": 20}, {"slow": 20, "fast": 5}
    assert trial_seed(0, a) == trial_seed(0, b)
    assert trial_seed(0, a) != trial_seed(1, a)
    assert 0 <= trial_seed(0, a) < 2**63
    assert trial_id(3, a) == trial_id(3, b)
    assert trial_id(3, a).startswith("00003-")
    assert trial_id(3, a, 2, "train").startswith("w002t-00003-")
    assert trial_id(3, a, 2, "train") != trial_id(3, a, 2, "test")
