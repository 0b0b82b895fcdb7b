"""Honest objectives: latency timed on the exported model, size as its bytes on disk (both processes: the
Ray worker measures a trial's export, the driver the ensemble's and the front's).

Latency protocol: one thread, warm-up calls, then the median of many timed calls at
the spec's batch size. Trials measure a provisional latency; the front's members are
measured again after the search, one at a time, next to a fixed reference workload
whose drift says how much the machine's speed moved in between.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from automl.interfaces import Trainer
    from automl.trial_job import Job

__all__ = ["file_size", "measure_artifact", "measure_latency", "reference_latency", "single_thread"]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Limit BLAS/OpenMP pools (and torch, when loaded) to one thread inside the block."""
    from threadpoolctl import threadpool_limits

    torch = _loaded("torch")
    previous = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if torch and previous:
            torch.set_num_threads(previous)


def _loaded(name: str) -> Any:
    import sys

    return sys.modules.get(name)


def measure_latency(predict: Callable[[Any], Any], batch: Any, *, warmup: int = 10, repeats: int = 50) -> float:
    """Median milliseconds of ``predict(batch)`` over ``repeats`` calls after ``warmup`` calls."""
    with single_thread():
        for _ in range(warmup):
            predict(batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(batch)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


_REF = np.random.default_rng(0).standard_normal((128, 128))


def reference_latency(repeats: int = 200) -> float:
    """Median milliseconds of a fixed small matrix product: the drift yardstick."""
    return measure_latency(lambda a: a @ a, _REF, warmup=20, repeats=repeats)


def file_size(path: Path) -> int:
    """Serialized bytes of an exported model (a file, or every file under a directory)."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return os.path.getsize(path)


def measure_artifact(trainer: Trainer, artifact: Path, job: Job, which: Sequence[str], quick: bool,
             how: dict[str, str] | None = None) -> dict[str, float]:
    """Size and latency of the exported file; ``how`` (when given) receives what each figure is."""
    out: dict[str, float] = {}
    notes: dict[str, str] = {}
    if "size_bytes" in which:
        size, kind = trainer.model_size(artifact)
        out["size_bytes"] = float(size)
        notes["size_bytes"] = f"{artifact.suffix.lstrip('.') or artifact.name}: {kind}"
    if "latency_ms" in which:
        predict = trainer.load_predictor(artifact)
        batch = trainer.sample_input(job.batch_size)
        warmup, repeats = (2, 10) if quick else (job.warmup, job.repeats)
        out["latency_ms"] = measure_latency(predict, batch, warmup=warmup, repeats=repeats)
        notes["latency_ms"] = (f"{artifact.suffix.lstrip('.') or artifact.name}, batch {job.batch_size}, 1 thread, "
                               f"median of {repeats} calls after {warmup}")
    if how is not None:
        how.update(notes)
    return out
