"""Hook implementations of the automl-torch plugin."""

from __future__ import annotations

from automl.plugin import TrainerSpec, hookimpl
from automl_torch.config import check, check_data, extra_resources, trainer_metrics
from automl_torch.trainer import NeuralNetTrainer


@hookimpl
def automl_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "torch", NeuralNetTrainer, tasks=("classification", "regression"), metrics=trainer_metrics, check=check,
            extra_resources=extra_resources, check_data=check_data, description="PyTorch MLP/CNN/custom networks, epochs as budget, DDP via Ray Train, ONNX + TorchScript export",
        )
    ]
