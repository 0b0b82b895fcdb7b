"""Train-time image augmentation and the training batches' dataset (what the trial's ``DataLoader`` reads).

Random horizontal flips and random crops with zero padding, as torchvision's ``RandomHorizontalFlip`` and
``RandomCrop(size, padding=p)`` do them. Written here in a few tensor operations because torchvision
cannot be installed beside the CPU build of torch 2.13 this project uses; they work on a whole batch at
once (one gather), not image by image.

Randomness is drawn from a generator seeded by the trial's seed, the epoch and the batch's first row, so
a batch is augmented the same way whichever ``DataLoader`` worker builds it and however many there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

__all__ = ["Augment", "Batches", "loader_workers"]


@dataclass(frozen=True)
class Augment:
    """What to do to each training image: flip left-right with probability 0.5, crop after padding ``crop``."""

    shape: tuple[int, int, int]
    flip: bool = False
    crop: int = 0

    def __call__(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented copies of ``rows`` (flat images, ``(batch, C*H*W)``, raw pixel values)."""
        n = rows.shape[0]
        images = rows.reshape(n, *self.shape)
        if self.flip:
            flipped = torch.rand(n, generator=generator) < 0.5
            images = torch.where(flipped.to(rows.device)[:, None, None, None], images.flip(-1), images)
        if self.crop > 0:
            images = self._crop(images, generator)
        return images.reshape(n, -1)

    def _crop(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        p = self.crop
        padded = torch.nn.functional.pad(images, (p, p, p, p))  # zeros, as torchvision's fill=0
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(images.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(images.device)
        rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
        batch = torch.arange(n, device=images.device)[:, None, None, None]
        channel = torch.arange(c, device=images.device)[None, :, None, None]
        return padded[batch, channel, rows, cols]


class Batches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Training rows read a batch at a time (``dataset[list of indices]``, one gather), augmented when asked.

    A per-row fetch plus collate costs more than a training step of a small network, so a
    ``BatchSampler`` hands whole index lists to ``__getitem__``. :attr:`epoch` is set before each epoch
    (``DataLoader`` workers get a copy of the dataset when the epoch's iterator starts).
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, augment: Augment | None = None, seed: int = 0) -> None:
        self.X, self.y, self.augment, self.seed = X, y, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        index = torch.as_tensor(indices, dtype=torch.long, device=self.X.device)
        rows = self.X[index]
        if self.augment is not None:
            generator = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(indices[0]), len(indices))) % 2**63)
            rows = self.augment(rows, generator)
        return rows, self.y[index]


def loader_workers(setting: int | str, cpus: float, augmenting: bool, device: torch.device) -> int:
    """``DataLoader`` worker processes of a trial: the setting; ``auto`` is none.

    Measured (``benchmarks/torch/loading.py``, mnist5k 28x28, batch 64): handing a batch from a worker
    process costs about 3x the CPU of gathering and augmenting it in the training process (flip + crop:
    ~47,000 images per CPU second in-process, ~16,000-19,000 through one worker), because the images are
    decoded once, when the data is read, and a batch is one tensor gather. A worker only helps a trial with
    CPUs its training leaves idle, which torch's threads (set to the trial's CPUs) do not; so ``auto`` keeps
    loading in the training process, and ``loader_workers: N`` (at most the trial's CPUs) asks for workers.
    """
    if setting == "auto" or device.type != "cpu":
        return 0
    return max(0, min(int(setting), max(1, round(cpus))))
