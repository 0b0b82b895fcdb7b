from __future__ import annotations

import math

import numpy as np
import pytest

from automl.space import Choice, Float, Int, SearchSpace


def make_space() -> SearchSpace:
    return SearchSpace([
        Float("C", {"model": ("svm", "linear")}, 1e-3, 1e2, log=True),
        Choice("model", values=("svm", "linear", "knn")),
        Int("k", {"model": ("knn",)}, 1, 30),
        Float("lr", low=0.0, high=1.0, step=0.25),
    ])


def test_conditions_are_ordered_after_their_parent() -> None:
    assert list(make_space())[0] == "model"


def test_samples_are_inside_the_space_and_respect_conditions() -> None:
    space = make_space()
    rng = np.random.default_rng(0)
    seen_models = set()
    for _ in range(300):
        config = space.sample(rng)
        assert space.contains(config)
        seen_models.add(config["model"])
        assert ("k" in config) == (config["model"] == "knn")
        assert ("C" in config) == (config["model"] in ("svm", "linear"))
        assert config["lr"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert seen_models == {"svm", "linear", "knn"}


def test_log_float_is_log_uniform() -> None:
    p = Float("C", low=1e-3, high=1e3, log=True)
    values = np.array([p.sample(np.random.default_rng(i)) for i in range(2000)])
    # Half the mass below the geometric mean (1.0) for a log-uniform draw; a uniform draw puts ~0.05% there.
    assert 0.4 < np.mean(values < 1.0) < 0.6


def test_int_endpoints_are_reached_and_unit_mapping_round_trips() -> None:
    p = Int("k", low=1, high=5)
    values = {p.sample(np.random.default_rng(i)) for i in range(200)}
    assert values == {1, 2, 3, 4, 5}
    for v in range(1, 6):
        assert p.from_unit(p.to_unit(v)) == v
    f = Float("x", low=2.0, high=8.0)
    assert math.isclose(f.from_unit(f.to_unit(3.5)), 3.5)


def test_contains_rejects_wrong_types_extra_and_missing_keys() -> None:
    space = make_space()
    ok = {"model": "knn", "k": 3, "lr": 0.5}
    assert space.contains(ok)
    assert not space.contains({**ok, "k": 3.5})
    assert not space.contains({**ok, "k": 31})
    assert not space.contains({**ok, "C": 1.0})  # inactive under knn
    assert not space.contains({"model": "knn", "lr": 0.5})  # k missing


def test_grid_enumerates_active_combinations_once() -> None:
    space = SearchSpace([
        Choice("model", values=("a", "b")),
        Int("k", {"model": ("a",)}, 1, 3),
        Float("x", low=0, high=1, grid=(0.0, 1.0)),
    ])
    grid = list(space.grid())
    assert len(grid) == 3 * 2 + 1 * 2
    assert len({tuple(sorted(c.items())) for c in grid}) == len(grid)
    assert all(space.contains(c) for c in grid)


def test_grid_over_an_unbounded_float_says_which_parameter() -> None:
    space = SearchSpace([Float("lr", low=0, high=1)])
    with pytest.raises(ValueError, match="'lr' has no finite grid"):
        list(space.grid())


@pytest.mark.parametrize(
    "params, message",
    [
        ([Float("x", {"m": ("a",)}, 0, 1)], "unknown parameter 'm'"),
        ([Float("m"), Float("x", {"m": ("a",)}, 0, 1)], "must be a choice"),
        ([Choice("m", values=("a",)), Float("x", {"m": ("z",)}, 0, 1)], "never takes"),
        ([Choice("a", {"b": ("x",)}, ("x",)), Choice("b", {"a": ("x",)}, ("x",))], "cycle"),
    ],
)
def test_bad_conditions_are_refused(params: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchSpace(params)
