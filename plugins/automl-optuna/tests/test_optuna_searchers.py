"""automl-optuna beyond the conformance kit: how outcomes are told, spec errors, a missing
library, and one search through the engine."""

from __future__ import annotations

import importlib
import pickle
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from automl_optuna.searchers import CmaEsSearcher, TPESearcher

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
from automl.testing import BOOSTED_SIZE_SPACE, BOWL_SPACE, bowl, flat_accuracy_strengths

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
    text = SPEC.format(searcher=searcher, extra=extra)
    return build_plan(parse_spec(text, "spec.yaml"), get_plugin_manager())


def test_stopped_trials_are_pruned_with_their_partial_value_failed_ones_fail() -> None:
    searcher = TPESearcher(BOWL_SPACE, LOSS, seed=0)
    configs = [searcher.suggest(n) for n in range(4)]
    assert all(c is not None for c in configs)
    searcher.observe(TrialOutcome(0, configs[0], "completed", {"loss": 1.5}, 9, 9))
    searcher.observe(TrialOutcome(1, configs[1], "stopped", {"loss": 4.0}, 3, 9))
    searcher.observe(TrialOutcome(2, configs[2], "failed", {}, 0, 9))
    searcher.observe(TrialOutcome(3, configs[3], "completed", {"other": 1.0}, 9, 9))
    states = [t.state.name for t in searcher.study.trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "FAIL"]
    pruned = searcher.study.trials[1]
    assert pruned.intermediate_values == {3: 4.0}  # a partial value at the budget reached, not a full result
    assert searcher.study.trials[0].values == [1.5]


def test_several_objectives_are_told_in_minimisation_form() -> None:
    objectives = [Objective("loss", "min"), Objective("acc", "max")]
    searcher = TPESearcher(BOWL_SPACE, objectives, seed=0)
    config = searcher.suggest(0)
    assert config is not None
    searcher.observe(TrialOutcome(0, config, "completed", {"loss": 0.5, "acc": 0.9}, 1, 1))
    assert len(searcher.study.directions) == 2
    assert searcher.study.trials[0].values == [0.5, -0.9]


def test_single_objective_sampler_optimises_the_primary_objective() -> None:
    objectives = [Objective("acc", "max"), Objective("loss", "min")]
    searcher = CmaEsSearcher(BOWL_SPACE, objectives, seed=0)
    config = searcher.suggest(0)
    assert config is not None
    searcher.observe(TrialOutcome(0, config, "completed", {"loss": 0.5, "acc": 0.9}, 1, 1))
    assert searcher.study.trials[0].values == [-0.9]


def test_pending_trials_stay_running_and_survive_a_pickle_round_trip() -> None:
    searcher = TPESearcher(BOWL_SPACE, LOSS, seed=0)
    pending = {n: searcher.suggest(n) for n in range(3)}
    assert [t.state.name for t in searcher.study.trials] == ["RUNNING"] * 3
    restored = pickle.loads(pickle.dumps(searcher))
    for n, config in pending.items():
        assert config is not None
        restored.observe(TrialOutcome(n, config, "completed", {"loss": bowl(config)}, 1, 1))
    assert [t.state.name for t in restored.study.trials] == ["COMPLETE"] * 3
    assert [t.state.name for t in searcher.study.trials] == ["RUNNING"] * 3  # the original is untouched


def test_a_searcher_file_of_the_older_format_still_loads() -> None:
    # Before the lock-safe state, pickle stored the plain attribute dict and handed it to __setstate__.
    searcher = TPESearcher(BOWL_SPACE, LOSS, seed=0)
    config = searcher.suggest(0)
    assert config is not None
    old_format = pickle.loads(pickle.dumps(dict(vars(searcher))))
    restored = TPESearcher.__new__(TPESearcher)
    restored.__setstate__(old_format)
    restored.observe(TrialOutcome(0, config, "completed", {"loss": bowl(config)}, 1, 1))
    assert [t.state.name for t in restored.study.trials] == ["COMPLETE"]
    assert restored.suggest(1) is not None


def test_warm_start_outcomes_become_finished_trials() -> None:
    space = SearchSpace([Choice("model", values=("a", "b")), Float("lr", low=1e-3, high=1.0, log=True, when={"model": ("a",)}),
                         Int("k", low=0, high=20, step=5)])
    searcher = TPESearcher(space, LOSS, seed=0)
    searcher.observe(TrialOutcome(-1, {"model": "a", "lr": 0.01, "k": 5}, "completed", {"loss": 0.2}, 1, 1))
    searcher.observe(TrialOutcome(-2, {"model": "b", "k": 10}, "stopped", {"loss": 0.7}, 1, 3))
    searcher.observe(TrialOutcome(-3, {"model": "b", "k": 3}, "completed", {"loss": 0.1}, 1, 1))  # k off its step
    trials = searcher.study.trials
    assert [(t.state.name, t.params) for t in trials] == [
        ("COMPLETE", {"model": "a", "lr": 0.01, "k": 5}), ("PRUNED", {"model": "b", "k": 10}),
    ]
    assert searcher.suggest(0) is not None


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(SpecError) as info:
        plan_for("{name: tpe, options: {n_startup: 5}}")
    message = str(info.value)
    assert "has no option 'n_startup'" in message and "n_startup_trials" in message and "multivariate" in message


