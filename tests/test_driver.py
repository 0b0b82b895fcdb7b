"""The driver's bookkeeping without Ray: the searcher adapter and the recorder (``Recorder``) driven through
Ray Tune's method names, in Tune's order (:class:`tests.driver_fakes.Driver`), over a SQLite store in a temp dir.

What the slow end-to-end searches of ``test_scheduling.py`` and ``test_resume_exact.py`` show through Ray, event
by event here: start -> result -> complete, pause -> promote -> complete, a drop beyond ``max_paused``, retries,
the order queue -> promotion -> new suggestion, the trial limit, the searcher's state file.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from automl.interfaces import TrialOutcome
from automl.recorder import TargetStopper
from automl.schedulers import RungScheduler
from automl.searcher_adapter import SearcherAdapter
from automl.trial_job import DEADLINE_REASON, EXPORT_BAR, FINAL, NUMBER, trial_dir
from tests.driver_fakes import LOSS, Clock, Driver, FakeTrial, Promotions, Scripted

FINISHED = SearcherAdapter.FINISHED


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """``time.time`` as the driver-side code reads it, set by the test."""
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


@pytest.fixture
def driver(tmp_path: Path, clock: Clock) -> Iterator[Driver]:
    """FIFO: no scheduler, trials of 3 budget steps, at most 4 trials."""
    d = Driver(tmp_path, Scripted(), limit=4)
    yield d
    d.close()


def promotion(max_paused: int = 64) -> RungScheduler:
    """Promotion-type ASHA with one rung, at budget 1 of 3: the top third of the trials there go on."""
    return RungScheduler([LOSS], max_budget=3, grace_period=1, reduction_factor=3, type="promotion",
                         max_paused=max_paused)


# -- start -> result -> complete ------------------------------------------------------------------


def test_a_trial_is_recorded_at_start_at_each_step_and_at_completion(driver: Driver, clock: Clock) -> None:
    trial = driver.start()
    assert trial.trial_id == "tune_000" and trial.config == {"x": 0.0, NUMBER: 0}
    row = driver.row(0)
    assert (row.status, row.config, row.attempts, row.tune_id, row.started_at, row.max_budget) == (
        "running", {"x": 0.0}, 1, "tune_000", 1000.0, 3)
    clock.advance(2.0)
    driver.report(trial, 1, 0.5)
    driver.report(trial, 2, 0.4)
    assert (driver.row(0).status, driver.row(0).budget, driver.row(0).metrics) == ("running", 2, {"loss": 0.4})
    checkpoint = driver.checkpoint(0)
    clock.advance(3.0)
    driver.complete(trial, 0.3, cost=4.5)
    row = driver.row(0)
    assert row.status == "completed" and row.budget == 3 and row.error is None
    assert row.metrics == {"loss": 0.3, "test_loss": pytest.approx(0.4)}  # Tune's keys and ours are no metric
    assert row.artifact == str(trial_dir(driver.dir, 0) / "model.onnx") and row.timings == {"fit_s": 1.0}
    assert (row.finished_at, row.duration) == (1005.0, 5.0)
    # One step row per budget step: the final report is recorded once, at completion.
    assert [(s.step, s.metrics["loss"]) for s in driver.steps(0)] == [(1, 0.5), (2, 0.4), (3, 0.3)]
    assert not checkpoint.exists()  # only a restart needs it
    told = driver.adapter.strategy.told  # type: ignore[attr-defined]
    assert [(o.number, o.status, o.budget, o.cost_s, o.values["loss"]) for o in told] == [(0, "completed", 3, 4.5, 0.3)]
    assert [r.status for r in driver.notified] == ["running", "running", "running", "completed"]
    c = driver.counts
    assert (c.done, c.running, c.failed, c.stopped, c.best, c.best_number) == (1, 0, 0, 0, 0.3, 0)
    assert driver.progress[-1] == (1, 0, 0)


def test_the_best_completed_trial_is_counted_and_a_target_stopper_ends_the_search(driver: Driver) -> None:
    stopper = TargetStopper(driver.counts, LOSS, target=0.25)
    for loss in (0.4, 0.3):
        driver.complete(driver.start(), loss)
    assert (driver.counts.best, driver.counts.best_number) == (0.3, 1) and not stopper.stop_all()
    driver.report(t := driver.start(), 1, 0.1)  # a step's value is no completed trial's
    assert not stopper.stop_all()
    driver.complete(t, 0.2)
    assert (driver.counts.best, driver.counts.best_number) == (0.2, 2) and stopper.stop_all()
    # Tune saves its stopper with the experiment: the live counts do not travel.
    assert pickle.loads(pickle.dumps(stopper)).counts.best is None


def test_the_export_bar_follows_the_best_completed_trials(tmp_path: Path, clock: Clock) -> None:
    d = Driver(tmp_path, Scripted(), export_top=2)
    d.complete(d.start(), 0.5)
    assert not (tmp_path / EXPORT_BAR).exists()  # fewer than 2 completed: every trial exports
    d.complete(d.start(), 0.3)
    d.complete(d.start(), 0.4)
    assert (tmp_path / EXPORT_BAR).read_text() == '{"metric": "loss", "value": 0.4}'  # the 2nd best of three
    d.close()


def test_a_scheduler_stop_records_the_trial_stopped_at_its_budget(tmp_path: Path, clock: Clock) -> None:
    d = Driver(tmp_path, Scripted(), scheduler=RungScheduler([LOSS], max_budget=3, reduction_factor=3))
    first, second = d.start(), d.start()
    assert d.report(first, 1, 0.1) == "CONTINUE"  # the first at a rung always goes on (stopping type)
    d.checkpoint(1)
    assert d.report(second, 1, 0.9) == "STOP"
    row = d.row(1)
    assert (row.status, row.budget, row.metrics, row.error) == ("stopped", 1, {"loss": 0.9}, None)
    assert not (trial_dir(tmp_path, 1) / "checkpoint").exists()
    assert [(o.number, o.status, o.budget) for o in d.adapter.strategy.told] == [(1, "stopped", 1)]  # type: ignore[attr-defined]
    assert (d.counts.done, d.counts.stopped, d.counts.running, d.counts.paused) == (1, 1, 1, 0)
    d.close()


# -- pause -> promote -> complete; drop beyond max_paused -----------------------------------------


def test_a_paused_trial_is_promoted_under_its_own_number_and_completes_from_its_checkpoint(
    tmp_path: Path, clock: Clock
) -> None:
    d = Driver(tmp_path, Scripted(), scheduler=promotion(), limit=3)
    trials = [d.start() for _ in range(3)]
    for trial, loss in zip(trials, (0.5, 0.7, 0.9), strict=True):
        d.checkpoint(trial.number)
        clock.advance(10.0)
        assert d.report(trial, 1, loss) == "STOP"  # fewer than 3 at the rung, or not in its top third: paused
    assert [d.row(n).status for n in range(3)] == ["paused"] * 3
    assert all((trial_dir(tmp_path, n) / "checkpoint").is_dir() for n in range(3))  # kept for a promotion
    assert (d.counts.paused, d.counts.running, d.counts.done) == (3, 0, 0)
    # The searcher hears of each when it pauses, as stopped at the rung.
    assert [(o.number, o.status, o.budget) for o in d.adapter.strategy.told] == [  # type: ignore[attr-defined]
        (0, "stopped", 1), (1, "stopped", 1), (2, "stopped", 1)]

    clock.advance(100.0)  # time paused is not time run
    promoted = d.start()  # the limit is reached, yet the best of the rung goes on
    assert promoted.config == {"x": 0.0, NUMBER: 0} and promoted.trial_id == "tune_003"
    row = d.row(0)
    assert (row.status, row.tune_id, row.attempts, row.started_at) == ("running", "tune_003", 1, 1000.0)
    assert (d.counts.paused, d.counts.running) == (2, 1)
    assert d.suggest() is None  # nothing promotable while trial 0 runs, but it may change that: ask again
    clock.advance(5.0)
    assert d.report(promoted, 2, 0.4) == "CONTINUE"
    d.complete(promoted, 0.3)
    row = d.row(0)
    assert (row.status, row.budget, row.attempts) == ("completed", 3, 1)
    assert row.duration == pytest.approx(10.0 + 5.0)  # its two pieces, not the 100 s it waited
    assert [s.step for s in d.steps(0)] == [1, 2, 3]  # no step ran twice
    assert not (trial_dir(tmp_path, 0) / "checkpoint").exists()
    # Told again now that it completed: its full-budget result, the one trial number a searcher hears twice.
    told = [(o.number, o.status, o.budget) for o in d.adapter.strategy.told]  # type: ignore[attr-defined]
    assert told[3:] == [(0, "completed", 3)] and len(told) == 4
    assert (d.counts.done, d.counts.paused, d.counts.running, d.counts.best_number) == (1, 2, 0, 0)
    assert d.suggest() == FINISHED  # limit reached, nothing running, nothing promotable
    d.close()


def test_beyond_max_paused_the_paused_trial_least_likely_to_be_promoted_is_stopped_for_good(
    tmp_path: Path, clock: Clock
) -> None:
    d = Driver(tmp_path, Scripted(), scheduler=promotion(max_paused=1))
    worse, better, worst = d.start(), d.start(), d.start()
    for trial in (worse, better, worst):
        d.checkpoint(trial.number)
    d.report(worse, 1, 0.9)
    assert d.row(0).status == "paused" and d.counts.paused == 1
    d.report(better, 1, 0.5)  # two paused, one allowed: trial 0 ranks lower at the rung and goes
    row = d.row(0)
    assert row.status == "stopped" and row.error is not None
    assert "paused, then stopped for good" in row.error and "max_paused" in row.error
    assert not (trial_dir(tmp_path, 0) / "checkpoint").exists()
    assert d.row(1).status == "paused" and (trial_dir(tmp_path, 1) / "checkpoint").is_dir()
    assert (d.counts.paused, d.counts.stopped, d.counts.done) == (1, 1, 1)
    assert [(r.number, r.status) for r in d.notified[-2:]] == [(0, "stopped"), (1, "paused")]  # plugins hear of both
    d.report(worst, 1, 0.95)  # ranks last: stopped at once, never paused; trial 1 keeps its place
    assert d.row(2).status == "stopped" and not (trial_dir(tmp_path, 2) / "checkpoint").exists()
    assert d.row(1).status == "paused"
    assert (d.counts.paused, d.counts.stopped, d.counts.done) == (1, 2, 2)
    d.close()


# -- failures and retries ---------------------------------------------------------------------------


def test_a_retried_trial_counts_its_attempts_and_completes(driver: Driver) -> None:
    trial = driver.start()
    driver.report(trial, 1, 0.5)
    driver.fail(trial, "RuntimeError: first attempt fails", retry=True)
    row = driver.row(0)
    assert (row.status, row.attempts, row.error) == ("running", 2, "retrying after: RuntimeError: first attempt fails")
    driver.restart(trial)
    assert (driver.row(0).attempts, driver.row(0).status) == (2, "running")
    driver.fail(trial, "RuntimeError: second attempt fails", retry=True)
    driver.restart(trial)
    driver.complete(trial, 0.2)
    row = driver.row(0)
    assert (row.status, row.attempts, row.error) == ("completed", 3, None)
    assert [(o.number, o.status) for o in driver.adapter.strategy.told] == [(0, "completed")]  # type: ignore[attr-defined]
    assert (driver.counts.done, driver.counts.running, driver.counts.failed) == (1, 0, 0)


def test_a_failed_trial_keeps_the_reason_its_worker_left(driver: Driver, tmp_path: Path) -> None:
    trial = driver.start()
    driver.report(trial, 1, 0.5)
    driver.fail(trial, "ValueError: bad config")
    row = driver.row(0)
    assert (row.status, row.error, row.budget, row.metrics) == ("failed", "ValueError: bad config", 1, {"loss": 0.5})
    assert [(o.number, o.status) for o in driver.adapter.strategy.told] == [(0, "failed")]  # type: ignore[attr-defined]
    assert (driver.counts.done, driver.counts.failed, driver.counts.running) == (1, 1, 0)
    # A worker that died before writing its reason: the telling line of Tune's error file.
    died = driver.start()
    error_file = tmp_path / "error.txt"
    error_file.write_text("Failure # 1 (occurred at 2026-01-01)\nTraceback (most recent call last):\n"
                          "  File x\nray.exceptions.ActorDiedError: The actor died unexpectedly\n")
    died.error_file = str(error_file)
    driver.fail(died, None)
    # Condensed to its line; Ray's full text kept in the trial's directory (Tune's lives in Ray's session directory).
    assert driver.row(1).error == "ray.exceptions.ActorDiedError: The actor died unexpectedly (Ray's full text: trials/00001/ray_error.txt)"
    # A late second event for a finished trial changes nothing.
    driver.recorder.on_trial_complete(0, [], trial)
    assert driver.row(0).status == "failed" and driver.counts.done == 2


def test_a_trial_killed_before_it_started_keeps_its_config(driver: Driver, tmp_path: Path) -> None:
    trial = driver.suggest()  # handed out, never started; no pending row either (this adapter has no on_issue)
    assert isinstance(trial, FakeTrial) and driver.store.trial(driver.run_id, 0) is None
    (tmp_path / "error.txt").write_text("ray.exceptions.OutOfMemoryError: Task was killed due to the node running "
                                        "low on memory.\nMemory on the node (IP: 10.0.0.1, ID: ab) where the lease "
                                        "(actor ID: cd, name=ImplicitFunc.__init__, pid=4242, memory used=1.20GB) was "
                                        "running was 7.50GB / 7.80GB (0.961), which exceeds the memory usage "
                                        "threshold of 0.95. Ray killed this worker (ID: ef) because ...\n")
    trial.error_file = str(tmp_path / "error.txt")
    driver.fail(trial, None)  # Ray's memory monitor killed it before on_trial_start
    row = driver.row(0)
    assert (row.status, row.config) == ("failed", {"x": 0.0})
    assert row.error == ("killed by Ray's memory monitor (out of memory): node memory 7.50GB / 7.80GB above the "
                         "threshold 0.95; the trial's worker used 1.20GB (Ray's full text: trials/00000/ray_error.txt)")
    assert (trial_dir(tmp_path, 0) / "ray_error.txt").read_text().startswith("ray.exceptions.OutOfMemoryError")


def test_a_trial_ended_by_the_wall_time_is_stopped_with_its_best_step(driver: Driver) -> None:
    trial = driver.start()
    driver.report(trial, 1, 0.4)
    driver.report(trial, 2, 0.6)
    driver.fail(trial, DEADLINE_REASON)
    row = driver.row(0)
    assert (row.status, row.error, row.budget, row.metrics) == ("stopped", DEADLINE_REASON, 1, {"loss": 0.4})
    assert (driver.counts.stopped, driver.counts.failed) == (1, 0)


def test_a_trial_a_killed_driver_left_running_is_restarted_as_another_attempt(tmp_path: Path, clock: Clock) -> None:
    d = Driver(tmp_path, Scripted(), limit=4, first_number=2, queue=[(0, {"x": 0.5}), (1, {"x": 0.6})])
    d.store.save_trial(d.run_id, 0, status="pending", config={"x": 0.5}, started_at=900.0, attempts=1)
    d.store.save_trial(d.run_id, 1, status="pending", config={"x": 0.6})  # handed out, never started
    assert [d.start().number for _ in range(3)] == [0, 1, 2]
    assert [(d.row(n).attempts, d.row(n).status) for n in range(3)] == [(2, "running"), (1, "running"), (1, "running")]
    assert d.adapter.strategy.asked == [2]  # type: ignore[attr-defined]
    d.close()


# -- the adapter: order of what it hands out, the limit ---------------------------------------------


def test_the_queue_comes_before_promotions_and_promotions_before_new_suggestions() -> None:
    asked: list[int | None] = []
    promotable = [4]

    def promote() -> int | None:  # a promotion, once asked for, must be run: it is asked only when due
        asked.append(promotable[0] if promotable else None)
        return promotable.pop() if promotable else None

    strategy = Scripted()
    adapter = SearcherAdapter(strategy, max_budget=3, first_number=5, limit=7, rungs=Promotions(promote),
                              queue=[(2, {"x": 0.5}), (3, {"x": 0.6})], configs={4: {"x": 0.7}})
    given = [adapter.suggest(f"t{i}") for i in range(5)]
    assert [(g[NUMBER], g["x"]) for g in given] == [  # type: ignore[index]
        (2, 0.5), (3, 0.6), (4, 0.7), (5, 0.05), (6, 0.06)]
    assert asked == [4, None, None]  # not asked while the queue held trials
    assert strategy.asked == [5, 6]
    # The limit is reached: while trials run one may make a paused trial promotable, so Tune asks again.
    assert adapter.suggest("t5") is None
    for i in range(5):
        adapter.on_trial_complete(f"t{i}", {"loss": 0.1, "budget": 1})
    assert adapter.suggest("t6") == FINISHED
    assert [(o.number, o.status) for o in strategy.told] == [(n, "stopped") for n in range(2, 7)]


def test_when_no_new_trial_will_come_a_synchronous_scheduler_is_told_and_its_promotions_still_run() -> None:
    from automl.interfaces import Objective
    from automl.schedulers import SynchronousHyperBand

    hb = SynchronousHyperBand([Objective("loss", "min")], max_budget=9)  # first block: 9 trials
    adapter = SearcherAdapter(Scripted(), max_budget=9, limit=4, rungs=hb)
    given = [adapter.suggest(f"t{i}") for i in range(4)]
    for i, g in enumerate(given):
        assert isinstance(g, dict)
        assert hb.decide(g[NUMBER], 1, {"loss": 1 - i / 10}) == "STOP"  # a half-filled block: all pause
    assert adapter.suggest("t4") is None  # trials still run: one may make a paused trial promotable
    for i in range(4):
        adapter.on_trial_complete(f"t{i}", {"loss": 1 - i / 10, "budget": 1})
    # Nothing runs and nothing new comes: the block ranks its 4 trials and the best (floor(4/3) = 1) goes on.
    assert adapter.suggest("t5") == {"x": 0.03, NUMBER: 3}
    assert hb.blocks[(0, 0)].members == range(4)
    assert adapter.suggest("t6") is None  # trial 3 runs on
    adapter.on_trial_complete("t5", {"loss": 0.1, "budget": 9, FINAL: True})
    assert adapter.suggest("t7") == FINISHED


def test_a_synchronous_block_does_not_wait_for_trials_drawn_too_costly_for_the_time_left(clock: Clock) -> None:
    from automl.interfaces import Objective
    from automl.schedulers import SynchronousHyperBand

    hb = SynchronousHyperBand([Objective("loss", "min")], max_budget=9)  # first block: trials 0-8
    cheap, dear = ({"model": "cheap", "x": 0.0}, {"model": "dear", "x": 0.0})
    adapter = SearcherAdapter(Scripted([cheap] * 3 + [dear] * 6 + [cheap] * 3), max_budget=9,
                              deadline=clock.now + 10.0, rungs=hb)
    adapter.costs.add(TrialOutcome(90, {"model": "dear", "x": 0.5}, "completed", {}, 9, 9, 25.0))
    adapter.costs.add(TrialOutcome(91, {"model": "cheap", "x": 0.5}, "completed", {}, 9, 9, 2.0))
    given = [adapter.suggest(f"t{i}") for i in range(3)]
    assert [g[NUMBER] for g in given] == [0, 1, 2]  # type: ignore[index]
    assert adapter.suggest("t3") is None  # five dear draws in a row (3-7): none started
    nine = adapter.suggest("t4")
    assert isinstance(nine, dict) and nine[NUMBER] == 9  # 8 was dear too; 9 opens the next block
    assert hb.blocks[(0, 0)].gone == set(range(3, 9))
    decisions = [hb.decide(g[NUMBER], 1, {"loss": 1 - i / 10}) for i, g in enumerate(given)]  # type: ignore[index]
    # The last report closes the block's first rung (0-2 are all it gets; 3-8 never start): trial 2, the best of
    # the three (floor(3 / 3) = 1 goes on), carries on at once; the others stay paused.
    assert decisions == ["STOP", "STOP", "CONTINUE"]
    assert hb.next_promotion() is None

def test_a_promoted_trial_is_told_again_when_it_completes_but_its_last_piece_is_no_cost() -> None:
    strategy = Scripted()
    adapter = SearcherAdapter(strategy, max_budget=3, rungs=Promotions(lambda: None))
    adapter.tell(TrialOutcome(0, {"x": 0.0}, "stopped", {"loss": 0.5}, 1, 3, 2.0))  # paused at its first rung
    adapter.tell(TrialOutcome(0, {"x": 0.0}, "stopped", {"loss": 0.4}, 2, 3, 1.0))  # paused again: not told
    adapter.tell(TrialOutcome(0, {"x": 0.0}, "completed", {"loss": 0.3}, 3, 3, 1.5))  # promoted and completed
    adapter.tell(TrialOutcome(0, {"x": 0.0}, "completed", {"loss": 0.3}, 3, 3, 1.5))  # told once as completed
    assert [(o.status, o.budget) for o in strategy.told] == [("stopped", 1), ("completed", 3)]
    assert adapter.costs.predict({"x": 0.1}) is None  # 1.5 s was its last piece, not the configuration's cost


def test_a_resume_rebuilds_the_cost_model_without_a_promoted_trials_last_piece() -> None:
    from automl.engine import _History, _tell_past

    strategy = Scripted()
    adapter = SearcherAdapter(strategy, max_budget=3, rungs=Promotions(lambda: None))
    # As restored from a searcher state: 0 was told completed, 1 told stopped at a rung (paused), 2 never told.
    adapter.observed, adapter.paused_told = {0, 1}, {1}

    def row(number: int, seconds: float) -> dict[str, object]:
        return {"number": number, "config": {"x": number / 10}, "status": "completed", "metrics": {"loss": 0.3},
                "budget": 3, "max_budget": 3, "duration": seconds}

    done = [row(0, 4.0), row(1, 1.5), row(2, 6.0)]
    _tell_past(adapter, _History(trials=[], limit=3, done=done, interrupted=[], paused={}, recorded={0, 1, 2}), [])
    assert [(o.number, o.status) for o in strategy.told] == [(1, "completed"), (2, "completed")]
    assert adapter.costs.predict({"x": 0.5}) == 4.0  # trial 0's cost (the state keeps no cost model), not 1.5


def test_the_trial_limit_and_an_exhausted_searcher_finish_the_search() -> None:
    strategy = Scripted()
    adapter = SearcherAdapter(strategy, max_budget=1, limit=2)
    assert [adapter.suggest(f"t{i}") for i in range(3)] == [{"x": 0.0, NUMBER: 0}, {"x": 0.01, NUMBER: 1}, FINISHED]
    assert strategy.asked == [0, 1] and not adapter.exhausted  # never asked beyond the limit
    small = SearcherAdapter(Scripted([{"x": 0.3}]), max_budget=1, limit=5)
    assert [small.suggest("a"), small.suggest("b")] == [{"x": 0.3, NUMBER: 0}, FINISHED]
    assert small.exhausted and small.next_number == 1


def test_each_outcome_is_told_once_and_only_for_a_trial_it_handed_out() -> None:
    strategy = Scripted()
    adapter = SearcherAdapter(strategy, max_budget=3)
    adapter.suggest("a")
    adapter.on_trial_complete("unknown", {"loss": 1.0})  # not one of the adapter's trials
    adapter.on_trial_complete("a", {"loss": 0.2, "budget": 3, FINAL: True})
    adapter.on_trial_complete("a", {"loss": 0.2, "budget": 3, FINAL: True})
    adapter.tell(TrialOutcome(0, {"x": 0.0}, "failed"))
    assert [(o.number, o.status, dict(o.values)) for o in strategy.told] == [(0, "completed", {"loss": 0.2})]


# -- the searcher's state: flushed, loaded, pickled --------------------------------------------------


def test_the_searchers_state_is_flushed_at_most_every_save_every_seconds_and_at_the_end(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monotonic = Clock(100.0)
    monkeypatch.setattr(time, "monotonic", monotonic)
    state = tmp_path / "searcher.pkl"
    d = Driver(tmp_path, Scripted(), state_path=state, save_every=5.0)
    first = d.start()
    assert SearcherAdapter.load_state(state)["next_number"] == 1  # type: ignore[index]  # first change: written
    monotonic.advance(1.0)
    d.start()
    d.complete(first, 0.2)
    assert SearcherAdapter.load_state(state)["next_number"] == 1  # type: ignore[index]  # within save_every
    monotonic.advance(4.0)
    d.recorder.on_step_begin(0, [])  # Tune's loop: the recorder lets the adapter write when due
    saved = SearcherAdapter.load_state(state)
    assert saved is not None and saved["next_number"] == 2 and saved["observed"] == {0}
    assert [o.number for o in saved["strategy"].told] == [0]
    d.start()
    d.adapter.flush()  # the end of the search: written whatever the time
    assert SearcherAdapter.load_state(state)["next_number"] == 3  # type: ignore[index]
    assert SearcherAdapter.load_state(tmp_path / "none.pkl") is None
    d.close()


def test_a_new_driver_goes_on_from_the_saved_state(tmp_path: Path) -> None:
    state = tmp_path / "searcher.pkl"
    first = SearcherAdapter(Scripted(), max_budget=1, state_path=state, save_every=0.0)
    for i in range(3):
        first.suggest(f"t{i}")
    first.on_trial_complete("t0", {"loss": 0.5, "budget": 1, FINAL: True})
    saved = SearcherAdapter.load_state(state)
    assert saved is not None
    # As engine._tune rebuilds it: the saved strategy, numbers after those handed out, the outcomes it knew.
    again = SearcherAdapter(saved["strategy"], max_budget=1, first_number=saved["next_number"], limit=5,
                            queue=[(1, {"x": 0.01}), (2, {"x": 0.02})])
    again.observed = set(saved["observed"])
    again.tell(TrialOutcome(0, {"x": 0.0}, "completed", {"loss": 0.5}))  # already known: not told twice
    numbers = [again.suggest(f"u{i}")[NUMBER] for i in range(4)]  # type: ignore[index]
    assert numbers == [1, 2, 3, 4] and again.suggest("u4") == FINISHED
    strategy = again.strategy
    assert strategy.asked == [0, 1, 2, 3, 4] and [o.number for o in strategy.told] == [0]  # type: ignore[attr-defined]


def test_tune_may_pickle_the_adapter_and_the_recorder_without_their_live_parts(driver: Driver, tmp_path: Path) -> None:
    trial = driver.start()
    driver.report(trial, 1, 0.5)
    recorder = pickle.loads(pickle.dumps(driver.recorder))
    assert (recorder.store, recorder.notify, recorder.adapter, recorder.on_progress) == (None, None, None, None)
    assert recorder.counts.running == 1 and recorder.segment == driver.recorder.segment
    adapter = pickle.loads(pickle.dumps(driver.adapter))
    assert adapter.on_issue is None and adapter.live == {"tune_000": (0, {"x": 0.0})}
    checkpoint = tmp_path / "tune-searcher.pkl"
    driver.adapter.save(str(checkpoint))
    assert pickle.loads(checkpoint.read_bytes()) == (1, [])
    with pytest.raises(NotImplementedError, match="own store"):
        driver.adapter.restore(str(checkpoint))

