"""What the torch compressors share: the trained network of a torch trial, its data, fine-tuning.

Fine-tuning reuses the torch trainer's own training loop (:class:`automl_torch.loop.Fitter`)
with the trial's settings (optimizer, batch size, label smoothing, class weights), so a
compressed model is trained the way the trial's model was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from automl.plugin import TrialError

if TYPE_CHECKING:
    import torch
    from automl_torch.trainer import NeuralNetTrainer
    from torch import nn

__all__ = [
    "PRUNABLE",
    "example_rows",
    "finetune",
    "nonzero_weights",
    "output_layer",
    "torch_trainer",
    "weight_count",
    "weight_layers",
]


def torch_trainer(trainer: Any, compressor: str) -> NeuralNetTrainer:
    """The trial's torch trainer, trained (its network is ``trainer.net_``).

    Raises:
        TrialError: For another trainer (the plan refuses it; this guards direct use).
    """
    from automl_torch.trainer import NeuralNetTrainer

    if not isinstance(trainer, NeuralNetTrainer):
        raise TrialError(f"compressor {compressor!r} compresses torch models; got a {type(trainer).__name__}")
    if not hasattr(trainer, "net_"):
        raise TrialError(f"compressor {compressor!r} needs a trained model: the trial trained nothing")
    return trainer


def example_rows(trainer: NeuralNetTrainer, n: int = 2) -> torch.Tensor:
    """``n`` raw validation rows (training rows when validation has fewer), float32 on the trial's device."""
    import torch

    rows = trainer.arrays("valid").X[:n]
    if len(rows) < n:
        rows = trainer.arrays("train").X[:n]
    return torch.as_tensor(rows.copy(), device=trainer.device_)


PRUNABLE: tuple[str, ...] = ("Linear", "Conv1d", "Conv2d", "Conv3d")


def weight_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named linear and convolution layers of ``net``, in registration order."""
    return [(name, m) for name, m in net.named_modules() if type(m).__name__ in PRUNABLE]


def output_layer(net: nn.Module) -> nn.Module:
    """The layer that produces the outputs: the last linear or convolution layer registered.

    The built-in networks (and the usual custom ones) register their output layer last; it
    must keep its width (one output per class).
    """
    layers = weight_layers(net)
    if not layers:
        raise TrialError("the network has no linear or convolution layer to compress")
    return layers[-1][1]


def weight_count(net: nn.Module) -> int:
    """Weights of the linear and convolution layers (biases and normalisation left out)."""
    return sum(int(cast("torch.Tensor", m.weight).numel()) for _, m in weight_layers(net))


def nonzero_weights(net: nn.Module) -> int:
    import torch

    return sum(int(torch.count_nonzero(cast("torch.Tensor", m.weight))) for _, m in weight_layers(net))


def finetune(trainer: NeuralNetTrainer, net: nn.Module, epochs: int, lr_fraction: float, **settings: Any) -> None:
    """Train ``net`` for ``epochs`` epochs with the trial's settings and loop, at ``lr_fraction`` of its lr.

    Cosine-annealed, no warm-up, no early stopping; ``settings`` override more (label_smoothing).

    Raises:
        TrialError: When the training loss is not finite.
    """
    if epochs <= 0:
        return
    from automl_torch.loop import Fitter

    s = trainer.settings.model_copy(update={
        "epochs": epochs, "warmup_epochs": 0, "patience": 0, "schedule": "cosine",
        "lr": trainer.settings.lr * lr_fraction, "distributed": None, **settings,
    })
    fitter = Fitter(
        net, s, task=trainer.context.task, train=trainer.arrays("train"), valid=trainer.arrays("valid"),
        n_classes=len(trainer.classes_ or ()), device=trainer.device_, seed=trainer.context.seed + 7919,
        target_std=trainer.target_[1] if trainer.target_ else 1.0,
    )
    for epoch in range(1, epochs + 1):
        fitter.train_epoch(epoch)
    net.eval()
