"""The local Ray that the benchmark methods running on Ray Tune share (one per process).

Its own module, below :mod:`automl_bench.methods` (Ray Tune's searchers) and :mod:`automl_bench.ray_mf` (Ray Tune's
multi-fidelity pairs), so that neither imports the other for it.
"""

from __future__ import annotations

import logging
import os

from automl_bench.base import BenchmarkError

__all__ = ["RAY_CPUS", "ensure_ray"]

#: Ray settings as the engine uses them (fewer per-trial loggers, no usage reporting).
_RAY_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100",
}
RAY_CPUS = 2


def ensure_ray(num_cpus: int = RAY_CPUS) -> bool:
    """Start a local Ray unless one runs in this process; True when this call started it."""
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return False
    try:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    except Exception as exc:  # Ray raises bare Exceptions (its node's start-up timing out on a busy machine)
        raise BenchmarkError(f"cannot start a local Ray for the methods that run on it: {exc} (on a busy machine "
                             "Ray's start-up can time out: run again, or choose in-process methods with "
                             "--methods)") from exc
    return True
