"""automl-nevergrad beyond the conformance kit: how outcomes are told, spec errors, a
missing library, and one search through the engine."""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from automl_nevergrad.searchers import OnePlusOneSearcher, PSOSearcher, decode

import automl
from automl import parse_spec
from automl.plugin import Objective, PluginError, SpecError, TrialOutcome, build_plan, get_plugin_manager
from automl.testing import BOWL_SPACE, CONDITIONAL_SPACE, bowl

LOSS = [Objective("loss", "min")]

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
  - {{metric: cost, mode: min}}
budget: {{trials: 8}}
resources: {{max_concurrent: 2}}
seed: 1
"""


def plan_for(searcher: str) -> automl.plan.Plan:
    return build_plan(parse_spec(SPEC.format(searcher=searcher), "spec.yaml"), get_plugin_manager())


def test_failures_are_told_the_worst_loss_seen_and_stopped_trials_are_not_told() -> None:
    searcher = OnePlusOneSearcher(BOWL_SPACE, LOSS, seed=0)
    configs = [searcher.suggest(n) for n in range(5)]
    assert all(c is not None for c in configs)
    searcher.observe(TrialOutcome(0, configs[0], "failed", {}, 0, 9))  # nothing to rank it against yet
    assert searcher.optimizer.num_tell == 0
    searcher.observe(TrialOutcome(1, configs[1], "completed", {"loss": 2.0}, 9, 9))
    searcher.observe(TrialOutcome(2, configs[2], "completed", {"loss": 5.0}, 9, 9))
    searcher.observe(TrialOutcome(3, configs[3], "stopped", {"loss": 0.1}, 3, 9))  # partial: not told
    assert searcher.optimizer.num_tell == 2
    searcher.observe(TrialOutcome(4, configs[4], "failed", {}, 0, 9))
    assert searcher.optimizer.num_tell == 3
    told = []
    searcher.optimizer.register_callback("tell", lambda opt, cand, loss: told.append(loss))
    config = searcher.suggest(5)
    assert config is not None
    searcher.observe(TrialOutcome(5, config, "completed", {"other": 1.0}, 9, 9))  # objective missing: a failure
    assert told == [5.0]


def test_several_objectives_use_nevergrads_multi_objective_tell() -> None:
    objectives = [Objective("loss", "min"), Objective("acc", "max")]
    searcher = PSOSearcher(BOWL_SPACE, objectives, seed=0)
    for n in range(6):
        config = searcher.suggest(n)
        assert config is not None
        searcher.observe(TrialOutcome(n, config, "completed", {"loss": bowl(config), "acc": config["x"]}, 1, 1))
    assert searcher.optimizer.num_objectives == 2
    front = searcher.optimizer.pareto_front()
    assert front and all(len(c.losses) == 2 for c in front)


def test_conditional_parameters_are_left_out_of_inactive_branches() -> None:
    searcher = OnePlusOneSearcher(CONDITIONAL_SPACE, LOSS, seed=0)
    for n in range(10):
        config = searcher.suggest(n)
        assert config is not None and CONDITIONAL_SPACE.contains(config)
        searcher.observe(TrialOutcome(n, config, "completed", {"loss": float(n % 3)}, 1, 1))


def test_warm_start_points_are_told_as_children_of_the_parametrization() -> None:
    searcher = OnePlusOneSearcher(CONDITIONAL_SPACE, LOSS, seed=0)
    config = {"model": "svm", "C": 2.0, "kernel": "poly", "degree": 3, "tol": 1e-3}
    searcher.observe(TrialOutcome(-1, config, "completed", {"loss": 0.25}, 1, 1))
    assert searcher.optimizer.num_tell == 1
    best = decode(CONDITIONAL_SPACE, searcher.optimizer.provide_recommendation().value)
    assert best == pytest.approx(config)  # log-scaled floats come back within rounding


def test_pending_candidates_survive_a_pickle_round_trip() -> None:
    searcher = OnePlusOneSearcher(BOWL_SPACE, LOSS, seed=0)
    config = searcher.suggest(0)
    restored = pickle.loads(pickle.dumps(searcher))
    assert config is not None
    restored.observe(TrialOutcome(0, config, "completed", {"loss": 2.0}, 1, 1))
    assert restored.optimizer.num_tell == 1 and searcher.optimizer.num_tell == 0


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(SpecError) as info:
        plan_for("{name: ngopt, options: {workers: 2}}")
    assert "has no option 'workers'" in str(info.value) and "num_workers" in str(info.value)


def test_bad_option_values_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="ngopt needs a budget"):
        plan_for("{name: ngopt, options: {budget: null}}").make_searcher()
    with pytest.raises(SpecError, match="num_workers must be a positive integer"):
        plan_for("{name: de, options: {num_workers: 0}}").make_searcher()


def test_a_missing_library_is_named_before_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nevergrad", None)
    with pytest.raises(PluginError, match="pip install nevergrad"):
        plan_for("{name: ngopt}")


def test_the_plugin_module_imports_without_nevergrad(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nevergrad", None)
    for name in [m for m in sys.modules if m == "automl_nevergrad" or m.startswith("automl_nevergrad.")]:
        monkeypatch.delitem(sys.modules, name)
    plugin = importlib.import_module("automl_nevergrad.plugin")
    specs = {s.name: s for s in plugin.searcher_specs()}
    assert set(specs) == {"ngopt", "oneplusone", "de", "pso", "ng-cma"}
    with pytest.raises(PluginError, match="pip install nevergrad"):
        specs["pso"].factory(BOWL_SPACE, LOSS, seed=0)


def test_names_match_the_core_list_of_known_providers() -> None:
    from automl_nevergrad.plugin import searcher_specs

    from automl.plugin import KNOWN_PROVIDERS

    ours = {s.name for s in searcher_specs()}
    assert ours == {n for n, package in KNOWN_PROVIDERS["searcher"].items() if package == "automl-nevergrad"}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_search_through_the_engine(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = write_spec(SPEC.format(searcher="{name: ngopt, options: {budget: 8, num_workers: 2}}"))
    run = automl.search(spec, out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 8
    assert all(t["status"] == "completed" and "loss" in t["metrics"] for t in trials)
    assert run.info()["status"] == "completed"
    assert run.info()["versions"]["searcher:ngopt"].startswith("automl-nevergrad==")
