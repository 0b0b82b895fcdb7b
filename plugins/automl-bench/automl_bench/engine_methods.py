"""The multi-fidelity benchmark methods by name: ``automl:`` (whole searches), ``rungs:`` (in-process), ``optuna:``
and ``raytune:`` (the peers, used directly).

Its own module, above :mod:`automl_bench.engine_tasks` and :mod:`automl_bench.rung_sim`, because the in-process
methods build on the engine tasks' classes (a dispatch inside ``engine_tasks`` made an import cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_bench.base import Method
from automl_bench.engine_tasks import EngineMethod, OptunaPrunerPeer
from automl_bench.ray_mf import RayMultiFidelityPeer
from automl_bench.rung_sim import RungSimMethod

__all__ = ["make_engine_method"]


def make_engine_method(name: str, options: Mapping[str, Any] | None = None) -> Method:
    """``automl:SEARCHER+SCHEDULER``, ``rungs:SEARCHER+SCHEDULER`` (in-process), ``optuna:SAMPLER+PRUNER`` or
    ``raytune:SEARCHER+SCHEDULER``."""
    if name.startswith("automl:"):
        return EngineMethod(name, options)
    if name.startswith("rungs:"):
        return RungSimMethod(name, options)
    if name.startswith("raytune:"):
        return RayMultiFidelityPeer(name, options)
    return OptunaPrunerPeer(name, options)
