"""Asynchronous HyperBand without a Ray cluster: brackets, shares, decisions per bracket, replay."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from automl.interfaces import Objective
from automl.schedulers import HyperBand, RungScheduler, SynchronousHyperBand

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


# -- synchronous HyperBand ----------------------------------------------------------------------------------------


def _sync(**options: object) -> SynchronousHyperBand:
    return SynchronousHyperBand(LOSS, max_budget=27, grace_period=1, reduction_factor=3, brackets=3, **options)  # type: ignore[arg-type]


def test_synchronous_blocks_follow_li_et_al_sizes_most_aggressive_first() -> None:
    hb = _sync()
    assert hb.promotes and hb.type == "synchronous"
    # S = 3 rungs in the first bracket; a bracket with s rungs takes ceil((S + 1) / (s + 1) * 3^s) trials.
    assert hb.sizes == [27, 12, 6] and hb.round == 45
    assert [hb.block_of(n) for n in (0, 26, 27, 38, 39, 44, 45, 90)] == [
        (0, 0), (0, 0), (0, 1), (0, 1), (0, 2), (0, 2), (1, 0), (2, 0)]
    assert hb.bracket_of(40) == 2 and _sync().block_of(71) == hb.block_of(71)  # from the number alone


def test_a_synchronous_rung_promotes_its_top_third_only_once_every_member_reported() -> None:
    hb = _sync()
    losses = np.random.default_rng(3).random(27)
    best = sorted(range(26), key=lambda n: losses[n])
    for n in range(26):  # all but the last member: every one pauses, even the best so far (never on a half rung)
        assert hb.decide(n, 1, {"loss": float(losses[n])}) == STOP
        assert not hb.has_promotion()
    assert set(hb.paused) == set(range(26))
    # A trial of the next block is judged in its own block: it does not close this rung.
    assert hb.decide(27, 3, {"loss": 0.0}) == STOP and not hb.has_promotion()
    # The last member is worse than all: the rung closes and the top floor(27/3) = 9 (of the other 26) go on.
    assert hb.decide(26, 1, {"loss": 2.0}) == STOP
    promoted = []
    while (n := hb.next_promotion()) is not None:
        promoted.append(n)
    assert sorted(promoted) == sorted(best[:9])
    # At the next rung: nobody goes on until the 9 promoted have reported.
    for n in promoted[:-1]:
        assert hb.decide(n, 3, {"loss": float(losses[n])}) == STOP
    assert hb.next_promotion() is None
    assert hb.decide(promoted[-1], 3, {"loss": -1.0}) == CONTINUE  # the last one is the best: it goes on at once
    again = []
    while (n := hb.next_promotion()) is not None:
        again.append(n)
    # floor(9/3) = 3 go on from rung 3: the last arrival at once, the next two best re-issued.
    ranked = sorted(promoted[:-1], key=lambda n: losses[n])
    assert sorted(again) == sorted(ranked[:2])


def test_a_failed_or_unrankable_member_is_not_waited_for() -> None:
    hb = _sync()
    for n in range(24):
        hb.decide(n, 1, {"loss": n / 100})
    hb.trials_ended([24])  # failed before its first rung
    assert hb.decide(25, 1, {"loss": float("nan")}) == STOP and 25 not in hb.paused  # cannot be ranked: ends
    assert not hb.has_promotion()
    hb.decide(26, 1, {"loss": 0.5})
    promoted = []
    while (n := hb.next_promotion()) is not None:
        promoted.append(n)
    assert sorted(promoted) == list(range(8))  # floor(25 / 3) = 8 of the 25 ranked


def test_no_more_trials_closes_the_open_rungs_with_what_they_hold() -> None:
    hb = _sync()
    for n in range(7):
        hb.decide(n, 1, {"loss": 1 - n / 10})
    assert not hb.has_promotion()
    hb.no_more_trials(7)  # the trial budget ends at 7: members 7..26 will never come
    assert hb.next_promotion() == 6 and hb.next_promotion() == 5 and hb.next_promotion() is None  # floor(7/3) = 2
    assert hb.blocks[(0, 0)].members == range(7)


def test_synchronous_replay_rebuilds_blocks_promotions_and_pauses() -> None:
    live = _sync()
    losses = np.random.default_rng(5).random(60)
    rows = []
    running = list(range(50))
    while running:
        n = running.pop(0)
        start = max((r["step"] for r in rows if r["number"] == n), default=0) + 1
        for step in range(start, 28):
            value = {"loss": float(losses[n]) + 1 / step}
            rows.append({"number": n, "step": step, "metrics": value})
            if step < 27 and live.decide(n, step, value) == STOP:
                break
        while (p := live.next_promotion()) is not None:
            running.append(p)
    replayed = _sync()
    replayed.replay(rows, paused=live.paused)
    assert replayed.recorded == live.recorded and replayed.paused == live.paused
    assert {k: b.promoted for k, b in replayed.blocks.items()} == {k: b.promoted for k, b in live.blocks.items()}
    assert sum(1 for n in range(27) if max(r["step"] for r in rows if r["number"] == n) == 27) == 1


def test_the_hyperband_plugin_builds_the_synchronous_type_and_refuses_others() -> None:
    from automl.builtin.schedulers import hyperband

    assert isinstance(hyperband(LOSS, max_budget=27, type="synchronous"), SynchronousHyperBand)
    assert not isinstance(hyperband(LOSS, max_budget=27, type="promotion"), SynchronousHyperBand)
    with pytest.raises(ValueError, match="stopping, promotion, synchronous"):
        hyperband(LOSS, max_budget=27, type="sync")  # type: ignore[arg-type]