def test_an_objective_without_a_direction_is_refused() -> None:
    text = SPEC.format(searcher="{name: tpe}", extra="").replace("  - {metric: cost, mode: min}\n", "  - {metric: cost}\n")
    with pytest.raises(SpecError, match=r"objectives\[1\]\.mode: required field is missing"):
        parse_spec(text, "spec.yaml")


def test_bad_option_value_is_a_spec_error() -> None:
    # The plan builds the searcher, so `automl validate` refuses a bad option value before any run.
    with pytest.raises(SpecError, match="group: true needs multivariate: true"):
        plan_for("{name: tpe, options: {group: true, multivariate: false}}")
    plan_for("{name: tpe, options: {group: true}}")  # group implies multivariate, as in optuna
    with pytest.raises(SpecError, match="restart_strategy must be ipop, bipop or null"):
        plan_for("{name: cmaes, options: {restart_strategy: sometimes}}")


def test_cmaes_refuses_a_space_with_choices_before_the_run() -> None:
    text = SPEC.format(searcher="{name: cmaes}", extra="  act: {type: choice, values: [relu, tanh]}\n")
    with pytest.raises(SpecError) as info:
        build_plan(parse_spec(text, "spec.yaml"), get_plugin_manager())
    message = str(info.value)
    assert "cannot search this space" in message and "'act' is a choice" in message and "ng-cma" in message


@pytest.mark.parametrize(
    ("blocked", "searcher", "package"),
    [("optuna", "tpe", "optuna"), ("torch", "gp", "torch"), ("cmaes", "cmaes", "cmaes")],
)
def test_a_missing_library_is_named_before_the_run(
    monkeypatch: pytest.MonkeyPatch, blocked: str, searcher: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)  # `import blocked` now raises ImportError
    with pytest.raises(PluginError, match=f"pip install {package}"):
        plan_for(f"{{name: {searcher}}}")


def test_the_plugin_module_imports_without_optuna(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    for name in [m for m in sys.modules if m == "automl_optuna" or m.startswith("automl_optuna.")]:
        monkeypatch.delitem(sys.modules, name)
    plugin = importlib.import_module("automl_optuna.plugin")
    specs = {s.name: s for s in plugin.searcher_specs()}
    assert {"tpe", "gp", "cmaes", "nsga2", "nsga3", "qmc"} <= set(specs)
    with pytest.raises(PluginError, match="pip install optuna"):
        specs["tpe"].factory(BOWL_SPACE, LOSS, seed=0)


def test_names_match_the_core_list_of_known_providers() -> None:
    from automl_optuna.plugin import searcher_specs

    from automl.plugin import KNOWN_PROVIDERS

    ours = {s.name for s in searcher_specs()}
    assert ours == {n for n, package in KNOWN_PROVIDERS["searcher"].items() if package == "automl-optuna"}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_search_through_the_engine(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = write_spec(SPEC.format(searcher="{name: tpe, options: {n_startup_trials: 4}}", extra=""))
    run = automl.search(spec, out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 8
    assert all(t["status"] == "completed" and "loss" in t["metrics"] for t in trials)
    assert run.info()["status"] == "completed"
    assert run.info()["versions"]["searcher:tpe"].startswith("automl-optuna==")


def test_tpe_leaves_multivariate_to_optuna_unless_asked() -> None:
    space = SearchSpace([Float("x", low=0, high=1)])
    one = [Objective("loss", "min")]
    assert TPESearcher(space, one).make_sampler()._multivariate is None  # optuna: joint with one objective
    assert TPESearcher(space, one, multivariate=False).make_sampler()._multivariate is False
    assert TPESearcher(space, one, group=True).make_sampler()._multivariate is True


@pytest.mark.parametrize("seed", range(3))
def test_tpe_ranks_equal_accuracies_by_log_loss(seed: int) -> None:
    # Searcher.primary_loss breaks ties of a coarse objective by the log loss: TPE's good group is then the
    # stronger models, where without it every trial ties and TPE has no good group to model.
    def search(log_loss: bool) -> list[float]:
        searcher = TPESearcher(BOOSTED_SIZE_SPACE, [Objective("accuracy", "max")], seed=seed)
        return flat_accuracy_strengths(searcher, log_loss=log_loss, trials=40)

    without = statistics.median(search(False)[-15:])
    with_loss = statistics.median(search(True)[-15:])
    assert with_loss > 4 * without
