"""distill trains a smaller student from the trial's model; lowrank factors linear layers by SVD."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
from automl_compress import DistillCompressor, LowRankCompressor

from automl.plugin import Splits


def linear_shapes(net: torch.nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_distill_replaces_the_network_by_a_smaller_student_that_learned(trained: Callable) -> None:
    trainer = trained("mlp")  # 64-64-64-10
    teacher = trainer.net_
    DistillCompressor({"width": 0.25, "epochs": 8, "teacher_smoothing": 0.1, "teacher_epochs": 1},
                      trainer.context).compress_model(trainer)
    assert trainer.net_ is not teacher
    assert linear_shapes(trainer.net_) == [(64, 16), (16, 16), (16, 10)]
    # The student keeps the teacher's input preparation (imputation, standardisation): raw rows in.
    assert torch.equal(trainer.net_.prep.mean, teacher.prep.mean)
    assert trainer.evaluate("valid")["accuracy"] > 0.6  # ten classes: chance is 0.1


def test_distill_disabled_keeps_the_model(trained: Callable) -> None:
    trainer = trained("mlp")
    teacher = trainer.net_
    DistillCompressor({"enabled": False}, trainer.context).compress_model(trainer)
    assert trainer.net_ is teacher


def test_distill_a_regression_network(diabetes: Splits, tmp_path: Path, train_network: Callable) -> None:
    trainer = train_network({"units": 32, "lr": 0.01}, {}, diabetes, tmp_path)
    DistillCompressor({"units": 8, "epochs": 3}, trainer.context).compress_model(trainer)
    assert linear_shapes(trainer.net_) == [(10, 8), (8, 8), (8, 1)]
    assert set(trainer.evaluate("valid")) == {"r2", "rmse", "mae", "loss"}


def test_lowrank_factors_hidden_layers_into_the_best_rank_r_approximation(trained: Callable) -> None:
    trainer = trained("mlp")
    original = copy.deepcopy(trainer.net_)
    LowRankCompressor({"rank": 8, "finetune_epochs": 0}, trainer.context).compress_model(trainer)
    # Hidden layers become Linear(in, 8) -> Linear(8, out); the output layer keeps one output per class.
    assert linear_shapes(trainer.net_) == [(64, 8), (8, 64), (64, 8), (8, 64), (64, 10)]
    before = original.body[0].weight.detach()
    pair = trainer.net_.body[0]
    product = pair[1].weight.detach() @ pair[0].weight.detach()
    U, S, Vh = torch.linalg.svd(before, full_matrices=False)
    assert torch.allclose(product, U[:, :8] @ torch.diag(S[:8]) @ Vh[:8], atol=1e-5)
    assert torch.equal(pair[1].bias, original.body[0].bias)


def test_lowrank_leaves_layers_it_would_not_shrink(trained: Callable) -> None:
    trainer = trained("mlp")
    LowRankCompressor({"ratio": 1.0}, trainer.context).compress_model(trainer)
    assert linear_shapes(trainer.net_) == [(64, 64), (64, 64), (64, 10)]
