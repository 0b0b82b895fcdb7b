"""End to end: ``automl.search`` with the torch trainer through Ray Tune (one process and DDP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import automl

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def test_mlp_search_on_digits_exports_measures_and_records_every_epoch(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec("""
        task: classification
        data: {dataset: digits}
        trainer: {name: torch, params: {epochs: 3, units: 24}}
        searcher: {name: grid}
        space:
          lr: {type: float, low: 0.001, high: 0.01, grid: [0.01]}
        objectives:
          - {metric: accuracy, mode: max}
          - {metric: latency_ms, mode: min}
          - {metric: size_bytes, mode: min}
        latency: {repeats: 20, final_repeats: 20}
        budget: {trials: 1}
    """)
    run = automl.search(spec, out=tmp_path / "run")
    trials = run.trials()
    assert [t["status"] for t in trials] == ["completed"]
    for t in trials:
        artifact = Path(t["artifact"])
        assert artifact.name == "model.onnx" and (artifact.parent / "model.torchscript.pt").is_file()
        assert t["metrics"]["size_bytes"] == artifact.stat().st_size
        assert t["metrics"]["latency_ms"] > 0 and 0 <= t["metrics"]["test_accuracy"] <= 1
        # Epochs 1 and 2 were reported as they finished (what a scheduler sees), then the final one.
        assert [s["step"] for s in run.store.steps(run.run_id, t["number"])] == [1, 2, 3]
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert all((tmp_path / "run" / m["model"]).is_file() for m in front["members"])


def test_a_distributed_trial_runs_inside_tune_and_fails_with_the_workers_reason(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    # One trial (a Ray Train launch costs tens of seconds here): lr 10 diverges on the workers.
    spec = write_spec("""
        task: regression
        data: {dataset: diabetes}
        trainer:
          name: torch
          params:
            epochs: 3
            units: 16
            optimizer: sgd
            distributed: {workers: 2, cpus_per_worker: 0.9}
        searcher: {name: grid}
        space:
          lr: {type: float, low: 0.001, high: 10.0, grid: [10.0]}
        objectives: [{metric: r2, mode: max}]
        resources: {cpu: 0.1, max_concurrent: 1}
        budget: {trials: 1}
    """)
    (trial,) = automl.search(spec, out=tmp_path / "run").trials()
    assert trial["status"] == "failed"
    assert "distributed training failed on worker" in trial["error"]
    assert "training loss became nan in epoch 1" in trial["error"]
