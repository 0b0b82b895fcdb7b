"""automl-hyperopt beyond the conformance kit: the conditional tree, how outcomes are told,
spec errors, a missing library, and one search through the engine."""

from __future__ import annotations

import importlib
import pickle
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from automl_hyperopt.searchers import ATPESearcher, TPESearcher, build_expression

import automl
from automl import parse_spec
from automl.plugin import (
    Choice,
    Float,
    Objective,
    PluginError,
    SearchSpace,
    SpecError,
    TrialOutcome,
    build_plan,
    get_plugin_manager,
)
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
{extra}objectives:
  - {{metric: loss, mode: min}}
  - {{metric: cost, mode: min}}
budget: {{trials: 8}}
resources: {{max_concurrent: 2}}
seed: 1
"""


def plan_for(searcher: str, extra: str = "") -> automl.plan.Plan:
    return build_plan(parse_spec(SPEC.format(searcher=searcher, extra=extra), "spec.yaml"), get_plugin_manager())


def test_conditions_become_a_tree_with_one_label_per_branch() -> None:
    import hyperopt

    labels: dict = {}
    build_expression(CONDITIONAL_SPACE, hyperopt.hp, labels)
    assert set(labels) == {
        "model", "tol",
        "C|model='linear'", "C|model='svm'",  # C lives under two branches: modelled separately
        "depth|model='tree'",
        "kernel|model='svm'",
        "degree|model='svm'|kernel='poly'",
        "gamma|model='svm'|kernel='rbf'",  # two parents
    }


def test_a_tree_too_large_is_refused_before_the_run() -> None:
    chain = []
    for i in range(5):  # each choice conditions the next: 10**5 branches
        when = {f"c{i - 1}": tuple(range(10))} if i else {}
        chain.append(Choice(f"c{i}", when=when, values=tuple(range(10))))
    chain.append(Float("x", when={"c4": (0,)}))
    spec = get_plugin_manager().searchers.get("hyperopt-tpe")
    assert spec.check_space is not None
    with pytest.raises(ValueError, match="multiply into more than"):
        spec.check_space(SearchSpace(chain))


def test_outcomes_are_told_honestly() -> None:
    import hyperopt

    searcher = TPESearcher(BOWL_SPACE, LOSS, seed=0)
    configs = [searcher.suggest(n) for n in range(4)]
    assert [d["state"] for d in searcher.trials.trials] == [hyperopt.JOB_STATE_RUNNING] * 4
    searcher.observe(TrialOutcome(0, configs[0], "completed", {"loss": 1.5}, 9, 9))
    searcher.observe(TrialOutcome(1, configs[1], "stopped", {"loss": 4.0}, 3, 9))
    searcher.observe(TrialOutcome(2, configs[2], "failed", {}, 0, 9))
    searcher.observe(TrialOutcome(3, configs[3], "completed", {"other": 1.0}, 9, 9))
    results = [d["result"] for d in searcher.trials.trials]
    assert results[0] == {"status": "ok", "loss": 1.5}
    # Not a full result: no loss (TPE ranks it with the bad ones), the partial value kept aside.
    assert results[1] == {"status": "suspended", "budget": 3, "max_budget": 9, "partial_loss": 4.0}
    assert results[2] == {"status": "fail"} and results[3] == {"status": "fail"}
    assert searcher.trials.losses() == [1.5, None, None, None]


def test_the_primary_objective_is_minimised_whatever_its_direction() -> None:
    searcher = TPESearcher(BOWL_SPACE, [Objective("acc", "max"), Objective("loss", "min")], seed=0)
    config = searcher.suggest(0)
    assert config is not None
    searcher.observe(TrialOutcome(0, config, "completed", {"acc": 0.9, "loss": 3.0}, 1, 1))
    assert searcher.trials.losses() == [-0.9]


def test_warm_start_configs_are_encoded_into_the_tree() -> None:
    searcher = TPESearcher(CONDITIONAL_SPACE, LOSS, seed=0, n_startup_jobs=2)
    config = {"model": "svm", "C": 2.0, "kernel": "poly", "degree": 3, "tol": 1e-3}
    searcher.observe(TrialOutcome(-1, config, "completed", {"loss": 0.25}, 1, 1))
    (doc,) = searcher.trials.trials
    vals = {label: v for label, v in doc["misc"]["vals"].items() if v}
    assert vals == {"model": [2], "C|model='svm'": [2.0], "kernel|model='svm'": [1],
                    "degree|model='svm'|kernel='poly'": [3], "tol": [1e-3]}
    assert doc["result"] == {"status": "ok", "loss": 0.25}
    for n in range(4):  # TPE now models from it
        assert CONDITIONAL_SPACE.contains(searcher.suggest(n) or {})


def test_atpe_leaves_the_global_random_generators_alone() -> None:
    random.seed(11)
    np.random.seed(11)
    before = (random.random(), np.random.random())
    random.seed(11)
    np.random.seed(11)
    searcher = ATPESearcher(BOWL_SPACE, LOSS, seed=0)
    for n in range(3):
        config = searcher.suggest(n)
        assert config is not None
        searcher.observe(TrialOutcome(n, config, "completed", {"loss": bowl(config)}, 1, 1))
    assert (random.random(), np.random.random()) == before


def test_pending_trials_survive_a_pickle_round_trip() -> None:
    searcher = TPESearcher(BOWL_SPACE, LOSS, seed=0)
    config = searcher.suggest(0)
    restored = pickle.loads(pickle.dumps(searcher))
    assert config is not None
    restored.observe(TrialOutcome(0, config, "completed", {"loss": 2.0}, 1, 1))
    assert restored.trials.losses() == [2.0]


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(SpecError) as info:
        plan_for("{name: hyperopt-tpe, options: {n_startup: 5}}")
    assert "has no option 'n_startup'" in str(info.value) and "n_startup_jobs" in str(info.value)


def test_bad_option_value_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"gamma must be in \(0, 1\)"):
        plan_for("{name: hyperopt-tpe, options: {gamma: 2}}").make_searcher()


@pytest.mark.parametrize(
    ("blocked", "searcher", "package"),
    [("hyperopt", "hyperopt-tpe", "hyperopt"), ("lightgbm", "hyperopt-atpe", "lightgbm")],
)
def test_a_missing_library_is_named_before_the_run(
    monkeypatch: pytest.MonkeyPatch, blocked: str, searcher: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(PluginError, match=f"pip install {package}"):
        plan_for(f"{{name: {searcher}}}")


def test_the_plugin_module_imports_without_hyperopt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hyperopt", None)
    for name in [m for m in sys.modules if m == "automl_hyperopt" or m.startswith("automl_hyperopt.")]:
        monkeypatch.delitem(sys.modules, name)
    plugin = importlib.import_module("automl_hyperopt.plugin")
    specs = {s.name: s for s in plugin.searcher_specs()}
    assert set(specs) == {"hyperopt-tpe", "hyperopt-atpe", "hyperopt-anneal"}
    with pytest.raises(PluginError, match="pip install hyperopt"):
        specs["hyperopt-anneal"].factory(BOWL_SPACE, LOSS, seed=0)


def test_names_match_the_core_list_of_known_providers() -> None:
    from automl_hyperopt.plugin import searcher_specs

    from automl.plugin import KNOWN_PROVIDERS

    ours = {s.name for s in searcher_specs()}
    assert ours == {n for n, package in KNOWN_PROVIDERS["searcher"].items() if package == "automl-hyperopt"}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_search_through_the_engine(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = write_spec(SPEC.format(searcher="{name: hyperopt-tpe, options: {n_startup_jobs: 4}}", extra=""))
    run = automl.search(spec, out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 8
    assert all(t["status"] == "completed" and "loss" in t["metrics"] for t in trials)
    assert run.info()["status"] == "completed"
    assert run.info()["versions"]["searcher:hyperopt-tpe"].startswith("automl-hyperopt==")
