"""automl-flaml beyond the conformance kit: the space as FLAML's tree, cost-frugal starts, how
outcomes are told, warm starts, fallbacks, spec errors, a missing library, and one search
through the engine."""

from __future__ import annotations

import importlib
import logging
import math
import pickle
import statistics
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from automl_flaml.searchers import FLAT_PATIENCE, BlendSearchSearcher, CFOSearcher, FlamlSearcher
from automl_flaml.space import MAX_DIMENSIONS, FlamlSpace, check_flaml_space, default_low_cost

import automl
from automl import parse_spec
from automl.plugin import (
    Choice,
    Float,
    Int,
    Objective,
    PluginError,
    SearchSpace,
    SpecError,
    TrialOutcome,
    build_plan,
    get_plugin_manager,
)
from automl.testing import (
    BOOSTED_SIZE_SPACE,
    BOWL_SPACE,
    CONDITIONAL_SPACE,
    MIXED_SPACE,
    bowl,
    drive,
    flat_accuracy_strengths,
)
from automl.testing.searchers import assert_in_space

LOSS = [Objective("loss", "min")]

#: The common shape: a model choice whose values enable their own parameters.
MODEL_SPACE = SearchSpace(
    [
        Choice("model", values=("forest", "linear", "knn")),
        Int("n_estimators", low=4, high=1000, log=True, when={"model": ("forest",)}),
        Float("max_features", low=0.1, high=1.0, when={"model": ("forest",)}),
        Float("C", low=1e-3, high=1e3, log=True, when={"model": ("linear",)}),
        Int("n_neighbors", low=1, high=50, when={"model": ("knn",)}),
        Choice("scale", values=("standard", "minmax")),
    ]
)

SIZE_SPACE = SearchSpace(
    [
        Int("n_estimators", low=4, high=1000, log=True),
        Float("learning_rate", low=0.01, high=1.0, log=True),
    ]
)


def loss_of(config: Mapping[str, Any]) -> float:
    """More trees help (the larger, the better), a learning rate near 0.1 is best."""
    return 1.0 / math.log(config["n_estimators"] + 1) + (math.log10(config["learning_rate"]) + 1) ** 2


