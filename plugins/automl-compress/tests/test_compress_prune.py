"""prune: structured pruning really shrinks the layers; unstructured pruning is stored sparse, honestly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from automl_compress import PruneCompressor, QuantizeCompressor
from automl_torch.export import load_runner

from automl.plugin import TrialError, compress


def linear_shapes(net: torch.nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_structured_pruning_removes_units_and_the_export_shrinks(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")  # 64-64-64-10
    dense = trainer.export(tmp_path / "dense")
    pruner = PruneCompressor({"amount": 0.5, "finetune_epochs": 1}, trainer.context)
    artifact, metrics = compress(trainer, [("prune", pruner)], tmp_path / "pruned", test=True)
    # Half of each hidden layer's units are gone, with the inputs of the layers after them; 10 outputs stay.
    assert linear_shapes(trainer.net_) == [(64, 32), (32, 32), (32, 10)]
    assert artifact.name == "model.onnx"  # nothing rewritten: the smaller network is exported as usual
    before, after = 64 * 64 + 64 * 64 + 64 * 10, 64 * 32 + 32 * 32 + 32 * 10
    # The file lost at least the float32 bytes of the removed weights.
    assert dense.stat().st_size - artifact.stat().st_size >= 4 * (before - after)
    assert metrics["sparsity"] == pytest.approx(1 - after / before)
    assert 0.5 < metrics["accuracy"] <= 1.0 and "test_accuracy" in metrics


def test_structured_pruning_of_a_cnn_removes_channels(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("cnn")
    widths = [m.out_channels for m in trainer.net_.modules() if isinstance(m, torch.nn.Conv2d)]
    pruner = PruneCompressor({"amount": 0.5, "finetune_epochs": 0}, trainer.context)
    pruner.compress_model(trainer)
    assert [m.out_channels for m in trainer.net_.modules() if isinstance(m, torch.nn.Conv2d)] == [w // 2 for w in widths]
    assert trainer.net_(torch.zeros(3, 64)).shape == (3, 10)


def test_an_amount_that_leaves_no_unit_in_a_layer_fails_the_trial_with_the_reason(
    trained: Callable, tmp_path: Path
) -> None:
    trainer = trained("mlp")  # 64 units: keeping int(64 * 0.01) = 0 of them is refused
    with pytest.raises(TrialError, match=r"prune.amount 0.99 leaves no unit in layer body.0 \(64 units\)"):
        PruneCompressor({"amount": 0.99}, trainer.context).compress_model(trainer)


def test_unstructured_pruning_zeroes_weights_and_keeps_them_zero_through_fine_tuning(
    trained: Callable, tmp_path: Path
) -> None:
    trainer = trained("mlp")
    pruner = PruneCompressor({"method": "unstructured", "amount": 0.8, "finetune_epochs": 2}, trainer.context)
    pruner.compress_model(trainer)
    for m in trainer.net_.modules():
        if isinstance(m, torch.nn.Linear):
            assert float((m.weight == 0).float().mean()) == pytest.approx(0.8, abs=0.01)
            assert not hasattr(m, "weight_mask")  # the masks were made permanent
    assert linear_shapes(trainer.net_) == [(64, 64), (64, 64), (64, 10)]  # dense shapes: no speed-up claimed
    assert pruner.metrics()["sparsity"] == pytest.approx(0.8, abs=0.01)


def test_unstructured_pruning_is_stored_sparse_and_predicts_like_the_dense_file(
    trained: Callable, tmp_path: Path
) -> None:
    trainer = trained("mlp")
    pruner = PruneCompressor({"method": "unstructured", "amount": 0.8, "finetune_epochs": 0}, trainer.context)
    artifact, metrics = compress(trainer, [("prune", pruner)], tmp_path, test=False)
    dense = tmp_path / "model.onnx"
    assert artifact.name == "model.sparse.onnx"
    model = onnx.load(str(artifact))
    assert len(model.graph.sparse_initializer) == 3  # the three weight matrices
    # 20% of the values with an int64 position each: 12 bytes per kept weight instead of 4 per weight.
    assert artifact.stat().st_size < 0.75 * dense.stat().st_size
    rows = trainer.arrays("test").X
    assert np.array_equal(load_runner(artifact)(rows), load_runner(dense)(rows))
    assert metrics["accuracy"] == trainer.evaluate_artifact(artifact)["accuracy"]


def test_sparse_storage_is_skipped_where_it_is_not_smaller(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")
    pruner = PruneCompressor({"method": "unstructured", "amount": 0.3, "finetune_epochs": 0}, trainer.context)
    artifact, _ = compress(trainer, [("prune", pruner)], tmp_path, test=False)
    assert artifact.name == "model.onnx"  # 70% dense: sparse storage would be larger


def test_int8_after_unstructured_pruning_quantizes_the_densified_weights(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")
    steps = [("prune", PruneCompressor({"method": "unstructured", "amount": 0.8, "finetune_epochs": 0}, trainer.context)),
             ("quantize", QuantizeCompressor({"mode": "int8_dynamic"}, trainer.context))]
    artifact, metrics = compress(trainer, steps, tmp_path, test=False)
    assert artifact.name == "model.sparse.int8.onnx"
    model = onnx.load(str(artifact))
    assert not model.graph.sparse_initializer
    assert "MatMulInteger" in {n.op_type for n in model.graph.node} or "DynamicQuantizeMatMul" in {
        n.op_type for n in model.graph.node}
    assert metrics["sparsity"] == pytest.approx(0.8, abs=0.01)
