"""End to end through Ray Tune: compression parameters searched with training, failures recorded, the front re-measured."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import automl

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

SPEC = """
name: compress-e2e
task: classification
data: {dataset: digits, validation: 0.2, test: 0.2}
trainer: {name: torch, params: {epochs: 2, units: 3, layers: 1, lr: 0.01}}
compression:
  - {name: prune, params: {finetune_epochs: 1}}
  - {name: quantize}
searcher: {name: grid}
space:
  prune.amount: {type: choice, values: [0.0, 0.9]}
  quantize.mode: {type: choice, values: [none, int8_dynamic]}
objectives:
  - {metric: accuracy, mode: max}
  - {metric: size_bytes, mode: min}
  - {metric: latency_ms, mode: min}
budget: {trials: 4}
latency: {repeats: 5, warmup: 1, final_repeats: 5}
"""


def test_a_search_compresses_each_trial_as_its_config_says(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    run = automl.search(write_spec(SPEC), out=tmp_path / "run")
    trials = {(t["config"]["prune.amount"], t["config"]["quantize.mode"]): t for t in run.trials()}
    assert len(trials) == 4
    # 3 hidden units: pruning 90% would leave int(3 * 0.1) = 0 of them. Those trials fail with the reason.
    for mode in ("none", "int8_dynamic"):
        failed = trials[(0.9, mode)]
        assert failed["status"] == "failed"
        assert "prune.amount 0.9 leaves no unit in layer body.0 (3 units)" in failed["error"]
    plain, quantized = trials[(0.0, "none")], trials[(0.0, "int8_dynamic")]
    assert plain["status"] == quantized["status"] == "completed"
    assert plain["artifact"].endswith("model.onnx") and quantized["artifact"].endswith("model.int8.onnx")
    for t in (plain, quantized):
        metrics = t["metrics"]
        assert {"accuracy", "accuracy_uncompressed", "test_accuracy", "test_accuracy_uncompressed", "sparsity",
                "size_bytes", "latency_ms"} <= set(metrics)
        assert metrics["size_bytes"] == Path(t["artifact"]).stat().st_size
    # Without any compression, the metrics before and after are the same model's.
    assert plain["metrics"]["accuracy"] == plain["metrics"]["accuracy_uncompressed"]
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert front["members"] and front["latency_drift"] is not None
    for member in front["members"]:
        assert "latency_ms_trial" in member["metrics"]  # measured again, serially, after the search
        assert (tmp_path / "run" / member["model"]).is_file()
