"""Train-time image augmentation (flips, padded random crops) and DataLoader workers sized to the trial's CPUs."""

from __future__ import annotations

import pytest
import torch
from automl_torch.augment import Augment, Batches, loader_workers
from automl_torch.config import settings_from


def _images(n: int = 64) -> torch.Tensor:
    return torch.arange(n * 2 * 5 * 6, dtype=torch.float32).reshape(n, 2 * 5 * 6) + 1  # no zero pixel


def test_flips_mirror_some_images_and_leave_the_others() -> None:
    rows = _images()
    out = Augment((2, 5, 6), flip=True)(rows, torch.Generator().manual_seed(0)).reshape(-1, 2, 5, 6)
    images = rows.reshape(-1, 2, 5, 6)
    mirrored = [bool(torch.equal(o, i.flip(-1))) for o, i in zip(out, images, strict=True)]
    kept = [bool(torch.equal(o, i)) for o, i in zip(out, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored) and any(kept)


def test_a_crop_is_a_window_of_the_zero_padded_image() -> None:
    rows = _images()
    out = Augment((2, 5, 6), crop=2)(rows, torch.Generator().manual_seed(1)).reshape(-1, 2, 5, 6)
    padded = torch.nn.functional.pad(rows.reshape(-1, 2, 5, 6), (2, 2, 2, 2))
    offsets = set()
    for o, p in zip(out, padded, strict=True):
        found = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(o, p[:, dy:dy + 5, dx:dx + 6])]
        assert found
        offsets.add(found[0])
    assert len(offsets) > 5  # random places, not one


def test_a_batch_is_augmented_the_same_whoever_builds_it_and_differently_each_epoch() -> None:
    X, y = _images(), torch.arange(64)
    augment = Augment((2, 5, 6), flip=True, crop=1)
    one, two = Batches(X, y, augment, seed=3), Batches(X.clone(), y, augment, seed=3)
    batch = [5, 9, 2, 40]
    assert torch.equal(one[batch][0], two[batch][0]) and torch.equal(one[batch][1], y[batch])
    two.epoch = 1
    assert not torch.equal(one[batch][0], two[batch][0])
    assert torch.equal(Batches(X, y)[batch][0], X[batch])  # no augmentation: the rows themselves


def test_workers_are_asked_for_and_capped_at_the_trials_cpus() -> None:
    cpu = torch.device("cpu")
    assert loader_workers("auto", 4, True, cpu) == 0  # measured: in-process loading costs less CPU
    assert loader_workers(3, 4, True, cpu) == 3 and loader_workers(3, 2, True, cpu) == 2
    assert loader_workers(1, 0.5, False, cpu) == 1 and loader_workers(0, 4, True, cpu) == 0


def test_augmentation_needs_an_image_shape() -> None:
    with pytest.raises(ValueError, match="augment_flip / augment_crop work on images"):
        settings_from({"augment_flip": True}, {})


def test_training_with_worker_processes_gives_the_same_network_as_without(make_trainer) -> None:
    config = {"network": "cnn", "channels": 4, "conv_layers": 1, "units": 16, "augment_flip": True,
              "augment_crop": 1, "lr": 0.01}
    weights = []
    for workers in (0, 2):
        trainer = make_trainer(config, {"epochs": 2, "input_shape": [1, 8, 8], "loader_workers": workers}, cpus=2)
        for _ in trainer.run_steps(1):
            pass
        assert trainer.fitter_ is not None and trainer.fitter_.loader.num_workers == workers
        weights.append({k: v.clone() for k, v in trainer.net_.state_dict().items()})
    assert all(torch.allclose(weights[0][k].float(), weights[1][k].float()) for k in weights[0])
