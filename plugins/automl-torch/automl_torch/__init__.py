"""PyTorch trainer for automl (registered through the ``automl`` entry point as ``torch``).

Importing this package does not import torch; a trial does, when it starts.
"""

from automl_torch.trainer import NeuralNetTrainer

__all__ = ["NeuralNetTrainer"]
