"""Asynchronous HyperBand without a Ray cluster: brackets, shares, decisions per bracket, replay."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from automl.interfaces import Objective
from automl.schedulers import HyperBand, RungScheduler

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
LOSS = [Objective("loss", "min")]


def test_brackets_grow_their_grace_period_and_share_trials_as_hyperband_does() -> None:
    hb = HyperBand(LOSS, max_budget=27, grace_period=1, reduction_factor=3, brackets=3)
    assert [b.milestones for b in hb.brackets] == [[1, 3, 9], [3, 9], [9]]
    assert hb.milestones == [1, 3, 9]
    # Li et al.: a bracket with s rungs gets rf^s / (s + 1): 27/4, 9/3, 3/2.
    expected = np.array([27 / 4, 9 / 3, 3 / 2])
    assert np.allclose(hb.shares, expected / expected.sum())
    counts = np.bincount([hb.bracket_of(n) for n in range(3000)], minlength=3) / 3000
    assert np.allclose(counts, hb.shares, atol=0.01)
    # The bracket follows from the trial number alone: a new scheduler (a resumed search) agrees.
    again = HyperBand(LOSS, max_budget=27, grace_period=1, reduction_factor=3, brackets=3)
    assert [again.bracket_of(n) for n in range(100)] == [hb.bracket_of(n) for n in range(100)]


def test_no_more_brackets_than_rungs_and_options_are_checked() -> None:
    assert len(HyperBand(LOSS, max_budget=4, grace_period=1, reduction_factor=3, brackets=5).brackets) == 2
    assert len(HyperBand(LOSS, max_budget=27, brackets=1).brackets) == 1
    with pytest.raises(ValueError, match="brackets"):
        HyperBand(LOSS, max_budget=27, brackets=0)
    with pytest.raises(ValueError, match="reduction_factor"):
        HyperBand(LOSS, max_budget=27, reduction_factor=1)


def _numbers_in(hb: HyperBand, bracket: int, count: int) -> list[int]:
    return [n for n in range(1000) if hb.bracket_of(n) == bracket][:count]


def test_a_trial_is_judged_only_at_its_brackets_rungs_and_against_its_bracket() -> None:
    hb = HyperBand(LOSS, max_budget=27, grace_period=1, reduction_factor=3, brackets=3)
    patient = _numbers_in(hb, 2, 6)  # grace period 9
    for i, n in enumerate(patient):
        for step in (1, 2, 3, 4):  # below its first rung: never stopped, however bad
            assert hb.decide(n, step, {"loss": 100.0 + i}) == CONTINUE
    eager = _numbers_in(hb, 0, 6)  # grace period 1
    assert hb.decide(eager[0], 1, {"loss": 0.1}) == CONTINUE
    assert hb.decide(eager[1], 1, {"loss": 0.05}) == CONTINUE  # better than all recorded: goes on
    assert hb.decide(eager[2], 1, {"loss": 0.9}) == STOP
    # Trial losses of another bracket at the same rung never enter this bracket's comparison.
    assert hb.brackets[1].recorded[3] == {}
    assert eager[2] in hb.stopped and not set(patient) & hb.stopped


def test_replay_rebuilds_the_same_rungs_and_stops() -> None:
    rng = np.random.default_rng(0)
    live = HyperBand(LOSS, max_budget=27, grace_period=1, reduction_factor=3, brackets=3)
    rows = []
    for step in range(1, 27):
        for n in range(30):
            if n in live.stopped:
                continue
            value = {"loss": float(rng.random())}
            live.decide(n, step, value)
            rows.append({"number": n, "step": step, "metrics": value})
    replayed = HyperBand(LOSS, max_budget=27, grace_period=1, reduction_factor=3, brackets=3)
    replayed.replay(rows)
    assert replayed.stopped == live.stopped and replayed.recorded == live.recorded
    assert len(live.stopped) > 5


def test_promotion_type_pauses_and_promotes_within_a_bracket() -> None:
    hb = HyperBand(LOSS, max_budget=9, grace_period=1, reduction_factor=3, brackets=2, type="promotion")
    assert isinstance(hb, RungScheduler) and hb.promotes
    first = _numbers_in(hb, 0, 4)
    for i, n in enumerate(first[:3]):
        hb.decide(n, 1, {"loss": [0.5, 0.2, 0.9][i]})
    assert set(hb.paused) == set(first[:3])  # nobody promotable yet (3 recorded: top floor(3/3) = 1)...
    assert hb.next_promotion() == first[1]  # ...now the best of them is: re-issued once
    assert hb.next_promotion() is None
    assert first[1] not in hb.paused
