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


# -- back to the unit cube (SearchSpace.to_unit, the inverse of from_unit) ----------------------

#: Extreme ranges: floats across 24 decades and far from zero, ints up to 1e9, a choice whose values are
#: equal under == but of other types (1, True, 1.0).
WIDE_SPACE = SearchSpace([
    Float("far", low=-1e6, high=3.3),
    Float("decades", low=1e-12, high=1e12, log=True),
    Float("narrow", low=0.1, high=0.3),
    Float("stepped", low=-5.0, high=5.0, step=0.1),
    Int("big", low=-1000, high=10**9),
    Int("logbig", low=1, high=10**9, log=True),
    Choice("same", values=(1, True, 1.0, "1", None, 0, False)),
])


def _spaces() -> dict[str, SearchSpace]:
    from automl.testing.searchers import BOWL_SPACE, CONDITIONAL_SPACE, MIXED_SPACE

    return {"mixed": MIXED_SPACE, "conditional": CONDITIONAL_SPACE, "bowl": BOWL_SPACE, "make_space": make_space(),
            "wide": WIDE_SPACE}


@pytest.mark.parametrize("name", ["mixed", "conditional", "bowl", "make_space", "wide"])
def test_from_unit_of_to_unit_gives_back_every_sampled_config(name: str) -> None:
    space = _spaces()[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(3000):
        config = space.sample(rng)
        vector = space.to_unit(config)
        assert list(vector) == list(space), "to_unit gives every parameter, in space order"
        assert all(0.0 <= u <= 1.0 for u in vector.values()), vector
        back = space.from_unit(vector)
        assert back == config, (config, vector, back)
        assert [type(v) for v in back.values()] == [type(v) for v in config.values()], (config, back)


@pytest.mark.parametrize("name", ["mixed", "conditional", "wide"])
def test_to_unit_of_from_unit_stays_in_the_same_config(name: str) -> None:
    # The other way round a point is not given back (a choice's bucket, an int's unit, a step all
    # collapse to one value), but the config it maps to is.
    space = _spaces()[name]
    rng = np.random.default_rng(7)
    for _ in range(1000):
        config = space.from_unit({n: float(rng.random()) for n in space})
        assert space.from_unit(space.to_unit(config)) == config


def test_a_choice_maps_to_the_centre_of_its_bucket() -> None:
    p = Choice("act", values=("relu", "tanh", None, 3, False))
    assert [p.to_unit(v) for v in p.values] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert Choice("one", values=("only",)).to_unit("only") == 0.5
    # A bool is its own value, not 1 or 0 (== would say True == 1); a numpy scalar matches its number.
    mixed = Choice("m", values=(1, True, 0, False))
    assert [mixed.index(v) for v in (1, True, 0, False, np.int64(0))] == [0, 1, 2, 3, 2]
    with pytest.raises(ValueError, match=r"parameter 'act': 'gelu' is not one of"):
        p.to_unit("gelu")


def test_numbers_map_on_their_scale_and_outside_values_to_the_nearer_end() -> None:
    assert Float("x", low=2.0, high=8.0).to_unit(5.0) == 0.5
    assert math.isclose(Float("lr", low=1e-4, high=1.0, log=True).to_unit(1e-2), 0.5)
    assert Float("x", low=2.0, high=8.0).to_unit(100.0) == 1.0
    assert Float("x", low=2.0, high=8.0).to_unit(-1.0) == 0.0
    assert Float("lr", low=1e-4, high=1.0, log=True).to_unit(0.0) == 0.0  # no log(0)
    assert Float("fixed", low=2.0, high=2.0).to_unit(2.0) == 0.5
    k = Int("k", low=1, high=5)
    assert [k.from_unit(k.to_unit(v)) for v in (-3, 9)] == [1, 5]
    assert math.isclose(k.to_unit(3), 0.5)  # the middle value at the middle: the ends' half units count
    units = Int("units", low=1, high=256, log=True)
    assert all(units.from_unit(units.to_unit(v)) == v for v in range(1, 257))
    # The forward map gives the ends exactly, so they come back too.
    for p in (Float("lr", low=1e-3, high=7.0, log=True), Float("x", low=0.1, high=0.3)):
        assert (p.from_unit(0.0), p.from_unit(1.0)) == (p.low, p.high)
        assert p.from_unit(p.to_unit(p.low)) == p.low and p.from_unit(p.to_unit(p.high)) == p.high
    for bad in ("3", True, float("nan"), None):
        with pytest.raises(ValueError, match="parameter 'x'"):
            Float("x", low=0.0, high=1.0).to_unit(bad)  # type: ignore[arg-type]


def test_inactive_parameters_get_the_centre_or_the_value_asked_for() -> None:
    space = make_space()
    config = {"model": "knn", "k": 30, "lr": 0.25}
    vector = space.to_unit(config)
    assert vector["C"] == 0.5  # inactive under knn
    assert vector["model"] == pytest.approx(5 / 6) and vector["k"] > vector["model"]
    assert space.to_unit(config, inactive=float("nan"))["C"] != space.to_unit(config, inactive=float("nan"))["C"]
    # A value given to an inactive parameter, or a key the space lacks, is ignored.
    assert space.to_unit({**config, "C": 1.0, "other": "x"}) == vector
    assert space.from_unit(vector) == config


def test_a_config_lacking_an_active_parameter_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="lacks the active parameter 'k'"):
        make_space().to_unit({"model": "knn", "lr": 0.25})
