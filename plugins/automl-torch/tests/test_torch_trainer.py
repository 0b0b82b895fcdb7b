"""The trainer driven as the engine drives it (run_steps, evaluate, export, checkpoints), without Ray."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from automl_torch.loop import autocast_dtype
from automl_torch.trainer import STATE_FILE

from automl.plugin import Part, Splits, TrialError, single_thread
from conftest import MakeTrainer


def run(trainer) -> list[int]:  # noqa: ANN001 - a NeuralNetTrainer
    return list(trainer.run_steps(1))


def weights(trainer) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return {k: v.detach().clone() for k, v in trainer.net_.state_dict().items()}


def test_an_mlp_learns_digits_and_reports_every_metric_per_epoch(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer({"lr": 0.01}, {"epochs": 4})
    seen = []
    for _ in trainer.run_steps(1):
        seen.append(trainer.evaluate("valid"))
    assert len(seen) == trainer.budget_steps == 4
    assert set(seen[-1]) == {"accuracy", "balanced_accuracy", "f1_macro", "loss"}
    assert seen[-1]["loss"] < seen[0]["loss"]
    assert seen[-1]["accuracy"] > 0.5  # ten classes: chance is 0.1
    assert trainer.evaluate("test")["accuracy"] > 0.5


def test_the_same_seed_gives_the_same_model_and_another_seed_another(make_trainer: MakeTrainer) -> None:
    config = {"dropout": 0.2, "batch_size": 32}
    a, b, c = make_trainer(config, seed=3), make_trainer(config, seed=3), make_trainer(config, seed=4)
    for t in (a, b, c):
        run(t)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_training_threads_follow_the_trial_cpus(make_trainer: MakeTrainer) -> None:
    before = torch.get_num_threads()
    try:
        make_trainer(cpus=2)._setup()
        assert torch.get_num_threads() == 2
        make_trainer(cpus=0.5)._setup()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_early_stopping_ends_the_trial_and_keeps_the_best_epoch(make_trainer: MakeTrainer) -> None:
    # min_delta far above any possible improvement: only epoch 1 counts as better.
    trainer = make_trainer({"patience": 2, "min_delta": 100.0}, {"epochs": 10})
    losses = []
    for _ in trainer.run_steps(1):
        losses.append(trainer.evaluate("valid")["loss"])
    assert [h["epoch"] for h in trainer.history_] == [1, 2, 3]
    assert trainer.history_[-1]["valid_loss"] != trainer.history_[0]["valid_loss"]
    # The model evaluated after the last step is epoch 1's.
    assert losses[-1] == pytest.approx(trainer.history_[0]["valid_loss"], rel=1e-6)


def test_gradient_clipping_bounds_each_update(make_trainer: MakeTrainer) -> None:
    lr, clip = 0.5, 1e-4
    trainer = make_trainer({"optimizer": "sgd", "momentum": 0.0, "lr": lr, "grad_clip": clip, "batch_size": 128},
                           {"epochs": 1})
    trainer._setup()
    before = torch.cat([p.detach().flatten().clone() for p in trainer.net_.parameters()])
    run(trainer)
    after = torch.cat([p.detach().flatten() for p in trainer.net_.parameters()])
    steps = math.ceil(len(trainer.arrays("train").y) / 128)
    assert 0 < float(torch.linalg.vector_norm(after - before)) <= steps * lr * clip * (1 + 1e-4)


@pytest.mark.parametrize(("schedule", "extra"), [("step", {"step_size": 2, "lr_decay": 0.5}), ("cosine", {})])
def test_learning_rate_schedules_with_warmup(make_trainer: MakeTrainer, schedule: str, extra: dict) -> None:
    base = 0.01
    trainer = make_trainer({"lr": base, "schedule": schedule, "warmup_epochs": 2, **extra}, {"epochs": 6})
    trainer._setup()
    rates = [trainer.fitter_.optimizer.param_groups[0]["lr"]]
    for _ in trainer.run_steps(1):
        rates.append(trainer.fitter_.optimizer.param_groups[0]["lr"])
    assert rates[0] < rates[1] < rates[2] == pytest.approx(base)  # linear warm-up to the base rate
    if schedule == "step":
        assert rates[4] == pytest.approx(base / 2) and rates[6] == pytest.approx(base / 4)
    else:
        assert all(x > y for x, y in zip(rates[2:], rates[3:], strict=False))
        assert rates[6] == pytest.approx(0.0, abs=1e-12)


def test_balanced_class_weights_weigh_rare_classes_more(make_trainer: MakeTrainer, digits: Splits) -> None:
    # Keep 5 rows of class 0 in train: it becomes rare.
    y = digits.train.y
    keep = (y != 0) | (y.groupby(y).cumcount() < 5)
    rare = Splits(Part(digits.train.X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)),
                  digits.valid, digits.test, "classification")
    trainer = make_trainer({"class_weight": "balanced", "label_smoothing": 0.1}, data=rare)
    trainer._setup()
    criterion = trainer.fitter_.criterion
    weight = criterion.weight.cpu().numpy()
    counts = np.bincount(trainer.arrays("train").y)
    assert weight[0] == weight.max() and weight[int(np.argmax(counts))] == weight.min()
    assert np.allclose(weight * counts, len(rare.train.y) / 10)
    assert criterion.label_smoothing == 0.1
    run(trainer)


def test_bf16_mixed_precision_trains_on_cpu(make_trainer: MakeTrainer) -> None:
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert autocast_dtype("fp16", torch.device("cpu")) is torch.bfloat16  # documented fallback
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    trainer = make_trainer({"precision": "bf16", "lr": 0.01}, {"epochs": 3})
    run(trainer)
    assert trainer.evaluate("valid")["accuracy"] > 0.5
    assert next(trainer.net_.parameters()).dtype is torch.float32  # weights stay fp32


def test_regression_on_diabetes_beats_the_mean(make_trainer: MakeTrainer, diabetes: Splits) -> None:
    trainer = make_trainer({"lr": 0.01}, {"epochs": 20}, data=diabetes, task="regression")
    run(trainer)
    metrics = trainer.evaluate("valid")
    assert set(metrics) == {"r2", "rmse", "mae", "loss"} and metrics["r2"] > 0


def test_a_diverging_loss_fails_the_trial_with_the_reason(make_trainer: MakeTrainer, diabetes: Splits) -> None:
    trainer = make_trainer({"lr": 10.0, "optimizer": "sgd"}, data=diabetes, task="regression")
    with pytest.raises(TrialError, match=r"training loss became nan in epoch 1 \(lr=10.*lower lr or set grad_clip"):
        run(trainer)


def test_cnn_on_non_image_data_fails_the_trial_with_the_reason(make_trainer: MakeTrainer, wine: Splits) -> None:
    trainer = make_trainer({"network": "cnn"}, {"input_shape": [1, 8, 8]}, data=wine)
    with pytest.raises(TrialError, match="holds 64 values but a row of this data has 13 features"):
        run(trainer)


def test_text_columns_are_refused_with_the_column_name(make_trainer: MakeTrainer, digits: Splits) -> None:
    X = digits.train.X.copy()
    X["colour"] = "red"
    data = Splits(Part(X, digits.train.y), digits.valid, digits.test, "classification")
    with pytest.raises(TrialError, match=r"numeric features only; column\(s\) \['colour'\]"):
        run(make_trainer(data=data))


def test_cuda_asked_for_in_a_trial_without_a_gpu_fails_clearly(make_trainer: MakeTrainer) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrialError, match="sees no GPU"):
        run(make_trainer(params={"device": "cuda"}))


def test_a_checkpoint_holds_the_last_epoch_only(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    # That a resumed trial ends like an uninterrupted one is the conformance kit's check
    # (test_torch_conformance.py); here what is torch-specific: nothing saved before the first epoch,
    # one state file replaced after each.
    trainer = make_trainer({"dropout": 0.3}, {"epochs": 3})
    checkpoint = tmp_path / "checkpoint"
    assert trainer.save_checkpoint(checkpoint) is False  # nothing trained yet
    for step in trainer.run_steps(1):
        assert trainer.save_checkpoint(checkpoint)
        assert [p.name for p in checkpoint.iterdir()] == [STATE_FILE]
        assert make_trainer({"dropout": 0.3}, {"epochs": 3}).load_checkpoint(checkpoint) == step


def test_a_checkpoint_of_another_network_is_refused(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    small = make_trainer({"units": 8}, {"epochs": 1})
    run(small)
    small.save_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="does not fit this trial's network"):
        make_trainer({"units": 16}).load_checkpoint(tmp_path)


class Payload:
    """Not a tensor: a pickled object of this class must never be loaded back."""


def test_checkpoints_load_tensors_only_never_pickled_objects(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    torch.save({"format": 1, "epoch": 1, "model": Payload()}, tmp_path / STATE_FILE)
    with pytest.raises(Exception, match="Weights only load failed"):
        make_trainer().load_checkpoint(tmp_path)


def test_exports_predict_like_the_trained_network(make_trainer: MakeTrainer, digits: Splits, tmp_path: Path) -> None:
    trainer = make_trainer({"network": "cnn", "channels": 4, "batch_norm": True, "dropout": 0.1},
                           {"epochs": 2, "input_shape": [1, 8, 8]})
    run(trainer)
    artifact = trainer.export(tmp_path / "export")
    assert artifact.name == "model.onnx" and (artifact.parent / "model.torchscript.pt").is_file()
    expected = np.asarray(digits.classes)[trainer.net_.eval()(torch.as_tensor(
        digits.test.X.to_numpy(np.float32).copy())).argmax(1).numpy()]
    with single_thread():
        for path in (artifact, artifact.parent / "model.torchscript.pt"):
            predict = trainer.load_predictor(path)
            assert np.array_equal(predict(digits.test.X), expected)
            assert predict(trainer.sample_input(1)).shape == (1,)
    accuracy = float(np.mean(trainer.load_predictor(artifact)(digits.test.X) == digits.test.y.to_numpy()))
    assert accuracy == pytest.approx(trainer.evaluate("test")["accuracy"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_an_exported_file_is_scored_like_the_network_in_memory(
    make_trainer: MakeTrainer, diabetes: Splits, task: str, tmp_path: Path
) -> None:
    # evaluate_artifact is what a compressed (rewritten) export is scored with: same metrics, same values.
    trainer = make_trainer({"lr": 0.01}, {"epochs": 2}, **({"data": diabetes, "task": task} if task == "regression" else {}))
    run(trainer)
    artifact = trainer.export(tmp_path)
    program = tmp_path / "model.pt2"
    example = torch.as_tensor(trainer.sample_input(2))
    torch.export.save(torch.export.export(trainer.net_.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)),
                      str(program))
    want = trainer.evaluate("test")
    for path in (artifact, tmp_path / "model.torchscript.pt", program):
        got = trainer.evaluate_artifact(path, "test")
        assert set(got) == set(want)
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-4, abs=1e-5), (path.name, name)


def test_the_torchscript_runtime_measures_the_torchscript_file(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    trainer = make_trainer(params={"epochs": 1, "runtime": "torchscript"})
    run(trainer)
    artifact = trainer.export(tmp_path)
    assert artifact.name == "model.torchscript.pt" and (tmp_path / "model.onnx").is_file()
    with pytest.raises(ValueError, match="not an export of the torch trainer"):
        trainer.load_predictor(tmp_path / "elsewhere.bin")


def test_rung_estimates_rank_sizes_like_the_export_without_exporting(make_trainer: MakeTrainer, tmp_path: Path) -> None:
    small, large = make_trainer({"units": 16}), make_trainer({"units": 128, "layers": 3})
    sizes = {}
    for name, trainer in (("small", small), ("large", large)):
        trainer.fit_step(1)
        estimate = trainer.rung_estimates(["size_bytes", "latency_ms"])
        assert estimate["latency_ms"] > 0
        onnx = trainer.export(tmp_path / name)
        # The parameters are the file, less the ONNX graph's few kilobytes.
        assert 0 < onnx.stat().st_size - estimate["size_bytes"] < 16_000
        sizes[name] = estimate["size_bytes"]
        assert trainer.rung_estimates(["size_bytes"]).keys() == {"size_bytes"}
    assert sizes["small"] < sizes["large"]
