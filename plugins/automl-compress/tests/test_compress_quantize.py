"""quantize: every mode rewrites the export; the metrics, size and latency are the rewritten file's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from automl_compress import QuantizeCompressor

from automl.plugin import TrialError, compress


def ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_int8_dynamic_quantizes_the_onnx_export(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")
    reference = trainer.evaluate("valid")
    artifact, metrics = compress(trainer, [("quantize", QuantizeCompressor({}, trainer.context))], tmp_path, test=True)
    assert artifact.name == "model.int8.onnx"
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops(artifact) or "DynamicQuantizeMatMul" in ops(artifact)
    # int8 weights: a quarter of the float32 bytes plus scales and the graph.
    assert artifact.stat().st_size < 0.4 * (tmp_path / "model.onnx").stat().st_size
    assert metrics == {**trainer.evaluate_artifact(artifact),
                       **{f"test_{k}": v for k, v in trainer.evaluate_artifact(artifact, "test").items()}}
    assert abs(metrics["accuracy"] - reference["accuracy"]) < 0.05


@pytest.mark.parametrize(("which", "convolutions"), [("linear", {"Conv"}), ("all", {"ConvInteger"})])
def test_int8_of_a_cnn_leaves_convolutions_in_float_unless_asked(
    trained: Callable, tmp_path: Path, which: str, convolutions: set[str]
) -> None:
    trainer = trained("cnn")
    quantizer = QuantizeCompressor({"mode": "int8_dynamic", "ops": which}, trainer.context)
    artifact = quantizer.compress_artifact(trainer, trainer.export(tmp_path))
    assert artifact is not None
    assert convolutions <= ops(artifact)
    assert ({"Conv", "ConvInteger"} - convolutions).isdisjoint(ops(artifact))


@pytest.mark.parametrize("mode", ["torchao_int8_weight_only", "bf16"])
def test_torch_modes_write_a_torch_export_program_that_predicts_like_the_model(
    trained: Callable, tmp_path: Path, mode: str
) -> None:
    trainer = trained("mlp")
    reference = trainer.evaluate("test")
    quantizer = QuantizeCompressor({"mode": mode, "targets": ["torch", "int8", "bf16"]}, trainer.context)
    artifact = quantizer.compress_artifact(trainer, tmp_path / "model.onnx")  # torch modes read the network
    assert artifact is not None and artifact.name == f"model.{mode}.pt2"
    scored = trainer.evaluate_artifact(artifact, "test")
    assert abs(scored["accuracy"] - reference["accuracy"]) < 0.05
    predict = trainer.load_predictor(artifact)  # what latency is measured on
    assert predict(trainer.sample_input(1)).shape == (1,)
    assert predict(trainer.sample_input(5)).shape == (5,)  # the batch dimension is dynamic


def test_fp16_halves_the_onnx_weights(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")
    dense = trainer.export(tmp_path)
    artifact = QuantizeCompressor({"mode": "fp16", "targets": ["onnxruntime", "fp16"]}, trainer.context).compress_artifact(
        trainer, dense)
    assert artifact is not None and artifact.name == "model.fp16.onnx"
    weights = [i for i in onnx.load(str(artifact)).graph.initializer if len(i.dims) == 2]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    # Two bytes saved per weight (64x64, 64x64 and 64x10 matrices).
    assert dense.stat().st_size - artifact.stat().st_size >= 2 * (64 * 64 * 2 + 64 * 10)
    rows = trainer.arrays("valid").X
    assert trainer.load_predictor(artifact)(rows).dtype == trainer.load_predictor(dense)(rows).dtype
    assert np.mean(trainer.load_predictor(artifact)(rows) == trainer.load_predictor(dense)(rows)) > 0.97


def test_mode_none_leaves_the_export_alone(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")
    assert QuantizeCompressor({"mode": None}, trainer.context).compress_artifact(trainer, tmp_path / "model.onnx") is None


def test_a_compressed_model_with_a_nan_metric_fails_the_trial_with_the_reason(trained: Callable, tmp_path: Path) -> None:
    trainer = trained("mlp")
    with torch.no_grad():  # one NaN weight, as a diverged fine-tuning or a broken compression leaves
        trainer.net_.body[0].weight[0, 0] = float("nan")
    quantizer = QuantizeCompressor({"mode": "int8_dynamic"}, trainer.context)
    with pytest.raises(TrialError, match=r"metric 'loss' is nan after compression \(quantize\)"):
        compress(trainer, [("quantize", quantizer)], tmp_path, test=False)
