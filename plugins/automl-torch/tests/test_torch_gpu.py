"""The trainer's GPU paths: fp16 AMP with a GradScaler, fractional-GPU trials, DDP over NCCL.

Each runs only where torch sees a CUDA GPU (two for DDP) and is skipped elsewhere; their CPU halves (bf16
autocast, DDP over gloo, the clear error of ``device: cuda`` without a GPU) are tested in test_torch_trainer.py
and test_torch_distributed.py. ``scripts/gpu-check.sh`` measures the same paths (AMP speed-up, trials per GPU,
utilisation) on a GPU machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from automl_torch.loop import autocast_dtype

import automl
from conftest import MakeTrainer

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL)")


@needs_gpu
def test_fp16_amp_trains_on_the_gpu_with_a_grad_scaler(make_trainer: MakeTrainer) -> None:
    assert autocast_dtype("fp16", torch.device("cuda")) is torch.float16
    trainer = make_trainer({"precision": "fp16", "lr": 0.01}, {"epochs": 3, "device": "cuda"})
    for _ in trainer.run_steps(1):
        pass
    assert trainer.device_.type == "cuda"
    assert trainer.fitter_ is not None and trainer.fitter_.scaler.is_enabled()
    assert trainer.evaluate("valid")["accuracy"] > 0.8


@needs_gpu
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_trials_of_half_a_gpu_complete_on_the_gpu(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = write_spec("""
        task: classification
        data: {dataset: digits}
        trainer: {name: torch, params: {epochs: 2, units: 32, precision: auto}}
        searcher: {name: grid}
        space:
          lr: {type: float, low: 0.001, high: 0.01, grid: [0.003, 0.01]}
        objectives: [{metric: accuracy, mode: max}]
        resources: {cpu: 1, gpu: 0.5}
        budget: {trials: 2}
    """)
    trials = automl.search(spec, out=tmp_path / "run").trials()
    assert [t["status"] for t in trials] == ["completed", "completed"]
    assert all(t["metrics"]["accuracy"] > 0.8 for t in trials)


@needs_two_gpus
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ddp_over_nccl_trains_with_one_gpu_per_worker(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer({"lr": 0.005}, {"epochs": 3, "distributed": {"workers": 2, "cpus_per_worker": 0.5,
                                                                         "gpus_per_worker": 1}}, cpus=0.5)
    for _ in trainer.run_steps(1):
        pass
    assert all(h["workers"] == 2 for h in trainer.history_)
    assert trainer.evaluate("valid")["accuracy"] > 0.8
