"""``lowrank``: each linear layer ``W`` (out x in) factored by truncated SVD into two of rank ``r``.

``W ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T)``: a ``Linear(in, r)`` without bias followed by a
``Linear(r, out)`` with the original bias, ``r (in + out)`` weights instead of ``in * out``.
A layer where that is not fewer weights is left alone, and so is the output layer (a rank
below the number of classes would merge classes). Then ``finetune_epochs`` of training
with the trial's settings recover what the truncation lost. torch has no low-rank linear
layer of its own; the two plain ``Linear`` layers export to ONNX and TorchScript as usual.
"""

from __future__ import annotations

from automl.plugin import Compressor, Trainer
from automl_compress.params import LowRankParams, parse
from automl_compress.torch_tools import finetune, output_layer, torch_trainer

__all__ = ["LowRankCompressor"]


class LowRankCompressor(Compressor):
    """Factorises the linear layers of the trial's trained torch network, then fine-tunes it."""

    def compress_model(self, trainer: Trainer) -> None:
        import torch
        from torch import nn

        p: LowRankParams = parse(LowRankParams, self.params)
        t = torch_trainer(trainer, "lowrank")
        net = t.net_
        self.factored_ = 0
        if not p.enabled:
            return
        out = output_layer(net)
        targets = [(parent, name, child) for parent in net.modules() for name, child in parent.named_children()
                   if isinstance(child, nn.Linear) and child is not out]
        for parent, name, layer in targets:
            n_out, n_in = layer.weight.shape
            rank = min(p.rank if p.rank is not None else max(1, round(p.ratio * min(n_in, n_out))), n_in, n_out)
            if rank * (n_in + n_out) >= n_in * n_out:
                continue  # not smaller: keep the layer as it is
            with torch.no_grad():
                U, S, Vh = torch.linalg.svd(layer.weight.float(), full_matrices=False)
                root = S[:rank].sqrt()
                first = nn.Linear(n_in, rank, bias=False).to(layer.weight.device)
                second = nn.Linear(rank, n_out, bias=layer.bias is not None).to(layer.weight.device)
                first.weight.copy_(root[:, None] * Vh[:rank])
                second.weight.copy_(U[:, :rank] * root[None, :])
                if layer.bias is not None:
                    second.bias.copy_(layer.bias)
            setattr(parent, name, nn.Sequential(first, second))
            self.factored_ += 1
        if self.factored_:
            finetune(t, net, p.finetune_epochs, p.finetune_lr)
        net.eval()
