"""What PBT needs of the torch trainer: a trial that goes on from another trial's checkpoint with other optimiser
and schedule values (PBT's explore) takes the weights and the optimiser's moments, then its own values."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from conftest import MakeTrainer


def _lrs(trainer) -> list[float]:  # noqa: ANN001 - a NeuralNetTrainer
    return [g["lr"] for g in trainer.fitter_.optimizer.param_groups]


def test_a_checkpoint_goes_on_with_the_loading_trials_lr_weight_decay_and_schedule(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    donor = make_trainer({"lr": 0.01, "weight_decay": 0.0, "schedule": "constant"}, {"epochs": 6})
    steps = donor.run_steps(1)
    next(steps), next(steps)
    steps.close()
    assert donor.save_checkpoint(tmp_path, step=2)
    weights = {k: v.clone() for k, v in donor.net_.state_dict().items()}

    same = make_trainer({"lr": 0.01, "weight_decay": 0.0, "schedule": "constant"}, {"epochs": 6})
    assert same.load_checkpoint(tmp_path) == 2
    assert _lrs(same) == [0.01] * len(_lrs(same))

    other = make_trainer({"lr": 0.004, "weight_decay": 0.05, "schedule": "cosine"}, {"epochs": 6})
    assert other.load_checkpoint(tmp_path) == 2
    assert all(torch.equal(v, weights[k]) for k, v in other.net_.state_dict().items())  # the donor's weights
    cosine_after_2 = 0.004 * (1 + math.cos(math.pi * 2 / 6)) / 2  # CosineAnnealingLR(T_max=6) after 2 epochs
    assert all(math.isclose(lr, cosine_after_2, rel_tol=1e-9) for lr in _lrs(other))
    assert all(g["weight_decay"] == 0.05 for g in other.fitter_.optimizer.param_groups)
    moments = other.fitter_.optimizer.state_dict()["state"]
    assert moments and all(int(s["step"]) > 0 for s in moments.values())  # Adam's moments kept, not reset
    assert list(other.run_steps(3))[-1] == 6  # and it trains on to the end
