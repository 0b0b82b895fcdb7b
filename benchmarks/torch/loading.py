"""Data loading throughput of the torch trainer (issue 18): training images per second per CPU through the
trial's ``DataLoader``, with and without augmentation, with 0 and N worker processes.

    nice -n 19 .venv/bin/python -m benchmarks.torch.loading --epochs 3 --workers 0 1

Reads mnist5k (28x28), builds the training batches exactly as a trial does (:class:`automl_torch.augment.Batches`
behind a ``BatchSampler``, batch 64) and iterates the loader without training, so the figure is what loading and
augmenting cost. CPU seconds are this process's and its workers' (``resource``), images per CPU second is the
figure to read on a loaded machine; wall-clock images per second is printed beside it with the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Sequence

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(X: torch.Tensor, y: torch.Tensor, augment: object, workers: int, epochs: int) -> tuple[float, float]:
    """Images per wall second and per CPU second over ``epochs`` passes."""
    from automl_torch.augment import Batches
    from automl_torch.loop import _one_thread

    data = Batches(X, y, augment, seed=0)  # type: ignore[arg-type]
    loader = DataLoader(data, sampler=BatchSampler(RandomSampler(data), 64, drop_last=False), batch_size=None,
                        num_workers=workers, worker_init_fn=_one_thread if workers else None)
    seen, wall, cpu = 0, time.perf_counter(), _cpu_seconds()
    for epoch in range(epochs):
        data.epoch = epoch
        for xb, _ in loader:
            seen += len(xb)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return seen / wall, seen / max(cpu, 1e-9)


def main(argv: Sequence[str] | None = None) -> None:
    from automl_torch.augment import Augment

    from automl.plugin import get_plugin_manager

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    table = get_plugin_manager().datasets.get("mnist5k").load({})
    X = torch.as_tensor(table.X.to_numpy(), dtype=torch.float32)
    y = torch.as_tensor(table.y.to_numpy().copy())
    print(f"mnist5k {tuple(X.shape)}, batch 64, {args.epochs} epochs, torch {torch.__version__}, "
          f"load average {os.getloadavg()}")
    print("| augmentation | loader workers | images/s (wall) | images per CPU second |")
    print("|---|---|---|---|")
    for name, augment in (("none", None), ("flip + crop 2", Augment((1, 28, 28), flip=True, crop=2))):
        for workers in args.workers:
            per_s, per_cpu = measure(X, y, augment, workers, args.epochs)
            print(f"| {name} | {workers} | {per_s:,.0f} | {per_cpu:,.0f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
