"""One search end to end through Ray Tune: steps reported, a bad config failing alone, an ensemble of the best."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from automl_sklearn.pool import RECORD

import automl

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

# A grid, so the trials are known: 4 linear configs (one fails: lbfgs has no L1 penalty; liblinear does
# binary L1 and L2), 2 forests, then a voting ensemble of the best trials finished before it.
SPEC = """
task: classification
data: {dataset: breast_cancer, folds: 3, test: 0.2}
trainer: {name: sklearn, params: {steps: 3, export: auto}}
searcher: {name: grid}
space:
  model: {type: choice, values: [linear, forest, voting]}
  linear__solver: {type: choice, values: [lbfgs, liblinear], when: {model: linear}}
  linear__l1_ratio: {type: choice, values: [0.0, 1.0], when: {model: linear}}
  n_estimators: {type: int, low: 5, high: 20, grid: [5, 20], when: {model: forest}}
  voting: {type: choice, values: [soft], when: {model: voting}}
objectives:
  - {metric: balanced_accuracy, mode: max}
  - {metric: size_bytes, mode: min}
resources: {cpu: 1, max_concurrent: 1}
budget: {trials: 7}
ensemble: {enabled: false}  # this test is about the searched voting trial; the final selection has its own tests
"""


def test_sklearn_search_with_steps_failures_and_an_ensemble(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    run = automl.search(write_spec(SPEC), out=tmp_path / "run")
    trials = {t["number"]: t for t in run.trials()}
    assert len(trials) == 7
    failed = [t for t in trials.values() if t["status"] == "failed"]
    # Only the lbfgs + L1 trial fails, recorded with scikit-learn's reason; the search went on.
    assert [(t["config"]["linear__solver"], t["config"]["linear__l1_ratio"]) for t in failed] == [("lbfgs", 1.0)]
    assert "lbfgs" in failed[0]["error"]
    forest = next(t for t in trials.values() if t["config"]["model"] == "forest")
    assert [s["step"] for s in run.steps(forest["number"])] == [1, 2, 3]  # reported after each budget step
    assert forest["artifact"].endswith(".onnx")
    voting = next(t for t in trials.values() if t["config"]["model"] == "voting")
    assert voting["status"] == "completed", voting["error"]
    assert {"balanced_accuracy", "test_balanced_accuracy", "log_loss"} <= set(voting["metrics"])
    completed_singles = [n for n, t in trials.items() if t["status"] == "completed" and t["config"]["model"] != "voting"]
    for number in completed_singles:
        record = json.loads((tmp_path / "run" / "trials" / f"{number:05d}" / RECORD).read_text())
        assert record["metrics"]["balanced_accuracy"] == pytest.approx(trials[number]["metrics"]["balanced_accuracy"])
    front = run.front()
    assert front["members"] and all((tmp_path / "run" / m["model"]).exists() for m in front["members"])
