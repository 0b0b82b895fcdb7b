"""End to end through the engine: spec -> Ray Tune -> store -> front (shared Ray session)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl.cli import run as cli
from automl.run import Run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

FUNCTION_SPEC = """
name: {name}
trainer:
  name: function
  params:
    function: tests.fixtures.objectives:{function}
    metrics: {{loss: min, cost: min}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
  y: {{type: int, low: 0, high: 6}}
objectives:
  - {{metric: loss, mode: min}}
  - {{metric: cost, mode: min}}
budget: {{trials: {trials}}}
seed: 3
"""


def function_spec(write_spec: Callable[..., Path], function: str = "quadratic", trials: int = 12, name: str = "t") -> Path:
    return write_spec(FUNCTION_SPEC.format(function=function, trials=trials, name=name))


def test_function_search_records_every_trial_and_writes_the_front(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    run = automl.search(function_spec(write_spec), out=tmp_path / "run")
    trials = run.trials()
    assert [t["number"] for t in trials] == list(range(12))
    assert all(t["status"] == "completed" for t in trials)
    assert all(set(t["metrics"]) >= {"loss", "cost"} for t in trials)
    assert all(t["duration"] is not None and t["started_at"] for t in trials)
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    members = {m["number"] for m in front["members"]}
    assert members
    # Every non-member is dominated by some member (losses and costs are minimised).
    for t in trials:
        if t["number"] in members:
            continue
        assert any(
            m["metrics"]["loss"] <= t["metrics"]["loss"] and m["metrics"]["cost"] <= t["metrics"]["cost"]
            for m in front["members"]
        )
    assert front["hypervolume"] > 0
    assert run.info()["status"] == "completed"
    assert run.info()["versions"]["trainer:function"].startswith("automl==")


def test_same_seed_gives_the_same_configs(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = function_spec(write_spec, trials=6)
    first = automl.search(spec, out=tmp_path / "a").trials()
    second = automl.search(spec, out=tmp_path / "b").trials()
    third = automl.search(spec, out=tmp_path / "c", seed=99).trials()
    assert [t["config"] for t in first] == [t["config"] for t in second]
    assert [t["config"] for t in first] != [t["config"] for t in third]


def test_failing_and_nan_trials_are_recorded_and_the_search_finishes(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    run = automl.search(function_spec(write_spec, function="flaky", trials=16), out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 16
    by_status: dict[str, list[dict]] = {}
    for t in trials:
        by_status.setdefault(t["status"], []).append(t)
    assert set(by_status) <= {"completed", "failed"}
    for t in by_status.get("failed", []):
        assert t["config"]["x"] > 0.4
        assert "too large" in t["error"] or "nan" in t["error"]
    for t in by_status.get("completed", []):
        assert t["config"]["x"] <= 0.4
    assert by_status.get("failed") and by_status.get("completed")


def test_a_search_where_every_trial_fails_ends_with_a_summary(
    write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(["search", str(function_spec(write_spec, function="always_fails", trials=3)), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1
    # One line, the reasons counted.
    assert "no usable trial: 3 failed (3 x " in err and "this objective always fails" in err
    assert Run.open(tmp_path / "r").info()["status"] == "failed"


def test_sklearn_search_on_csv_with_cli_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["kind"] = frame.pop("target").map({0: "a", 1: "b", 2: "c"})
    frame.to_csv(tmp_path / "wine.csv", index=False)
    spec = tmp_path / "wine.yaml"
    spec.write_text(
        "task: classification\n"
        "data: {csv: wine.csv, target: kind}\n"
        "trainer: {name: sklearn}\n"
        "space:\n"
        "  model: {type: choice, values: [linear, tree]}\n"
        "  max_depth: {type: int, low: 1, high: 6, when: {model: tree}}\n"
        "objectives: [{metric: accuracy, mode: max}, {metric: size_bytes, mode: min}]\n"
        "budget: {trials: 4}\n"
    )
    assert cli(["search", str(spec), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out
    run = Run.open(tmp_path / "run")
    front = run.front()
    assert front["members"]
    for member in front["members"]:
        assert (tmp_path / "run" / member["model"]).is_file()
        assert member["metrics"]["size_bytes"] > 0
        assert 0 <= member["metrics"]["accuracy"] <= 1
        assert "test_accuracy" in member["metrics"]
    assert cli(["show", str(tmp_path / "run")]) == 0
    shown = capsys.readouterr().out
    assert "trials" in shown and "Pareto front" in shown
