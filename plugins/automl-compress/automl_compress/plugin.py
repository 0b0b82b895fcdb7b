"""Hook implementations of the automl-compress plugin.

Loading this module imports no torch, onnx or torchao: every ``automl`` command loads every
plugin, and those libraries are imported by a trial that compresses.
"""

from __future__ import annotations

from automl.plugin import CompressorSpec, hookimpl
from automl_compress.distill import DistillCompressor
from automl_compress.lowrank import LowRankCompressor
from automl_compress.params import check_distill, check_lowrank, check_onnx, check_prune, check_quantize
from automl_compress.prune import PruneCompressor
from automl_compress.quantize import QuantizeCompressor
from automl_compress.sklearn_onnx import OnnxCompressor


@hookimpl
def automl_register_compressors() -> list[CompressorSpec]:
    return [
        CompressorSpec(
            "prune", PruneCompressor, "structured (torch-pruning: fewer units/channels) or unstructured (sparse "
            "ONNX storage) pruning, then fine-tuning", trainers=("torch",), check=check_prune,
            metrics={"sparsity": "max"},
        ),
        CompressorSpec(
            "quantize", QuantizeCompressor, "int8 (ONNX Runtime dynamic, torchao weight-only / dynamic), fp16, bf16",
            trainers=("torch",), check=check_quantize,
        ),
        CompressorSpec(
            "distill", DistillCompressor, "a smaller student trained on the trial's model's soft targets",
            trainers=("torch",), check=check_distill,
        ),
        CompressorSpec(
            "lowrank", LowRankCompressor, "truncated-SVD factorisation of the linear layers, then fine-tuning",
            trainers=("torch",), check=check_lowrank,
        ),
        CompressorSpec(
            "onnx", OnnxCompressor, "scikit-learn pipelines on ONNX Runtime (skl2onnx) where faster; fewer trees",
            trainers=("sklearn",), check=check_onnx, metrics={"onnx_runtime": "max"},
        ),
    ]
