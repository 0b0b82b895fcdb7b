"""automl-compress: compression searched jointly with training (pruning, quantization, distillation,
low-rank factorisation for torch models; ONNX Runtime for scikit-learn pipelines)."""

from __future__ import annotations

from automl_compress.distill import DistillCompressor
from automl_compress.lowrank import LowRankCompressor
from automl_compress.prune import PruneCompressor
from automl_compress.quantize import QuantizeCompressor
from automl_compress.sklearn_onnx import OnnxCompressor

__all__ = ["DistillCompressor", "LowRankCompressor", "OnnxCompressor", "PruneCompressor", "QuantizeCompressor"]
