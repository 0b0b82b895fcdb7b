"""The rung scheduler without a Ray cluster: Ray's ASHA decisions for one objective, MO-ASHA for several."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.schedulers.async_hyperband import _Bracket

from automl.interfaces import Objective
from automl.schedulers import RungScheduler, rung_milestones
from automl.searcher_adapter import outcome_of
from automl.trial_job import FINAL

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


# -- promotion type (Li et al. 2020, Algorithm 2) ------------------------------------------------


def promotion(rf: float = 3, max_budget: int = 9, **kw: object) -> RungScheduler:
    return RungScheduler([Objective("loss", "min")], max_budget=max_budget, reduction_factor=rf,
                         type="promotion", **kw)  # type: ignore[arg-type]


def test_promotion_pauses_until_a_rung_holds_rf_trials() -> None:
    s = promotion()
    assert s.promotes and s.milestones == [1, 3]
    # The first trials at a rung never go on by themselves (stopping-type ASHA lets the first one through).
    assert s.decide(0, 1, {"loss": 0.5}) == STOP
    assert s.decide(1, 1, {"loss": 0.4}) == STOP
    assert s.paused == {0: 1, 1: 1} and s.next_promotion() is None
    # The third makes floor(3/3) = 1 place: the newcomer is the best, so it goes on at once.
    assert s.decide(2, 1, {"loss": 0.1}) == CONTINUE
    assert s.next_promotion() is None
    # Three worse newcomers open a second place: the best paused trial (1) is promoted, once.
    for n in (3, 4, 5):
        assert s.decide(n, 1, {"loss": 0.9}) == STOP
    assert s.has_promotion() and s.next_promotion() == 1
    assert not s.has_promotion() and s.next_promotion() is None
    assert 1 not in s.paused and s.promoted[1] == {1, 2}
    # A promoted trial's later reports below the next rung do not decide again.
    assert s.decide(1, 2, {"loss": 0.99}) == CONTINUE


def test_promotion_serves_the_highest_rung_first() -> None:
    s = promotion(max_budget=27)  # rungs 1, 3, 9
    for n, loss in enumerate([0.1, 0.2, 0.5, 0.6, 0.7, 0.8]):  # 0 and 1 arrive first and wait
        assert s.decide(n, 1, {"loss": loss}) == STOP
    for n, loss in [(10, 0.5), (11, 0.6), (12, 0.7)]:  # three at rung 3: 10 may go on
        assert s.decide(n, 3, {"loss": loss}) == STOP
    assert [s.next_promotion() for _ in range(4)] == [10, 0, 1, None]


def test_the_top_of_every_rung_ends_up_promoted_and_nothing_else_jumps_the_queue() -> None:
    rng = np.random.default_rng(0)
    s = promotion(max_budget=27)
    quality = rng.random(60)
    budget: dict[int, int] = {}
    running: list[int] = []
    fresh = iter(range(60))
    promoted_when: list[tuple[int, int, list[int]]] = []  # (number, milestone, top at the time)

    def next_job() -> int | None:
        top = {m: s._ranked(m)[: len(s.recorded[m]) // 3] for m in s.milestones}
        n = s.next_promotion()
        if n is not None:
            m = max(m for m in s.milestones if n in s.promoted[m])
            promoted_when.append((n, m, list(top[m])))
            return n
        return next(fresh, None)

    for _ in range(2):  # two workers
        job = next_job()
        assert job is not None
        running.append(job)
    while running:
        n = running.pop(0)
        budget[n] = budget.get(n, 0) + 1
        if budget[n] < 27 and s.decide(n, budget[n], {"loss": float(quality[n] / budget[n])}) == CONTINUE:
            running.append(n)
            continue
        job = next_job()
        if job is not None:
            running.append(job)
    for n, m, top in promoted_when:  # each promotion was within the top floor(n/rf) of its rung then
        assert n in top, (n, m)
    for m in s.milestones:  # and once drained, the rung's top floor(n/rf) have all gone on
        assert set(s._ranked(m)[: len(s.recorded[m]) // 3]) <= s.promoted[m]
    assert len(s.recorded[1]) == 60 and 2 <= len(s.recorded[9]) <= 20
    assert min(budget, key=lambda k: quality[k]) in {n for n, b in budget.items() if b == 27}


def test_max_paused_drops_the_paused_trial_least_likely_to_be_promoted() -> None:
    s = promotion(max_paused=2)
    s.decide(0, 1, {"loss": 0.2})
    s.decide(1, 1, {"loss": 0.9})
    assert s.take_dropped() == []
    s.decide(2, 1, {"loss": 0.5})  # rung 1 holds 3: 0 is promotable (kept), 1 ranks last
    assert s.take_dropped() == [1]
    assert set(s.paused) == {0, 2} and 1 in s.stopped
    assert s.take_dropped() == []


def test_promotion_replay_rebuilds_promoted_and_paused_trials_from_the_store() -> None:
    s = promotion()
    rows = [{"number": n, "step": 1, "metrics": {"loss": loss}} for n, loss in enumerate([0.5, 0.4, 0.1, 0.9])]
    rows += [{"number": 2, "step": 2, "metrics": {"loss": 0.05}}]  # 2 went on from rung 1
    s.replay(rows, paused={0: 1, 1: 1})  # 3 was stopped for good: not paused
    assert s.promoted[1] == {2} and s.paused == {0: 1, 1: 1}
    assert s.decide(4, 1, {"loss": 0.95}) == STOP
    assert s.decide(5, 1, {"loss": 0.95}) == STOP  # rung 1 holds 6: places for 2 (2, then 1)
    assert s.next_promotion() == 1


def test_multi_objective_promotion_ranks_by_front_then_crowding() -> None:
    s = RungScheduler([Objective("a", "min"), Objective("b", "min")], max_budget=9, type="promotion")
    for n, (a, b) in enumerate([(0.9, 0.9), (0.8, 0.95), (0.1, 0.1)]):
        expected = CONTINUE if n == 2 else STOP
        assert s.decide(n, 1, {"a": a, "b": b}) == expected
    assert s.next_promotion() is None


@pytest.mark.parametrize("bad", [{"type": "hyperband"}, {"max_paused": 0}])
def test_bad_promotion_options(bad: dict) -> None:
    with pytest.raises(ValueError):
        RungScheduler([Objective("loss", "min")], max_budget=9, **bad)
