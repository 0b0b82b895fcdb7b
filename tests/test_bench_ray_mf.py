"""automl-bench's Ray Tune multi-fidelity peers (``raytune:SEARCHER+SCHEDULER``) on the S2 tasks."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("automl_bench")

from automl_bench.base import BenchmarkError  # noqa: E402
from automl_bench.engine_methods import make_engine_method  # noqa: E402
from automl_bench.engine_tasks import make_engine_task  # noqa: E402
from automl_bench.methods import make_method  # noqa: E402

BOHB_INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("hpbandster", "ConfigSpace"))


def test_ray_pairs_refuse_what_ray_does_not_pair_and_any_option() -> None:
    with pytest.raises(BenchmarkError, match=r"raytune:bohb\+hyperband, raytune:random\+hyperband"):
        make_method("raytune:bohb+asha")
    with pytest.raises(BenchmarkError, match="takes no options"):
        make_engine_method("raytune:random+asha", {"grace_period": 2})
    with pytest.raises(BenchmarkError, match="runs the S2 tasks"):
        make_engine_method("raytune:random+asha").check(make_engine_task("r3-digits-mlp", {}))


@pytest.mark.skipif(BOHB_INSTALLED, reason="hpbandster and ConfigSpace are installed here")
def test_ray_bohb_without_its_packages_names_what_to_install() -> None:
    with pytest.raises(BenchmarkError, match="pip install hpbandster ConfigSpace"):
        make_engine_method("raytune:bohb+hyperband").check(make_engine_task("s2-branin", {}))


@pytest.mark.slow
def test_ray_hyperband_spends_the_budget_in_budget_steps_and_stops_trials(ray_session: None) -> None:
    task = make_engine_task("s2-branin", {})
    method = make_engine_method("raytune:random+hyperband")
    trace = method.run(task, iterations=4, batch=1, seed=0)
    assert trace.extra is not None and trace.curve is not None
    # Every budget step of the 4 x 27 is counted once; Tune's results past the budget are not.
    assert trace.extra["cost_spent"] == 4 * 27 == trace.curve["evals"][-1]
    # HyperBand's first bracket starts 27 trials at one step and stops most of them at its rungs.
    assert trace.extra["stopped"] > 0 and trace.extra["trials"] > trace.extra["completed"]
    completed = [v[0] for v in trace.losses if v is not None]
    assert len(completed) == trace.extra["completed"]
    if completed:  # the best of the curve is the best completed trial's loss, and no better than the optimum
        assert trace.curve["best"][-1] == min(completed) >= task.optimum
    _assert_resumed_where_paused(method.events)


def _steps_by_trial(events: list[tuple[str, int, float]]) -> dict[str, list[int]]:
    steps: dict[str, list[int]] = {}
    for trial_id, step, _ in events:
        steps.setdefault(trial_id, []).append(step)
    return steps  # in the order the trials first reported


def _assert_resumed_where_paused(events: list[tuple[str, int, float]], *, some_paused: bool = False) -> None:
    """Each trial reported 1, 2, ... k once each: a paused trial went on from its checkpoint, not from the start.
    With ``some_paused``, some trial was paused and resumed (its steps are not one contiguous run of the events)."""
    steps = _steps_by_trial(events)
    assert all(s == list(range(1, len(s) + 1)) for s in steps.values())
    if some_paused:
        order = [trial_id for trial_id, _, _ in events]
        assert sum(1 for i, t in enumerate(order) if i == 0 or order[i - 1] != t) > len(steps)


@pytest.mark.slow
@pytest.mark.skipif(not BOHB_INSTALLED, reason="Ray Tune's TuneBOHB needs hpbandster and ConfigSpace")
def test_ray_bohb_with_its_hyperband_completes_trials(ray_session: None) -> None:
    task = make_engine_task("s2-hartmann3", {})
    method = make_engine_method("raytune:bohb+hyperband")
    trace = method.run(task, iterations=6, batch=1, seed=1)
    assert trace.extra is not None and trace.extra["cost_spent"] == 6 * 27
    assert trace.extra["completed"] >= 1 and trace.extra["stopped"] > 0
    _assert_resumed_where_paused(method.events, some_paused=True)
    # After its first bracket (27 trials from one step) HyperBandForBOHB opens the next (12 trials from 3 steps), whose
    # trials stop early too; none is put into the finished bracket's last rung to run the whole budget.
    later = list(_steps_by_trial(method.events).values())[27:]
    assert later and any(len(s) < task.max_steps for s in later)
