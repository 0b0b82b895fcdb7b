"""Export to ONNX (``torch.onnx.export``, dynamo) and TorchScript; predictors over the exported files.

Both exports take raw float32 rows ``(batch, n_features)`` (the model imputes and
standardises itself) and return logits or regression values. The predictors run the
exported file, never the in-memory model: ONNX Runtime or TorchScript, each on the
threads :func:`automl.measure.single_thread` allows (one, when latency is measured).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ONNX_FILE", "STATE_DICT_FILE", "TORCHSCRIPT_FILE", "convert_torchscript_to_onnx",
           "convert_torchscript_to_state_dict", "decode", "export_onnx", "export_torchscript", "load_runner", "to_rows"]

ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"
STATE_DICT_FILE = "model.state_dict.pt"
INPUT_NAME = "x"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' chatter (deprecations inside torch, optional torchvision ops)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated.*")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Write ``model`` as a single ONNX file with a dynamic batch dimension.

    Uses the torch.export-based exporter (the default since torch 2.9; the TorchScript-based
    one is deprecated); weights are stored inside the file, so the file size is the model size.
    """
    model = model.eval().cpu()
    with _quiet():
        program = torch.onnx.export(
            model, (example.cpu(),), input_names=[INPUT_NAME], dynamic_shapes=({0: "batch"},), dynamo=True,
            external_data=False, verbose=False,
        )
        assert program is not None  # dynamo=True always returns the program
        program.save(str(path), external_data=False)
    return path


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Write ``model`` traced to TorchScript (no Python code needed to load it).

    ``torch.jit.trace`` is deprecated in torch 2.13 in favour of torch.export, but
    TorchScript is still what C++ (libtorch) and mobile runtimes load; tracing is exact
    here because the networks have no data-dependent control flow.
    """
    model = model.eval().cpu()
    with _quiet(), torch.inference_mode():
        traced = torch.jit.trace(model, example.cpu(), check_trace=False)
        traced.save(str(path))
    return path


def convert_torchscript_to_onnx(source: Path, rows: np.ndarray, path: Path) -> Path:
    """Write the TorchScript model at ``source`` as ONNX at ``path`` (dynamic batch dimension).

    ``source`` must be this trainer's own export (``torch.jit.load`` runs the code a TorchScript
    file holds): ``automl export`` only passes files it found in the run directory. A scripted
    module cannot go through torch.export, so this uses torch's TorchScript-based exporter. The
    ONNX outputs must match TorchScript's on ``rows`` (float32 tolerance).

    Raises:
        ValueError: When the export fails or its outputs differ.
    """
    module = torch.jit.load(str(source), map_location="cpu").eval()
    sample = torch.from_numpy(np.ascontiguousarray(rows[:256], dtype=np.float32))
    try:
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (sample[:2],), str(path), input_names=[INPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}}, dynamo=False)
    except Exception as exc:  # the exporter raises many types; any of them means "not convertible"
        raise ValueError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}"[:1500]) from exc
    with torch.no_grad():
        want = module(sample).float().numpy()
    got = np.asarray(load_runner(path)(sample.numpy()), dtype=np.float32)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
        gap = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
        path.unlink(missing_ok=True)
        raise ValueError(f"the ONNX outputs differ from the TorchScript model's by up to {gap:.3g}")
    return path


def convert_torchscript_to_state_dict(source: Path, net: nn.Module, rows: np.ndarray, path: Path) -> Path:
    """Write the weights of the TorchScript model at ``source`` as a ``state_dict`` file at ``path``.

    The file holds tensors only (``torch.load(path, weights_only=True)`` reads it, no code runs).
    It is loaded back into ``net`` (the network built from the trial's config, strict key match)
    whose outputs must match the TorchScript model's on ``rows``.

    Raises:
        ValueError: When the weights do not fit ``net`` or its outputs differ.
    """
    module = torch.jit.load(str(source), map_location="cpu").eval()
    state = {name: tensor.detach().cpu().clone() for name, tensor in module.state_dict().items()}
    torch.save(state, str(path))
    net = net.cpu().eval()
    try:
        net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    except RuntimeError as exc:
        path.unlink(missing_ok=True)
        raise ValueError(f"the TorchScript weights do not fit the network of this config: {exc}"[:1500]) from exc
    sample = torch.from_numpy(np.ascontiguousarray(rows[:256], dtype=np.float32))
    with torch.inference_mode():
        want = module(sample).float().numpy()
        got = net(sample).float().numpy()
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        path.unlink(missing_ok=True)
        raise ValueError("the network loaded with the state_dict does not compute what the TorchScript model does")
    return path


def to_rows(batch: Any) -> np.ndarray:
    """A batch (DataFrame, array or list of rows) as contiguous float32 ``(n, features)``."""
    if hasattr(batch, "to_numpy"):
        batch = batch.to_numpy(dtype=np.float32, na_value=np.nan)
    rows = np.ascontiguousarray(batch, dtype=np.float32)
    return rows.reshape(1, -1) if rows.ndim == 1 else rows


def load_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from float32 rows to raw outputs, running the exported file at ``path``.

    ``.onnx`` runs on ONNX Runtime's CPU provider with one intra- and one inter-op thread
    (the engine's latency protocol); a TorchScript ``.pt`` and a ``torch.export`` program
    ``.pt2`` (what automl-compress writes for torchao and bf16 models) run on torch, whose
    thread count the engine sets. Our own exports only: TorchScript files can hold code.

    Raises:
        ValueError: For a file of another kind.
    """
    suffix = Path(path).suffix
    if suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnx(rows: np.ndarray) -> np.ndarray:
            return session.run(None, {name: rows})[0]

        return run_onnx
    if suffix == ".pt":
        module = torch.jit.load(str(path), map_location="cpu").eval()

        def run_torchscript(rows: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(rows)).numpy()

        return run_torchscript
    if suffix == ".pt2":
        # A quantized program calls torchao's operators, which exist once torchao is imported (it logs a
        # warning for each GPU kernel library it cannot load on a CPU machine, and torch's pytree a deprecation
        # notice about torchao's own enum: not ours to show).
        quieted = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
        levels = [log.level for log in quieted]
        for log in quieted:
            log.setLevel(logging.ERROR)
        try:
            with contextlib.suppress(ImportError):
                import torchao  # noqa: F401
        finally:
            for log, level in zip(quieted, levels, strict=True):
                log.setLevel(level)

        program = torch.export.load(str(path)).module()

        def run_exported(rows: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return program(torch.from_numpy(rows)).float().numpy()

        return run_exported
    raise ValueError(
        f"{path}: not an export of the torch trainer (expected {ONNX_FILE}, {TORCHSCRIPT_FILE} or a torch.export .pt2)"
    )


def decode(outputs: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Class labels from logits (argmax), or the regression values as they are."""
    if classes is None:
        return outputs.reshape(-1)
    return np.asarray(classes)[outputs.argmax(axis=1)]
