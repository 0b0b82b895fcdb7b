"""``prune``: structured pruning that shrinks the layers, or unstructured pruning stored sparse.

**Structured** (default): torch-pruning's ``MetaPruner`` with group L2-magnitude importance
removes whole units and channels, and the layers that consume them lose the matching inputs
(batch norm included), so the exported model is really smaller and faster. ``scope: layer``
takes ``amount`` of every layer's units; ``global`` ranks units over the whole network. The
output layer keeps its width. A layer whose units ``amount`` would all remove fails the trial
with the reason (torch-pruning would silently leave it unpruned).

**Unstructured**: ``torch.nn.utils.prune`` zeroes the smallest weights (L1); fine-tuning keeps
them at zero (pruning masks), then the masks are made permanent. Dense kernels do not skip
zeros, so latency does not improve, and the size gain is reported honestly by storing the
ONNX export's weight matrices as ONNX sparse tensors where that is smaller (ONNX Runtime
densifies them when it loads the file). The TorchScript export stays dense.

Both report ``sparsity``: the fraction of the linear and convolution weights that were removed
or are zero, relative to the model before pruning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from automl.plugin import Compressor, Trainer, TrialError
from automl_compress.params import PruneParams, parse
from automl_compress.torch_tools import (
    example_rows,
    finetune,
    nonzero_weights,
    output_layer,
    torch_trainer,
    weight_count,
    weight_layers,
)

__all__ = ["PruneCompressor"]


class PruneCompressor(Compressor):
    """Prunes the trial's trained torch network, then fine-tunes it (``finetune_epochs``)."""

    def compress_model(self, trainer: Trainer) -> None:
        p: PruneParams = parse(PruneParams, self.params)
        t = torch_trainer(trainer, "prune")
        net = t.net_
        self.before_ = weight_count(net)
        if p.amount > 0:
            if p.method == "structured":
                self._structured(t, net, p)
            else:
                self._unstructured(t, net, p)
        net.eval()
        self.sparsity_ = 1.0 - nonzero_weights(net) / max(self.before_, 1)

    def _structured(self, t: Any, net: Any, p: PruneParams) -> None:
        import torch_pruning as tp

        out = output_layer(net)
        if p.scope == "layer":
            # torch-pruning keeps int(width * (1 - amount)) units of a layer and skips a layer where
            # that is 0 without saying so: a pruning amount that leaves no unit is refused here.
            for name, layer in weight_layers(net):
                width = _width(layer)
                if layer is not out and int(width * (1 - p.amount)) < 1:
                    raise TrialError(
                        f"prune.amount {p.amount:g} leaves no unit in layer {name} ({width} units): use an amount "
                        f"below {1 - 1 / width:.3g} for this network, or scope: global"
                    )
        pruner = tp.pruner.MetaPruner(
            net, example_rows(t), importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=p.amount,
            global_pruning=p.scope == "global", ignored_layers=[out],
        )
        pruner.step()
        empty = [name for name, layer in weight_layers(net) if _width(layer) < 1]
        if empty:
            raise TrialError(f"prune.amount {p.amount:g} left no unit in layer(s) {', '.join(empty)}")
        finetune(t, net, p.finetune_epochs, p.finetune_lr)

    def _unstructured(self, t: Any, net: Any, p: PruneParams) -> None:
        from torch.nn.utils import prune

        layers = [(m, "weight") for _, m in weight_layers(net)]
        if p.scope == "global":
            prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=p.amount)
        else:
            for module, name in layers:
                prune.l1_unstructured(module, name, amount=p.amount)
        # The masks (forward pre-hooks) keep the pruned weights at zero while fine-tuning.
        finetune(t, net, p.finetune_epochs, p.finetune_lr)
        for module, name in layers:
            prune.remove(module, name)
        import torch

        weights = ((name, cast("torch.Tensor", m.weight)) for name, m in weight_layers(net))
        dead = [name for name, w in weights if int(torch.count_nonzero(w)) == 0]
        if dead:
            raise TrialError(
                f"prune.amount {p.amount:g} ({p.scope}) zeroed every weight of layer(s) {', '.join(dead)}: the "
                "network no longer uses its input; lower the amount or use scope: layer"
            )

    def compress_artifact(self, trainer: Trainer, path: Path) -> Path | None:
        p: PruneParams = parse(PruneParams, self.params)
        if p.method != "unstructured" or p.amount == 0 or path.suffix != ".onnx":
            return None
        from automl_compress.onnx_tools import store_sparse

        return store_sparse(path, path.with_name(path.stem + ".sparse.onnx"))

    def metrics(self) -> dict[str, float]:
        return {"sparsity": float(self.sparsity_)} if hasattr(self, "sparsity_") else {}


def _width(layer: Any) -> int:
    return int(layer.out_features if hasattr(layer, "out_features") else layer.out_channels)
