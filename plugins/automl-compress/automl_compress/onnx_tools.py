"""Rewrites of an exported ONNX file: sparse weight storage, ONNX Runtime int8 and float16.

Every function writes a new file next to the input and returns it; the input is left as it was.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["densify", "quantize_int8_dynamic", "store_sparse", "to_float16"]

#: Bytes of one index of an ONNX sparse tensor (int64, linear indices).
_INDEX_BYTES = 8


def store_sparse(path: Path, out: Path) -> Path | None:
    """Store each weight matrix of ``path`` as an ONNX sparse tensor where that takes fewer bytes.

    ONNX sparse tensors hold the non-zero values and their int64 linear positions, so one pays
    off below about 1/3 density for float32 weights. ONNX Runtime turns them back into dense
    tensors when it loads the model: the file is smaller, inference is unchanged.

    Returns:
        ``out``, or None when no tensor is smaller stored sparse (nothing written).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    keep, sparse = [], []
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        nonzero = np.flatnonzero(values)
        if values.ndim >= 2 and nonzero.size * (values.itemsize + _INDEX_BYTES) < values.nbytes:
            data = numpy_helper.from_array(values.reshape(-1)[nonzero], init.name)
            index = numpy_helper.from_array(nonzero.astype(np.int64), "")
            sparse.append(helper.make_sparse_tensor(data, index, list(values.shape)))
        else:
            keep.append(init)
    if not sparse:
        return None
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    model.graph.sparse_initializer.extend(sparse)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def densify(model: object) -> None:
    """Turn ``model``'s sparse initializers back into dense ones, in place (quantizers read dense weights)."""
    from onnx import numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    for sparse in list(graph.sparse_initializer):
        values = numpy_helper.to_array(sparse.values)
        index = numpy_helper.to_array(sparse.indices)
        dense = np.zeros(int(np.prod(list(sparse.dims))), dtype=values.dtype)
        # Linear positions (1-D) or one row of coordinates per value (2-D), as the ONNX spec allows.
        flat = index if index.ndim == 1 else np.ravel_multi_index(index.T, tuple(sparse.dims))
        dense[flat] = values
        graph.initializer.append(numpy_helper.from_array(dense.reshape(tuple(sparse.dims)), sparse.values.name))
    del graph.sparse_initializer[:]


@contextlib.contextmanager
def quiet_logger(name: str | None) -> Iterator[None]:
    """Only errors from logger ``name`` (None: the root logger) inside the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize_int8_dynamic(path: Path, out: Path, *, ops: str = "linear", per_channel: bool = False) -> Path:
    """ONNX Runtime dynamic quantization: int8 weights, activations quantized per call at run time.

    Args:
        path: An ONNX model.
        out: Where to write the quantized model.
        ops: ``linear`` quantizes MatMul/Gemm only; ``all`` convolutions too (ConvInteger, which ran
            3-30x slower than float convolutions on the x86 CPUs measured, see the README).
        per_channel: One scale per output channel instead of one per tensor.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(path))
    densify(model)
    # The dynamo exporter's value_info makes the quantizer's shape inference fail (onnxruntime
    # issue 25890); ONNX Runtime infers the shapes again without it.
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "clean.onnx"
        onnx.save(model, str(clean))
        # ONNX Runtime's quantizer logs "consider pre-processing" on the root logger for every model.
        with quiet_logger(None):
            quantize_dynamic(
                str(clean), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                op_types_to_quantize=["MatMul", "Gemm"] if ops == "linear" else None,
            )
    return out


def to_float16(path: Path, out: Path) -> Path:
    """Weights and arithmetic in float16 (ONNX Runtime's converter); inputs and outputs stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    densify(model)
    onnx.save(convert_float_to_float16(model, keep_io_types=True), str(out))
    return out
