"""``quantize``: int8 through ONNX Runtime or torchao, fp16 / bf16 where the deployment runs them.

Every mode rewrites the export (``compress_artifact``); size, latency and the metrics come from
the rewritten file.

- ``int8_dynamic``: ONNX Runtime ``quantize_dynamic`` on the ONNX export (int8 weights,
  activations quantized per call). Linear layers only by default: ONNX Runtime's int8
  convolutions (ConvInteger) were 3-30x slower than float ones on the x86 CPUs measured.
- ``fp16``: ONNX Runtime's float16 converter (inputs and outputs stay float32). ONNX Runtime's
  CPU provider has few float16 kernels and computes the others in float32 behind casts it
  inserts, so on a CPU this halves the file without running faster.
- ``torchao_int8_weight_only`` / ``torchao_int8_dynamic``: torchao ``quantize_``
  (``Int8WeightOnlyConfig`` / ``Int8DynamicActivationInt8WeightConfig``) on a copy of the
  network, saved as a ``torch.export`` program (``.pt2``) and run by torch. torchao's tensor
  subclasses cannot go through the trainer's ONNX or TorchScript exporters ("Couldn't swap
  Linear.weight"), which is why torchao runs here, after the export, and not in memory
  before it.
- ``bf16``: the network in bfloat16 as a ``torch.export`` program (inputs cast in, outputs
  cast back to float32); worth it only on CPUs with native bf16 (AVX512-BF16, AMX).

Measured on this project's 2-core x86 machines (benchmarks/compress/RESULTS.md, digits MLP
64-256-256-10, one thread; against the fp32 ONNX file on ONNX Runtime): ``int8_dynamic`` is the
one mode that pays, 3.7x smaller, 1.1x faster at batch 1 and 2.0x at batch 256 (the default).
None of the others runs faster on such a CPU: ``fp16`` 1.9x smaller, same speed;
``torchao_int8_weight_only`` 2.1x smaller but 20x slower at batch 1 (no smaller on the digits
CNN); ``torchao_int8_dynamic`` 1.5x smaller on that MLP but larger than the fp32 ONNX file on
small networks (136,608 against 116,466 bytes: the ``.pt2`` container and per-tensor scales
outweigh the int8 weights) and 50x slower at batch 1; ``bf16`` 1.8x smaller, 13x slower. They
are for deployments that run torch (or bf16 hardware) anyway; the search measures each trial's
file, so a mode that does not pay on the machine simply loses on the front.

``targets`` lists what the deployment runs (runtimes and number formats); the plan refuses a
mode outside it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from automl.plugin import Compressor, Trainer, TrialError
from automl_compress.onnx_tools import quiet_logger
from automl_compress.params import QuantizeParams, parse
from automl_compress.torch_tools import example_rows, torch_trainer

__all__ = ["QuantizeCompressor", "save_program"]


class QuantizeCompressor(Compressor):
    """Quantizes the trial's exported torch model (see the module docstring for the modes)."""

    def compress_artifact(self, trainer: Trainer, path: Path) -> Path | None:
        p: QuantizeParams = parse(QuantizeParams, self.params)
        if p.mode == "none":
            return None
        t = torch_trainer(trainer, "quantize")
        if p.mode in ("int8_dynamic", "fp16"):
            if path.suffix != ".onnx":
                raise TrialError(f"quantize.mode {p.mode} rewrites an ONNX export; this trial exported {path.name}")
            from automl_compress.onnx_tools import quantize_int8_dynamic, to_float16

            base = path.name.removesuffix(".onnx")
            if p.mode == "fp16":
                return to_float16(path, path.with_name(f"{base}.fp16.onnx"))
            return quantize_int8_dynamic(path, path.with_name(f"{base}.int8.onnx"), ops=p.ops, per_channel=p.per_channel)
        import torch

        net = copy.deepcopy(t.net_).cpu().eval()
        if p.mode == "bf16":
            from automl_compress.modules import CastTo

            program: Any = CastTo(net, torch.bfloat16)
        else:
            # torchao logs a warning for each optional GPU kernel library it cannot load on a CPU machine, and its
            # import makes torch's pytree log a deprecation notice about torchao's own enum: noise to a user.
            with quiet_logger("torchao"), quiet_logger("torch.utils._pytree"):
                from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_
            config = Int8WeightOnlyConfig() if p.mode == "torchao_int8_weight_only" else Int8DynamicActivationInt8WeightConfig()
            quantize_(net, config)
            program = net
        return save_program(program, example_rows(t).cpu(), path.with_name(f"model.{p.mode}.pt2"))




def save_program(net: Any, example: Any, out: Path) -> Path:
    """``torch.export`` ``net`` with a dynamic batch dimension and save it to ``out`` (``.pt2``)."""
    import torch

    with torch.inference_mode(False), torch.no_grad():
        program = torch.export.export(net, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(out))
    return out
