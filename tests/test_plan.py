"""The Plan answers what the engine asks: the task, trial N's context and trainer, the job sent to the workers,
and the plan of an existing run. No Ray: every test here is fast."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import automl
from automl.plan import run_plan, run_spec
from automl.run import RUN_FILE, Run
from automl.store import Store
from automl.trial_job import trial_dir

FUNCTION = """
trainer:
  name: function
  params: {function: 'tests.fixtures.objectives:quadratic', metrics: {loss: min}}
space: {x: {type: float, low: 0.0, high: 1.0}}
objectives: [{metric: loss, mode: min}]
resources: {cpu: 2}
seed: 7
"""

SKLEARN = """
task: classification
data: {dataset: iris, folds: auto}
trainer: {name: sklearn}
space: {model: {type: choice, values: [knn, tree]}}
budget: {trials: 3, wall_time: 60s}
"""


def test_the_worker_and_the_driver_get_the_same_context_for_trial_n(
        write_spec: Callable[..., Path], tmp_path: Path) -> None:
    plan = automl.validate(write_spec(FUNCTION))
    assert plan.task == "classification"  # a spec without data: the function trainer's default
    job = plan.job(tmp_path / "run")
    worker, driver = job.context(3, None), plan.trial_context(3, tmp_path / "run", None)
    assert worker == driver
    assert (driver.seed, driver.trial_dir, driver.cpus, driver.gpus) == (7 + 3, trial_dir(tmp_path / "run", 3), 2.0, 0.0)
    trainer = plan.trial_trainer(3, {"x": 0.5}, tmp_path / "run", None)
    assert trainer.config == {"x": 0.5} and trainer.context == driver


def test_an_existing_runs_plan_is_its_spec_with_the_folds_it_chose(
        write_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec_path = write_spec(SKLEARN)
    assert automl.validate(spec_path).folds == 5  # what `auto` gives iris under 60 s today
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    store = Store(f"sqlite:///{run_dir / 'automl.db'}")
    run_id = store.create_run(name="t", directory=str(run_dir), spec_text=spec_path.read_text(), spec_hash="",
                              seed=0, objectives={}, versions={})
    (run_dir / RUN_FILE).write_text(json.dumps({"store": f"sqlite:///{run_dir / 'automl.db'}", "run_id": run_id,
                                                "spec": str(spec_path), "folds": 3}))
    run = Run.open(run_dir)
    assert run_spec(run).source == str(spec_path)
    plan = run_plan(run)
    assert plan.folds == 3 and plan.trial_count == 3 and plan.wall_time == 60.0
