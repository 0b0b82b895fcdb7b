"""Issue 18, honest measurements: rung estimates under their own names, never shown as measured; the stored budget
is the budget trained; the trial's seed stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.tune.schedulers import TrialScheduler

from automl.front import compute_front
from automl.interfaces import Objective
from automl.records import TrialRecord, estimate_key, estimated
from automl.schedulers import RungScheduler

ACC = Objective("accuracy", "max")
SIZE = Objective("size_bytes", "min")


class _Trial:
    def __init__(self, number: int) -> None:
        self.config = {"_automl_number": number}


def test_an_old_stores_stopped_trial_reads_its_rung_values_as_estimates() -> None:
    # Written before estimates had their own names: a stopped trial's size is the rung estimate (no measured_as).
    old = {"number": 1, "status": "stopped", "metrics": {"accuracy": 0.8, "size_bytes": 67152.0}, "measured_as": {}}
    record = TrialRecord.from_row(old)
    assert record.metrics == {"accuracy": 0.8, "size_bytes_estimate": 67152.0}
    assert record.estimated == ["size_bytes"]
    done = {"number": 2, "status": "completed", "metrics": {"accuracy": 0.9, "size_bytes": 81395.0},
            "measured_as": {"size_bytes": "onnx: file"}}
    assert TrialRecord.from_row(done).metrics["size_bytes"] == 81395.0
    assert TrialRecord.from_row(done).estimated == []


def test_a_trial_with_estimates_only_is_no_front_member_on_measured_objectives() -> None:
    trials = [
        TrialRecord.from_row({"number": 0, "status": "completed", "metrics": {"accuracy": 0.9, "size_bytes": 9e4},
                              "measured_as": {"size_bytes": "onnx: file"}}),
        # Better on both, but its size is an estimate of a network it never exported.
        TrialRecord.from_row({"number": 1, "status": "stopped",
                              "metrics": {"accuracy": 0.95, estimate_key("size_bytes"): 1e3}}),
    ]
    front = compute_front(trials, [ACC, SIZE], full_budget_only=False)
    assert front.numbers == [0] and front.candidates == 1
    assert estimated(trials[1].metrics) == ["size_bytes"]


def test_moasha_ranks_rung_results_on_the_estimates() -> None:
    scheduler = RungScheduler([ACC, SIZE], max_budget=4, grace_period=1, reduction_factor=2)
    first = {"budget": 1, "accuracy": 0.9, estimate_key("size_bytes"): 1000.0}
    worse = {"budget": 1, "accuracy": 0.5, estimate_key("size_bytes"): 2000.0}
    assert scheduler.on_trial_result(None, _Trial(0), first) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, _Trial(1), worse) == TrialScheduler.STOP
    assert scheduler.recorded[1] == {0: [-0.9, 1000.0], 1: [-0.5, 2000.0]}


@pytest.mark.parametrize("kind", ["stopping", "promotion"])
def test_a_final_report_below_the_full_budget_is_no_rung_result(kind: str) -> None:
    # A trainer's early stop (patience) reports its final result at the budget it trained.
    scheduler = RungScheduler([ACC], max_budget=8, grace_period=2, reduction_factor=2, type=kind)
    scheduler.on_trial_result(None, _Trial(0), {"budget": 2, "accuracy": 0.9})
    final = {"budget": 2, "accuracy": 0.1, "_automl_final": True}
    assert scheduler.on_trial_result(None, _Trial(1), final) == TrialScheduler.CONTINUE
    scheduler.on_trial_complete(None, _Trial(1), final)
    assert 1 not in scheduler.recorded[2] and 1 not in scheduler.paused


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_stopped_trials_keep_estimates_apart_and_completed_ones_their_trained_budget(write_spec, tmp_path: Path) -> None:
    import automl

    spec = write_spec("""
        task: classification
        data: {dataset: digits}
        seed: 7
        trainer: {name: torch, params: {epochs: 4, units: 16}}
        searcher: {name: grid}
        scheduler: {name: moasha, options: {grace_period: 1, reduction_factor: 2}}
        space:
          lr: {type: float, low: 0.00001, high: 0.05, grid: [0.05, 0.00001, 0.02, 0.00002]}
        objectives:
          - {metric: accuracy, mode: max}
          - {metric: size_bytes, mode: min}
        latency: {repeats: 5, final_repeats: 5}
        resources: {max_concurrent: 1}
        budget: {trials: 4}
    """)
    run = automl.search(spec, out=tmp_path / "run")
    trials = run.trials()
    assert [t.seed for t in trials] == [7 + t.number for t in trials]
    stopped = [t for t in trials if t.status == "stopped"]
    assert stopped, [(t.number, t.status) for t in trials]  # the tiny learning rates lose at the first rung
    for t in stopped:
        assert "size_bytes" not in t.metrics and t.metrics[estimate_key("size_bytes")] > 0
    for t in trials:
        if t.status == "completed":
            assert t.metrics["size_bytes"] == Path(t.artifact).stat().st_size
    assert set(run.front().numbers) <= {t.number for t in trials if t.status == "completed"}
    steps = run.store.steps(run.run_id, stopped[0].number)
    assert all("size_bytes" not in s.metrics and estimate_key("size_bytes") in s.metrics for s in steps)
    # Shown as estimates, never as measured values: automl show and the report.
    from click.testing import CliRunner

    from automl.cli import main
    from automl.html_report import build_report

    shown = CliRunner().invoke(main, ["show", str(tmp_path / "run")], terminal_width=300)
    assert shown.exit_code == 0 and "(estimat" in shown.output, shown.output  # rich folds the narrow column
    assert "(estimate)" in build_report(tmp_path / "run")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_trial_stopped_by_patience_stores_the_budget_it_trained(write_spec, tmp_path: Path) -> None:
    import automl

    # min_delta larger than any loss: epoch 1 is the best, epoch 2 brings no progress, patience 1 stops there.
    spec = write_spec("""
        task: classification
        data: {dataset: digits}
        trainer: {name: torch, params: {epochs: 30, units: 8, patience: 1, min_delta: 1000}}
        searcher: {name: grid}
        space:
          lr: {type: float, low: 0.001, high: 0.01, grid: [0.01]}
        objectives: [{metric: accuracy, mode: max}]
        budget: {trials: 1}
    """)
    (trial,) = automl.search(spec, out=tmp_path / "run").trials()
    assert trial.status == "completed" and (trial.budget, trial.max_budget) == (2, 30)


def test_a_searcher_reads_a_rung_estimate_where_the_measured_value_is_missing() -> None:
    from automl.interfaces import TrialOutcome
    from automl.plugins import get_plugin_manager
    from automl.space import Float, SearchSpace

    searcher = get_plugin_manager().searchers.get("random").factory(SearchSpace([Float("x", low=0.0, high=1.0)]), [ACC, SIZE],
                                                                    seed=0)
    rung = TrialOutcome(0, {"x": 0.5}, "stopped", {"accuracy": 0.9, estimate_key("size_bytes"): 1000.0}, 1, 4)
    assert searcher.losses(rung) == [-0.9, 1000.0]
    measured = TrialOutcome(1, {"x": 0.5}, "completed", {"accuracy": 0.9, "size_bytes": 2000.0,
                                                          estimate_key("size_bytes"): 1000.0}, 4, 4)
    assert searcher.losses(measured) == [-0.9, 2000.0]
