"""The tabular replay of benchmarks.scheduling: simulated searches driven by the engine's own scheduler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import automl
from benchmarks.scheduling.replay import Curves, markdown, record, replay, simulate


def synthetic(n: int = 60, steps: int = 9, seed: int = 0, workers: int = 2) -> Curves:
    """Curves that keep their ranking at every budget: quality q, value q * (1 - 0.5 / step)."""
    rng = np.random.default_rng(seed)
    quality = rng.random(n)
    values = [[float(q * (1 - 0.5 / s)) for s in range(1, steps + 1)] for q in quality]
    seconds = [[1.0] * steps for _ in range(n)]
    return Curves("accuracy", "max", steps, workers, values, seconds, start_s=0.5)


def test_fifo_spends_every_step_of_each_trial_until_the_first_hit() -> None:
    curves = synthetic(workers=1)
    target = sorted(v[-1] for v in curves.values)[-5]  # five configurations reach it
    order = list(range(len(curves.values)))
    first = next(i for i in order if curves.values[i][-1] >= target)
    out = simulate(curves, order, target, "fifo")
    assert out.reached and out.configs == first + 1
    assert out.steps == (first + 1) * 9 and out.seconds == pytest.approx(out.steps * 1.0)


@pytest.mark.parametrize("kind", ["stopping", "promotion"])
def test_asha_reaches_a_rare_target_for_less_than_fifo_when_rankings_hold(kind: str) -> None:
    curves = synthetic()
    target = max(v[-1] for v in curves.values)  # only the best configuration reaches it
    rng = np.random.default_rng(1)
    for _ in range(20):
        order = list(rng.permutation(len(curves.values)))
        fifo, asha = simulate(curves, order, target, "fifo"), simulate(curves, order, target, kind)
        assert fifo.reached and asha.reached  # rankings hold: the best is never stopped
        assert asha.steps < fifo.steps


def test_promotion_pays_a_restart_for_each_promotion() -> None:
    curves = synthetic(workers=1)
    target = max(v[-1] for v in curves.values)
    order = list(range(len(curves.values)))
    out = simulate(curves, order, target, "promotion")
    free = Curves(curves.metric, curves.mode, curves.max_budget, 1, curves.values, curves.seconds, start_s=0.0)
    again = simulate(free, order, target, "promotion")
    assert out.steps == again.steps and out.seconds > again.seconds  # same decisions, restarts cost time


def test_replay_reports_paired_speedups_per_target() -> None:
    curves = synthetic()
    finals = sorted(v[-1] for v in curves.values)
    out = replay(curves, [finals[-3]], orderings=30, seed=0)
    row = out["targets"][str(finals[-3])]
    assert row["share_of_configs_reaching_it"] == pytest.approx(3 / 60)
    for kind in ("stopping", "promotion"):
        assert row[kind]["median_speedup_steps"] > 1 and row[kind]["ert_ratio_time"] > 1
    table = markdown(out)
    assert table.count(f"| {finals[-3]} | 5.0% |") == 2  # one row per ASHA type


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_record_reads_the_curves_of_a_real_fifo_run(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = write_spec("""
        trainer:
          name: function
          params: {function: "tests.fixtures.objectives:fidelity", metrics: {loss: min}, steps: 4}
        space:
          x: {type: float, low: 0, high: 1}
        objectives:
          - {metric: loss, mode: min}
        budget: {trials: 5}
        """)
    run = automl.search(path, out=tmp_path / "run")
    doc = record(tmp_path / "run", workers=2)
    assert doc["metric"] == "loss" and doc["max_budget"] == 4 and len(doc["values"]) == 5
    xs = sorted(t["config"]["x"] for t in run.trials())
    assert sorted(v[-1] for v in doc["values"]) == pytest.approx([x + 0.25 for x in xs])
    assert all(len(s) == 4 and min(s) > 0 for s in doc["seconds"])