def record_tells(searcher: FlamlSearcher) -> list[tuple[str, Any, bool]]:
    """Record what the searcher tells FLAML (FLAML's object exists after the first suggestion)."""
    calls: list[tuple[str, Any, bool]] = []
    tell = searcher.flaml.on_trial_complete

    def recording(trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        calls.append((trial_id, None if result is None else dict(result), error))
        tell(trial_id, result, error)

    searcher.flaml.on_trial_complete = recording
    return calls


# -- the space -------------------------------------------------------------------------------


def test_conditions_become_flaml_dicts_and_configs_round_trip() -> None:
    converter = FlamlSpace(CONDITIONAL_SPACE)
    domains = converter.domains()
    assert set(domains) == {"model", "tol"}
    model = domains["model"]
    assert type(model).__name__ == "Categorical" and len(model.categories) == 3
    linear, tree, svm = model.categories
    assert set(linear) == {"model", "C"} and set(tree) == {"model", "depth"}
    assert set(svm) == {"model", "C", "kernel"}  # degree and gamma live one level down
    rbf, poly = svm["kernel"].categories
    assert set(poly) == {"kernel", "degree"} and set(rbf) == {"kernel", "gamma"}
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = CONDITIONAL_SPACE.sample(rng)
        assert converter.decode(converter.encode(config)) == config


def test_every_value_survives_the_round_trip() -> None:
    converter = FlamlSpace(MIXED_SPACE)
    rng = np.random.default_rng(1)
    for _ in range(50):
        config = MIXED_SPACE.sample(rng)
        back = converter.decode(converter.encode(config))
        assert back == config and [type(v) for v in back.values()] == [type(v) for v in config.values()]


@pytest.mark.parametrize("factory", [CFOSearcher, BlendSearchSearcher])
def test_conditional_suggestions_hold_only_active_parameters(factory: type[FlamlSearcher]) -> None:
    searcher = factory(MODEL_SPACE, [Objective("score", "max")], seed=2)
    history = drive(searcher, lambda c: {"score": float(len(c))}, 15)
    for config, _ in history:
        assert_in_space(MODEL_SPACE, config)
    assert {c["model"] for c, _ in history[:3]} == {"forest", "linear", "knn"}  # one start point per model
    forest = next(c for c, _ in history if c["model"] == "forest")
    assert forest["n_estimators"] == 4  # the start point of a model gets its low-cost values


@pytest.mark.parametrize("factory", [CFOSearcher, BlendSearchSearcher])
def test_a_choice_of_one_value_beside_searched_parameters_is_suggested_as_itself(
        factory: type[FlamlSearcher]) -> None:
    # BlendSearch's global Optuna search failed on the constant ("'int' object has no attribute 'single'").
    space = SearchSpace([Choice("model", values=("linear",)), Float("C", low=1e-3, high=1e3, log=True,
                                                                     when={"model": ("linear",)})])
    assert "model" not in FlamlSpace(space).domains()
    history = drive(factory(space, [Objective("score", "max")], seed=0), lambda c: {"score": -abs(c["C"] - 1)}, 12)
    assert len(history) == 12 and all(c["model"] == "linear" and "C" in c for c, _ in history)
    with pytest.raises(ValueError, match="nothing to search"):
        check_flaml_space(SearchSpace([Choice("model", values=("linear",))]))


@pytest.mark.parametrize("factory", [CFOSearcher, BlendSearchSearcher])
def test_a_branch_whose_value_stops_changing_stops_taking_the_trials(factory: type[FlamlSearcher]) -> None:
    # "flat" is the best model but gives the same value whatever its C (a regularised model beyond where C
    # matters); CFO's local search around it would shrink its step only slowly and hold every trial.
    space = SearchSpace([
        Choice("model", values=("flat", "curve")),
        Float("C", low=1e-3, high=1e3, log=True, when={"model": ("flat",)}),
        Float("x", low=0.0, high=1.0, when={"model": ("curve",)}),
    ])

    def score(c: Mapping[str, Any]) -> dict[str, float]:
        return {"score": 0.9 if c["model"] == "flat" else 0.5 - (c["x"] - 0.3) ** 2}

    searcher = factory(space, [Objective("score", "max")], seed=0)
    history = drive(searcher, score, 60)
    flat = sum(c["model"] == "flat" for c, _ in history)
    assert flat <= FLAT_PATIENCE + 3, f"{flat} of 60 trials in the flat branch"
    assert searcher.flat_skips > 0
    assert all(c["model"] == "flat" or 0.0 <= c["x"] <= 1.0 for c, _ in history)
    again = pickle.loads(pickle.dumps(searcher))
    assert again._flat_run == searcher._flat_run


def test_a_low_cost_model_goes_first() -> None:
    searcher = CFOSearcher(
        MODEL_SPACE, LOSS, low_cost_partial_config={"model": "knn", "n_neighbors": 2, "scale": "minmax"}
    )
    assert searcher.start_points() == [
        {"model": "knn", "n_neighbors": 2, "scale": "minmax"},
        {"model": "forest", "scale": "minmax"},
        {"model": "linear", "scale": "minmax"},
    ]
    first = searcher.suggest(0)
    assert first is not None and (first["model"], first["n_neighbors"], first["scale"]) == ("knn", 2, "minmax")


def test_check_space_refuses_reserved_names_and_huge_trees() -> None:
    with pytest.raises(ValueError, match="'/' and ':'"):
        check_flaml_space(SearchSpace([Float("a/b")]))
    with pytest.raises(ValueError, match="_choice_"):
        check_flaml_space(SearchSpace([Float("_choice_")]))
    # 12 nested two-way choices, each with two floats under each value: 2**12 dicts.
    params: list[Any] = [Choice("c0", values=("a", "b"))]
    for i in range(1, 13):
        params.append(Choice(f"c{i}", values=("a", "b"), when={f"c{i - 1}": ("a", "b")}))
        params.append(Float(f"x{i}", when={f"c{i - 1}": ("a", "b")}))
    with pytest.raises(ValueError, match=f"more than {MAX_DIMENSIONS} FLAML dimensions"):
        check_flaml_space(SearchSpace(params))
    check_flaml_space(CONDITIONAL_SPACE)


# -- cost --------------------------------------------------------------------------------------


def test_default_low_cost_values() -> None:
    space = SearchSpace(
        [
            Int("n_estimators", low=4, high=1000, log=True),
            Int("hgb__max_iter", low=20, high=300),
            Float("forest.num_leaves", low=4.0, high=64.0),
            Int("units", low=8, high=512, log=True),
            Int("depth", low=1, high=12),  # linear int, other name: no rule
            Float("lr", low=1e-4, high=1.0, log=True),  # log float: no rule
        ]
    )
    assert default_low_cost(space) == {"n_estimators": 4, "hgb__max_iter": 20, "forest.num_leaves": 4.0, "units": 8}


def test_cfo_starts_cheap_and_climbs_slowly() -> None:
    geometric_middle = math.sqrt(4 * 1000)
    medians = []
    for seed in (0, 1, 2):
        searcher = CFOSearcher(SIZE_SPACE, LOSS, seed=seed)
        configs = []
        for number in range(5):
            config = searcher.suggest(number)
            assert config is not None
            configs.append(config)
            # Cost grows with the number of trees, as it does for a forest.
            searcher.observe(
                TrialOutcome(
                    number, config, "completed", {"loss": loss_of(config)}, 1, 1, cost_s=config["n_estimators"] / 100
                )
            )
        assert configs[0]["n_estimators"] == 4
        medians.append(statistics.median(c["n_estimators"] for c in configs))
    assert max(medians) < geometric_middle, medians
    # Random search's first five draws sit around the middle (log-uniform).
    rng = np.random.default_rng(0)
    assert statistics.median(SIZE_SPACE.sample(rng)["n_estimators"] for _ in range(1001)) > medians[0]


def test_an_empty_low_cost_config_turns_the_rule_off() -> None:
    starts = [CFOSearcher(SIZE_SPACE, LOSS, seed=s, low_cost_partial_config={}).suggest(0) for s in range(4)]
    assert any(c is not None and c["n_estimators"] > 4 for c in starts)
    given = CFOSearcher(SIZE_SPACE, LOSS, seed=0, low_cost_partial_config={"n_estimators": 10}).suggest(0)
    assert given is not None and given["n_estimators"] == 10


# -- what FLAML is told ---------------------------------------------------------------------------


def test_outcomes_are_told_with_value_cost_and_error() -> None:
    searcher = CFOSearcher(BOWL_SPACE, [Objective("score", "max")], seed=0)
    configs = {n: searcher.suggest(n) for n in range(1)}
    calls = record_tells(searcher)
    searcher.observe(TrialOutcome(0, configs[0], "completed", {"score": -1.5}, 3, 3, cost_s=2.0))
    trial, result, error = calls[-1]
    assert (trial, error) == ("0", False)
    assert result is not None and result["score"] == -1.5 and result["time_total_s"] == 2.0
    assert result["config"] == searcher.flaml.results[0]["config"]
    outcomes = {
        1: TrialOutcome(1, {}, "stopped", {"score": -4.0}, 1, 3, cost_s=None),  # value at the budget reached
        2: TrialOutcome(2, {}, "failed", {}, 0, 3, cost_s=0.5),
        3: TrialOutcome(3, {}, "completed", {"other": 1.0}, 3, 3, cost_s=1.0),  # objective missing
        4: TrialOutcome(4, {}, "stopped", {}, 0, 3, cost_s=0.0),  # not started for lack of time
    }
    for number, outcome in outcomes.items():
        config = searcher.suggest(number)
        if number not in searcher._pending:  # a fallback draw: FLAML did not suggest it
            continue
        searcher.observe(
            TrialOutcome(number, config or {}, outcome.status, outcome.values, outcome.budget, 3, outcome.cost_s)
        )
        trial, result, error = calls[-1]
        assert trial == str(number)
        if number == 1:
            # Unknown cost: the mean of the costs seen (2.0 and the trials before it).
            assert not error and result is not None and result["score"] == -4.0
            assert result["time_total_s"] == pytest.approx(statistics.mean(searcher._costs))
        else:
            assert error and result is None


def test_a_metric_named_like_flamls_cost_key_gets_its_own_key() -> None:
    searcher = CFOSearcher(BOWL_SPACE, [Objective("time_total_s", "min")], seed=0)
    config = searcher.suggest(0)
    calls = record_tells(searcher)
    searcher.observe(TrialOutcome(0, config or {}, "completed", {"time_total_s": 7.0}, 1, 1, cost_s=1.0))
    result = calls[-1][1]
    assert result is not None and result["_automl_objective"] == 7.0 and result["time_total_s"] == 1.0


def test_warm_start_trials_are_evaluated_points() -> None:
    rng = np.random.default_rng(3)
    for factory in (CFOSearcher, BlendSearchSearcher):
        searcher = factory(BOWL_SPACE, LOSS, seed=0, points_to_evaluate=[])
        warm = [BOWL_SPACE.sample(rng) for _ in range(4)]
        for i, config in enumerate(warm):
            searcher.observe(TrialOutcome(-1 - i, config, "completed", {"loss": bowl(config)}, 1, 1, cost_s=1.0))
        searcher.observe(TrialOutcome(-9, warm[0], "failed", {}, 0, 1))  # nothing to learn
        assert searcher.suggest(0) is not None
        known = sorted(r["loss"] for r in searcher.flaml.results)
        best = min(bowl(c) for c in warm)
        assert best in known, f"{factory.__name__} did not get the warm start's best trial: {known}"


def test_cfo_waiting_for_results_falls_back_to_random_configs() -> None:
    space = SearchSpace([Int("n_estimators", low=4, high=1000, log=True)])
    searcher = CFOSearcher(space, LOSS, seed=4)
    # CFO's start point (n_estimators 4) is pending from the second suggestion on: FLAML has
    # none at times (it proposes the pending start point again).
    pending = [searcher.suggest(n) for n in range(4)]
    assert pending[0] == {"n_estimators": 4}
    for config in pending:
        assert config is not None
        assert_in_space(space, config)
    assert searcher.fallbacks >= 1
    assert len({c["n_estimators"] for c in pending if c}) == 4
    flamls = sorted(c["n_estimators"] for c in searcher._pending.values())
    assert len(flamls) == 4 - searcher.fallbacks
    for number, config in enumerate(pending):  # fallback trials are not FLAML's: ignored
        searcher.observe(TrialOutcome(number, config or {}, "completed", {"loss": 1.0 / (number + 1)}, 1, 1))
    assert sorted(r["config"]["n_estimators"] for r in searcher.flaml.results) == flamls
    restored = pickle.loads(pickle.dumps(searcher))
    assert restored.suggest(4) == searcher.suggest(4)


# -- options and errors ------------------------------------------------------------------------------


SPEC = """
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:quadratic", metrics: {{loss: min, cost: min}}}}
searcher: {searcher}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
  y: {{type: int, low: 0, high: 6}}
objectives:
  - {{metric: loss, mode: min}}
budget: {{trials: 6}}
resources: {{max_concurrent: 1}}
seed: 1
"""


def plan_for(searcher: str) -> automl.plan.Plan:
    return build_plan(parse_spec(SPEC.format(searcher=searcher), "spec.yaml"), get_plugin_manager())


@pytest.mark.parametrize(
    ("searcher", "message"),
    [
        ("{name: cfo, options: {low_cost_partial_config: {z: 1}}}", "unknown parameter 'z'"),
        ("{name: cfo, options: {low_cost_partial_config: {y: 9}}}", "y=9 is outside"),
        ("{name: cfo, options: {points_to_evaluate: {x: 0.5}}}", "must be a list of configs"),
        ("{name: blendsearch, options: {points_to_evaluate: [{x: 2.0}]}}", r"points_to_evaluate\[0\]: x=2.0"),
        ("{name: blendsearch, options: {experimental: maybe}}", "experimental must be true or false"),
    ],
)
def test_bad_options_are_spec_errors(searcher: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        plan_for(searcher).make_searcher()


def test_points_to_evaluate_need_the_choices_that_enable_them() -> None:
    with pytest.raises(ValueError, match="exists only when 'model' is one of"):
        CFOSearcher(MODEL_SPACE, LOSS, points_to_evaluate=[{"n_estimators": 10}])
    searcher = CFOSearcher(MODEL_SPACE, LOSS, points_to_evaluate=[{"model": "linear", "C": 2.0}])
    first = searcher.suggest(0)
    assert first is not None and first["model"] == "linear" and first["C"] == pytest.approx(2.0)


def test_flaml_logs_nothing_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        searcher = BlendSearchSearcher(MODEL_SPACE, LOSS, seed=0, low_cost_partial_config={})
        drive(searcher, lambda c: {"loss": float(len(c))}, 4)
    noisy = [r for r in caplog.records if r.name.startswith(("flaml", "optuna")) and r.levelno < logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]
    assert logging.getLogger("flaml").level != logging.CRITICAL  # silenced for the calls only


def test_the_plugin_module_imports_without_flaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flaml", None)
    monkeypatch.setitem(sys.modules, "flaml.tune.searcher", None)
    for name in [m for m in sys.modules if m == "automl_flaml" or m.startswith("automl_flaml.")]:
        monkeypatch.delitem(sys.modules, name)
    plugin = importlib.import_module("automl_flaml.plugin")
    specs = {s.name: s for s in plugin.searcher_specs()}
    assert set(specs) == {"cfo", "blendsearch", "learners"}
    with pytest.raises(PluginError, match="pip install flaml"):
        specs["cfo"].factory(BOWL_SPACE, LOSS, seed=0)
    with pytest.raises(PluginError, match="pip install flaml"):
        specs["learners"].factory(BOWL_SPACE, LOSS, seed=0)
    with pytest.raises(PluginError, match="pip install flaml"):
        specs["blendsearch"].check_space(BOWL_SPACE)  # type: ignore[misc]


# -- through the engine ---------------------------------------------------------------------------------


ENGINE_SPEC = """
task: classification
data: {dataset: breast_cancer, folds: 2, test: 0.2}
trainer: {name: sklearn, params: {export: skops}}
searcher: {name: cfo}
space:
  model: {type: choice, values: [forest, linear]}
  n_estimators: {type: int, low: 4, high: 200, log: true, when: {model: forest}}
  max_features: {type: float, low: 0.2, high: 1.0, when: {model: forest}}
  linear__C: {type: float, low: 0.01, high: 100, log: true, when: {model: linear}}
objectives:
  - {metric: balanced_accuracy, mode: max}
resources: {cpu: 1, max_concurrent: 1}
budget: {trials: 6}
seed: 0
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_search_through_the_engine(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    run = automl.search(write_spec(ENGINE_SPEC), out=tmp_path / "run")
    # The engine may add an ensemble of the best trials after the search: not the searcher's.
    trials = sorted((t for t in run.trials() if "model" in t["config"]), key=lambda t: t["number"])
    assert len(trials) == 6
    assert all(t["status"] == "completed" and "balanced_accuracy" in t["metrics"] for t in trials)
    assert {t["config"]["model"] for t in trials[:2]} == {"forest", "linear"}  # one start point per model
    forest = next(t for t in trials if t["config"]["model"] == "forest")
    assert forest["config"]["n_estimators"] == 4  # its low-cost start
    assert run.info()["status"] == "completed"
    assert run.info()["versions"]["searcher:cfo"].startswith("automl-flaml==")


@pytest.mark.parametrize("seed", range(4))
def test_ties_on_the_objective_are_broken_by_log_loss(seed: int) -> None:
    # Boosted models of a few trees all predict the majority class: accuracy is flat, so CFO (which moves on a
    # strict improvement) stayed at its low-cost start; told the log loss as a tie-break it grows the model.
    def search(log_loss: bool) -> list[float]:
        searcher = CFOSearcher(BOOSTED_SIZE_SPACE, [Objective("accuracy", "max")], seed=seed)
        return flat_accuracy_strengths(searcher, log_loss=log_loss, trials=30)

    without = statistics.median(search(False)[-10:])
    with_loss = statistics.median(search(True)[-10:])
    assert with_loss > 2 * without
