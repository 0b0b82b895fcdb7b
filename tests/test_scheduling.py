"""Scheduling, faults and resume end to end (shared Ray session; kill -9 in a subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl.errors import AutoMLError, SpecError
from automl.run import Run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]
ROOT = Path(__file__).resolve().parents[1]

SPEC = """
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:{function}", metrics: {{loss: min, cost: min}}, steps: {steps}}}
space:
  x: {{type: float, low: 0, high: 1}}
{extra_space}
objectives:
{objectives}
scheduler: {scheduler}
budget: {budget}
seed: 1
"""


def spec(write_spec: Callable[..., Path], *, function: str = "fidelity", steps: int = 1, extra_space: str = "",
         objectives: str = "  - {metric: loss, mode: min}", scheduler: str = "{name: fifo}",
         budget: str = "{trials: 8}", resources: str = "", name: str = "spec.yaml") -> Path:
    text = SPEC.format(function=function, steps=steps, extra_space=extra_space, objectives=objectives,
                       scheduler=scheduler, budget=budget)
    return write_spec(text + (f"resources: {resources}\n" if resources else ""), name)


def statuses(run: Run) -> Counter[str]:
    return Counter(t["status"] for t in run.trials())


def test_asha_stops_weak_trials_and_marks_them(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = spec(write_spec, steps=9, scheduler="{name: asha, options: {grace_period: 1, reduction_factor: 3}}",
                budget="{trials: 18}")
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    stopped = [t for t in trials if t["status"] == "stopped"]
    completed = [t for t in trials if t["status"] == "completed"]
    assert stopped and completed and len(stopped) + len(completed) == 18
    assert all(t["budget"] < 9 for t in stopped) and all(t["budget"] == 9 for t in completed)
    # Stopped trials reported at each step up to where they stopped, and are not on the front.
    for t in stopped:
        assert [s["step"] for s in run.steps(t["number"])] == list(range(1, t["budget"] + 1))
    assert {m["number"] for m in run.front()["members"]} <= {t["number"] for t in completed}
    # Successive halving keeps the better configs: the best completed x beats the median stopped x.
    stopped_x = sorted(t["config"]["x"] for t in stopped)
    assert min(t["config"]["x"] for t in completed) < stopped_x[len(stopped_x) // 2]


def test_hyperband_judges_each_trial_at_its_own_brackets_rungs(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    from automl.schedulers import HyperBand

    path = spec(write_spec, steps=9, scheduler="{name: hyperband, options: {grace_period: 1, reduction_factor: 3}}",
                budget="{trials: 18}")
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 18 and set(statuses(run)) <= {"completed", "stopped"}
    assert statuses(run)["completed"] >= 1
    hb = HyperBand([automl.Objective("loss", "min")], max_budget=9, grace_period=1, reduction_factor=3)
    assert [b.milestones for b in hb.brackets] == [[1, 3], [3]]
    for t in trials:
        if t["status"] == "stopped":  # stopped at a rung of its own bracket, never earlier
            assert t["budget"] in hb.brackets[hb.bracket_of(t["number"])].milestones


def test_the_wall_time_ends_a_running_step_and_keeps_the_trials_best_step(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    from automl.trial_job import DEADLINE_REASON

    path = spec(write_spec, function="stalls", steps=3, budget="{trials: 2, wall_time: 20s}",
                resources="{max_concurrent: 2}")  # both trials stall at once
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    assert [t["status"] for t in trials] == ["stopped", "stopped"]
    for t in trials:  # step 2 never ends: the trial keeps the step it finished, the reason says why
        steps = [s["step"] for s in run.steps(t["number"])]
        assert t["error"] == DEADLINE_REASON and steps in ([], [1]) and t["budget"] == (1 if steps else None)
        if steps:  # step 1 ends at once, unless the machine is too loaded to start the trial within the 20 s
            assert t["metrics"]["loss"] == pytest.approx(t["config"]["x"])
    assert run.info()["status"] == "failed"  # nothing completed: no front


def test_moasha_on_two_objectives(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = spec(write_spec, function="two_objectives", steps=9, scheduler="{name: moasha}", budget="{trials: 12}",
                objectives="  - {metric: loss, mode: min}\n  - {metric: cost, mode: min}")
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    # Whichever trial reaches a rung first: the first at a rung always goes on, and the second is always stopped
    # (all points of this trade-off are non-dominated; the one recorded first wins the crowding tie).
    counts = statuses(run)
    assert counts["stopped"] > 0 and counts["completed"] > 0 and counts["stopped"] + counts["completed"] == 12
    # Every stop was MO-ASHA's decision on the results in the order they arrived (the store's `at`), whatever it was.
    from automl.schedulers import RungScheduler

    replayed = RungScheduler([automl.Objective("loss", "min"), automl.Objective("cost", "min")], max_budget=9)
    replayed.replay(sorted(run.steps(), key=lambda r: r["at"]))
    assert replayed.stopped == {t["number"] for t in trials if t["status"] == "stopped"}
    assert all(t["budget"] in (1, 3) for t in trials if t["status"] == "stopped")
    # At full budget loss + cost is the same for every x: each completed trial is on the front, none dominates.
    assert {m["number"] for m in run.front()["members"]} == {t["number"] for t in trials if t["status"] == "completed"}


PROMOTION = "{name: asha, options: {type: promotion, grace_period: 1, reduction_factor: 3}}"


def assert_rungs_promoted_their_top(run: Run, milestones: list[int], rf: int = 3) -> None:
    """Li et al.'s invariant once a promotion-type search drains: the top floor(n/rf) at each rung went on."""
    steps = run.steps()
    furthest = Counter[int]()
    for s in steps:
        furthest[s["number"]] = max(furthest[s["number"]], s["step"])
    for m in milestones:
        at = sorted((s["metrics"]["loss"], s["number"]) for s in steps if s["step"] == m)
        top = [n for _, n in at[: len(at) // rf]]
        assert top and all(furthest[n] > m for n in top), (m, top)


def test_promotion_asha_pauses_trials_and_continues_them_from_their_checkpoints(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    run = automl.search(spec(write_spec, steps=9, scheduler=PROMOTION, budget="{trials: 27}"), out=tmp_path / "run")
    trials = run.trials()
    counts = statuses(run)
    assert counts["completed"] >= 3 and counts["completed"] + counts["stopped"] == 27
    for t in trials:  # promoted trials went on from their checkpoints: no budget step ran twice
        assert [s["step"] for s in run.steps(t["number"])] == list(range(1, t["budget"] + 1)), t["number"]
        if t["status"] == "stopped":
            assert "paused" in t["error"]
    assert_rungs_promoted_their_top(run, [1, 3])
    # No trial went past a rung before that rung held rf trials (stopping-type ASHA lets the first one through).
    steps = run.steps()
    for m in (1, 3):
        arrivals = sorted(s["at"] for s in steps if s["step"] == m)
        for s in steps:
            if s["step"] == m + 1:
                assert sum(a <= s["at"] for a in arrivals) >= 3, (m, s["number"])
    assert not list((tmp_path / "run" / "trials").glob("*/checkpoint"))  # a finished search keeps none
    assert {m["number"] for m in run.front()["members"]} <= {t["number"] for t in trials if t["status"] == "completed"}


def test_synchronous_hyperband_promotes_each_blocks_exact_top_whatever_the_arrival_order(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    scheduler = "{name: hyperband, options: {type: synchronous, grace_period: 1, reduction_factor: 3}}"
    run = automl.search(spec(write_spec, steps=9, scheduler=scheduler, budget="{trials: 12}"), out=tmp_path / "run")
    trials = {t["number"]: t for t in run.trials()}
    assert sorted(trials) == list(range(12)) and set(statuses(run)) == {"completed", "stopped"}
    for t in trials.values():  # promoted trials went on from their checkpoints: no budget step ran twice
        assert [s["step"] for s in run.steps(t["number"])] == list(range(1, t["budget"] + 1)), t["number"]

    def by_x(numbers: range) -> list[int]:
        return sorted(numbers, key=lambda n: trials[n]["config"]["x"])

    # Blocks of 9 (rungs 1 and 3) and 5 trials (rung 3), cut to 3 when the trial budget ends at 12. A rung ranks
    # only its whole block, so the loss (x + 1/step) alone decides, not which trial reported first: in the first
    # block the best 3 of 9 reach rung 3 and the best of those completes; in the second the best of 3 completes.
    first, second = by_x(range(9)), by_x(range(9, 12))
    assert {n for n, t in trials.items() if t["status"] == "completed"} == {first[0], second[0]}
    assert sorted(trials[n]["budget"] for n in first) == [1] * 6 + [3, 3, 9]
    assert [trials[n]["budget"] for n in second] == [9, 3, 3]


def test_a_scheduler_that_needs_steps_is_refused_for_a_one_step_trainer(write_spec: Callable[..., Path]) -> None:
    with pytest.raises(SpecError, match="one step per trial") as info:
        automl.validate(spec(write_spec, steps=1, scheduler="{name: asha}"))
    assert info.value.field == "scheduler.name"
    with pytest.raises(SpecError, match="valid options: grace_period, reduction_factor"):
        automl.validate(spec(write_spec, steps=3, scheduler="{name: asha, options: {eta: 3}}"))


def test_worker_crash_timeout_and_retry_are_recorded(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    crash = automl.search(spec(write_spec, function="crash", budget="{trials: 6}",
                               extra_space="  die: {type: choice, values: [true, false]}"), out=tmp_path / "crash")
    failed = [t for t in crash.trials() if t["status"] == "failed"]
    assert failed and all(t["config"]["die"] for t in failed)
    assert all(t["error"] for t in failed)
    assert 0 < statuses(crash)["completed"] == 6 - len(failed)

    slow = spec(write_spec, function="sleepy", extra_space="  sleep: {type: choice, values: [0.0, 30.0]}",
                budget="{trials: 4, trial_timeout: 3s}", name="slow.yaml")
    run = automl.search(slow, out=tmp_path / "timeout")
    for t in run.trials():
        if t["config"]["sleep"] > 0:
            assert t["status"] == "failed" and "exceeded trial_timeout of 3s" in t["error"]
        else:
            assert t["status"] == "completed"

    token = uuid.uuid4().hex
    retry = spec(write_spec, function="fails_once", extra_space=f"  token: {{type: choice, values: ['{token}']}}",
                 budget="{trials: 3, max_failures: 1}", name="retry.yaml")
    run = automl.search(retry, out=tmp_path / "retry")
    assert statuses(run) == {"completed": 3}
    assert all(t["attempts"] == 2 for t in run.trials())
    no_retry = spec(write_spec, function="fails_once", extra_space=f"  token: {{type: choice, values: ['{token}x']}}",
                    budget="{trials: 3}", name="noretry.yaml")
    run = automl.search(no_retry, out=tmp_path / "noretry")
    assert statuses(run) == {"failed": 3}
    assert all(t["error"] == "RuntimeError: first attempt fails" for t in run.trials())


def test_a_failed_trials_worker_runs_the_next_trial(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    path = spec(write_spec, function="fails_late", steps=3, budget="{trials: 6}", resources="{max_concurrent: 1}",
                extra_space=f"  pids: {{type: choice, values: ['{pids}']}}")
    run = automl.search(path, out=tmp_path / "run")
    failed = [t for t in run.trials() if t["status"] == "failed"]
    assert failed and all(t["config"]["x"] > 0.5 for t in failed)
    assert statuses(run)["completed"] == 6 - len(failed)
    # Recorded as before: the reason, and the budget and steps it reached.
    for t in failed:
        assert t["error"] == f"RuntimeError: x={t['config']['x']:.3f} fails at step 2" and t["budget"] == 1
        assert [s["step"] for s in run.steps(t["number"])] == [1]
    # With no retry to make (max_failures 0), the failure is the trial's last report: Tune keeps its worker for the
    # next trial (it never reuses the worker of a trial that raised). One trial at a time: one worker for all six.
    assert len(list(pids.iterdir())) == 6 and len({p.read_text() for p in pids.iterdir()}) == 1


def test_resources_beyond_the_cluster_are_refused(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = write_spec(SPEC.format(function="fidelity", steps=1, extra_space="", scheduler="{name: fifo}",
                                  objectives="  - {metric: loss, mode: min}", budget="{trials: 2}")
                      + "resources: {cpu: 64}\n")
    with pytest.raises(SpecError, match="asks for 64 CPU.*cluster has") as info:
        automl.search(path, out=tmp_path / "run")
    assert info.value.field == "resources.cpu"


def test_resume_refusals_extend_and_warm_start(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = spec(write_spec, budget="{trials: 4}")
    with pytest.raises(AutoMLError, match="holds no automl run"):
        automl.search(path, out=tmp_path / "nothing", resume=True)
    run = automl.search(path, out=tmp_path / "run")
    first = {t["number"]: t for t in run.trials()}
    with pytest.raises(AutoMLError, match="already holds a run"):
        automl.search(path, out=tmp_path / "run")
    other = spec(write_spec, function="quadratic", budget="{trials: 4}", name="other.yaml")
    with pytest.raises(AutoMLError, match="different spec.*trainer"):
        automl.search(other, out=tmp_path / "run", resume=True)
    # A run begun before a spec section existed (its stored hash differs, its spec does not) still resumes.
    import sqlalchemy as sa

    from automl.store import runs

    with run.store.engine.begin() as conn:
        conn.execute(sa.update(runs).values(spec_hash="written-by-an-older-version"))
    # Extending a finished run adds trials and keeps the first ones as they were.
    extended = automl.search(path, out=tmp_path / "run", resume=True, trials=7)
    after = {t["number"]: t for t in extended.trials()}
    assert sorted(after) == list(range(7))
    assert all(after[n]["finished_at"] == first[n]["finished_at"] for n in first)
    assert statuses(extended) == {"completed": 7}
    # A new run warm-started from it runs its own trials.
    warm = automl.search(path, out=tmp_path / "warm", warm_start=tmp_path / "run")
    assert statuses(warm) == {"completed": 4}


def _counts(run_dir: Path) -> Counter[str]:
    try:
        return statuses(Run.open(run_dir))
    except Exception:
        return Counter()


SYNCHRONOUS = "{name: hyperband, options: {type: synchronous, grace_period: 1, reduction_factor: 3}}"


def _killed(counts: Counter[str], scheduler: str) -> bool:
    """When the driver is killed: paused trials and a completed one; for synchronous HyperBand also every trial of
    the budget handed out, the state a resume must rebuild (the searcher closed, blocks waiting at their rungs)."""
    ready = counts["paused"] >= 1 and counts["completed"] >= 1
    return ready and (sum(counts.values()) == 27 if scheduler == SYNCHRONOUS else counts["paused"] >= 4)


@pytest.mark.parametrize("scheduler", [PROMOTION, SYNCHRONOUS], ids=["promotion", "synchronous"])
def test_kill_9_and_resume_with_paused_trials(write_spec: Callable[..., Path], tmp_path: Path, scheduler: str) -> None:
    path = spec(write_spec, function="slow", steps=9, scheduler=scheduler, budget="{trials: 27}")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "automl.cli", "search", str(path), "--out", str(out)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not _killed(_counts(out), scheduler):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t["number"]: t for t in Run.open(out).trials()}
    paused = {n for n, t in before.items() if t["status"] == "paused"}
    assert paused and all((out / "trials" / f"{n:05d}" / "checkpoint").is_dir() for n in paused)
    run = automl.engine.resume(out)
    trials = {t["number"]: t for t in run.trials()}
    assert sorted(trials) == list(range(27)) and run.info()["status"] == "completed"
    assert set(statuses(run)) <= {"completed", "stopped"}
    for n, t in before.items():
        if t["status"] == "completed":  # nothing completed is lost or run again
            assert trials[n]["finished_at"] == t["finished_at"]
    for n in trials:  # no budget step ran twice, across the kill too
        assert [s["step"] for s in run.steps(n)] == sorted({s["step"] for s in run.steps(n)})
    if scheduler == PROMOTION:
        assert_rungs_promoted_their_top(run, [1, 3])
    else:  # every block ended: each trial stopped at a rung or completed, and some reached the full budget
        assert all(t["budget"] in (1, 3, 9) for t in trials.values()) and statuses(run)["completed"] >= 1


def test_budget_target_ends_the_search_and_a_resume_runs_nothing_more(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    path = spec(write_spec, budget="{trials: 60, target: 1.3}")  # fidelity at 1 step: loss = x + 1
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    reached = run.info()["summary"]["target_reached_by"]
    hit = next(t for t in trials if t["number"] == reached)
    assert hit["status"] == "completed" and hit["metrics"]["loss"] <= 1.3
    assert len(trials) < 60  # ended early, not by exhausting the trials
    # Every trial that started after the hit was recorded, none left running.
    assert not [t for t in trials if t["status"] in ("running", "pending")]
    resumed = automl.search(path, out=tmp_path / "run", resume=True, trials=80)
    assert len(resumed.trials()) == len(trials)


def test_moasha_measures_the_model_only_where_it_decides(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    # A forest grows its trees over 9 budget steps; its size is an objective, so MO-ASHA needs it at rungs.
    path = write_spec("""
        task: classification
        data: {dataset: iris}
        trainer: {name: sklearn, params: {model: forest, steps: 9}}
        space:
          n_estimators: {type: int, low: 9, high: 36}
          max_depth: {type: int, low: 1, high: 6}
        objectives:
          - {metric: accuracy, mode: max}
          - {metric: size_bytes, mode: min}
        scheduler: {name: moasha, options: {grace_period: 1, reduction_factor: 3}}
        budget: {trials: 6}
        seed: 2
        """, "moasha.yaml")
    run = automl.search(path, out=tmp_path / "run")
    assert statuses(run)["completed"] > 0
    for t in run.trials():
        for s in run.steps(t["number"]):
            if s["step"] < 9:  # intermediate: estimated at the rungs (1 and 3) only, under its own name
                assert ("size_bytes_estimate" in s["metrics"]) == (s["step"] in (1, 3)), (t["number"], s)
                assert "size_bytes" not in s["metrics"], (t["number"], s)  # never as if measured
