"""The scheduler conformance kit on the core's schedulers, the bugs it catches, and the engine arguments
(``space``, ``trainer``, ``seed``) checked where a scheduler is registered and where a spec sets options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from automl.plugin import Objective, PluginError, SchedulerSpec, hookimpl
from automl.plugins import PluginManager
from automl.testing import SchedulerConformance, run_checks


class TestFifo(SchedulerConformance):
    scheduler = "fifo"


class TestAsha(SchedulerConformance):
    scheduler = "asha"
    options = {"grace_period": 1, "reduction_factor": 3}


class TestMoasha(SchedulerConformance):
    scheduler = "moasha"


class TestHyperband(SchedulerConformance):
    scheduler = "hyperband"
    options = {"brackets": 2}


class TestPbt(SchedulerConformance):
    scheduler = "pbt"  # names all three engine arguments
    options = {"interval": 3}


class TestMedian(SchedulerConformance):
    scheduler = "median"


def _asha(objectives: Sequence[Objective], *, max_budget: int, space: Any = None, seed: int = 0) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="budget", metric=objectives[0].metric, mode=objectives[0].mode,
                         max_t=max_budget)


def _space_first(space: Any, objectives: Sequence[Objective], *, max_budget: int) -> Any:
    return _asha(objectives, max_budget=max_budget)


def _not_a_scheduler(objectives: Sequence[Objective], *, max_budget: int) -> Any:
    return {"max_budget": max_budget}


def _no_budget(objectives: Sequence[Objective], *, grace_period: int = 1) -> Any:
    return _asha(objectives, max_budget=9)


PLANTED = {
    "space_first": (_space_first, "test_spec_is_well_formed"),
    "not_a_scheduler": (_not_a_scheduler, "test_builds_a_ray_tune_scheduler"),
    "no_budget": (_no_budget, "test_spec_is_well_formed"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_scheduler_kit_catches(bug: str) -> None:
    factory, check = PLANTED[bug]
    record = SchedulerSpec(bug, factory, description="planted")

    class Kit(SchedulerConformance):
        scheduler = bug

        def spec(self) -> SchedulerSpec:
            return record

    results = run_checks(Kit)
    assert results[check].outcome == "failed", results
    good = SchedulerSpec("good", _asha, description="ASHA naming space and seed")

    class Good(Kit):
        scheduler = "good"

        def spec(self) -> SchedulerSpec:
            return good

    assert {r.outcome for r in run_checks(Good).values()} == {"passed"}


class Plugin:
    @hookimpl
    def automl_register_schedulers(self) -> list[SchedulerSpec]:
        return [SchedulerSpec("space-first", _space_first, description="takes the space where the objectives go"),
                SchedulerSpec("fine", _asha, description="fine")]


def test_the_plugin_manager_refuses_a_factory_the_engine_cannot_call_naming_the_plugin() -> None:
    pm = PluginManager(entry_points=False)
    pm._register("sched-test", Plugin(), "1.0", "automl-sched-test")
    assert pm.schedulers.get("fine").factory is _asha
    with pytest.raises(PluginError) as info:
        pm.schedulers.get("space-first")
    message = str(info.value)
    assert "automl-sched-test 1.0 (entry point 'sched-test')" in message
    assert "scheduler 'space-first' is not loaded: its factory's first parameter is 'space'" in message


def test_an_engine_argument_is_never_a_scheduler_option(write_spec: Any) -> None:
    import automl
    from automl.errors import SpecError

    record = SchedulerSpec("good", _asha)
    with pytest.raises(ValueError, match="scheduler 'good' has no option 'seed': the engine passes") as build_info:
        record.build([Objective("loss", "min")], max_budget=9, options={"seed": 3}, space=None, trainer=None, seed=0)
    text = """
trainer: {name: function, params: {function: "math:hypot", steps: 3, metrics: {loss: min}}}
space: {x: {type: float, low: 0, high: 1}}
objectives: [{metric: loss, mode: min}]
scheduler: {name: pbt, options: {seed: 3}}
"""
    with pytest.raises(SpecError, match="scheduler 'pbt' has no option 'seed': the engine passes") as spec_info:
        automl.validate(write_spec(text), data=False)
    assert spec_info.value.field == "scheduler.options.seed"
    # one wording, composed by SchedulerSpec.engine_argument_message for both the build and the spec check
    assert str(build_info.value).replace("'good'", "'pbt'") in str(spec_info.value)
