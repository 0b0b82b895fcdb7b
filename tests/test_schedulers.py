"""The rung scheduler without a Ray cluster: Ray's ASHA decisions for one objective, MO-ASHA for several."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.schedulers.async_hyperband import _Bracket

from automl.interfaces import Objective
from automl.schedulers import RungScheduler, rung_milestones
from automl.tune_adapter import FINAL, outcome_of

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


def test_milestones() -> None:
    assert rung_milestones(1, 3, 27) == [1, 3, 9]
    assert rung_milestones(2, 2, 20) == [2, 4, 8, 16]
    assert rung_milestones(5, 3, 5) == []


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mode", ["min", "max"])
def test_single_objective_decisions_match_rays_asha(seed: int, mode: str) -> None:
    rng = np.random.default_rng(seed)
    ours = RungScheduler([Objective("m", mode)], max_budget=27, grace_period=1, reduction_factor=3)
    rays = _Bracket(min_t=1, max_t=27, reduction_factor=3, s=0)
    sign = 1.0 if mode == "max" else -1.0  # Ray's bracket maximises
    quality = rng.random(40)
    budget = {n: 0 for n in range(40)}
    alive = set(budget)
    decisions = 0
    while alive:
        n = int(rng.choice(sorted(alive)))
        budget[n] += 1
        if budget[n] >= 27:
            alive.discard(n)
            continue
        value = float(quality[n] + rng.normal(0, 0.05) + 0.1 * np.log(budget[n]) * sign)
        a = ours.decide(n, budget[n], {"m": value})
        b = rays.on_result(SimpleNamespace(trial_id=n), budget[n], sign * value)
        assert a == b, f"trial {n} at budget {budget[n]}"
        decisions += a == STOP
        if a == STOP:
            alive.discard(n)
    assert decisions > 10  # the comparison exercised stops, not only continues


def test_moasha_keeps_the_non_dominated_and_stops_the_dominated() -> None:
    s = RungScheduler([Objective("loss", "min"), Objective("cost", "min")], max_budget=9, reduction_factor=3)
    # Three trials on a trade-off, then one dominated by all of them: it must stop at the first rung.
    for n, (loss, cost) in enumerate([(0.1, 0.9), (0.5, 0.5), (0.9, 0.1)]):
        s.decide(n, 1, {"loss": loss, "cost": cost})
    assert s.decide(3, 1, {"loss": 0.95, "cost": 0.95}) == STOP
    # A newcomer that dominates everyone goes on.
    assert s.decide(4, 1, {"loss": 0.05, "cost": 0.05}) == CONTINUE
    # Decided once per rung: a repeat report at the same rung does not re-decide.
    assert s.decide(4, 2, {"loss": 0.99, "cost": 0.99}) == CONTINUE


def test_moasha_uses_crowding_within_the_first_front() -> None:
    s = RungScheduler([Objective("a", "min"), Objective("b", "min")], max_budget=9, reduction_factor=3)
    front = [(0.0, 1.0), (1.0, 0.0), (0.5, 0.5), (0.26, 0.74)]
    for n, (a, b) in enumerate(front):
        s.decide(n, 1, {"a": a, "b": b})
    # Five points on one front; ceil(6/3) = 2 places go to the extremes (infinite crowding).
    assert s.decide(9, 1, {"a": 0.25, "b": 0.75}) == STOP


def test_missing_or_nan_objectives_do_not_decide() -> None:
    s = RungScheduler([Objective("loss", "min")], max_budget=9)
    assert s.decide(0, 1, {"other": 1.0}) == CONTINUE
    assert s.decide(0, 1, {"loss": float("nan")}) == CONTINUE
    assert s.recorded[1] == {}


def test_replay_rebuilds_the_rungs() -> None:
    s = RungScheduler([Objective("loss", "min")], max_budget=9)
    rows = [{"number": n, "step": 1, "metrics": {"loss": float(n)}} for n in range(5)]
    s.replay(rows)
    assert set(s.recorded[1]) == {0, 1, 2, 3, 4}
    assert s.decide(9, 1, {"loss": 10.0}) == STOP


@pytest.mark.parametrize("bad", [{"reduction_factor": 1}, {"grace_period": 0}, {"grace_period": 10}])
def test_bad_options(bad: dict) -> None:
    with pytest.raises(ValueError):
        RungScheduler([Objective("loss", "min")], max_budget=9, **bad)


def test_stopped_trials_are_told_as_stopped_not_completed() -> None:
    assert outcome_of(1, {}, {"loss": 0.5, "budget": 3}, False, 9).status == "stopped"
    assert outcome_of(1, {}, {"loss": 0.5, "budget": 9, FINAL: True}, False, 9).status == "completed"
    assert outcome_of(1, {}, {"loss": 0.5, "budget": 3}, True, 9).status == "failed"
