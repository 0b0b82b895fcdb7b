"""Hook implementations of the automl-nevergrad plugin (nevergrad is imported only when used)."""

from __future__ import annotations

from automl.plugin import SearcherSpec, SearchSpace, hookimpl
from automl_nevergrad.searchers import (
    CMASearcher,
    DESearcher,
    NGOptSearcher,
    OnePlusOneSearcher,
    PSOSearcher,
    require,
)


def _check(space: SearchSpace) -> None:
    # Every parameter kind maps onto nevergrad; only the library itself can be missing.
    require()  # raises PluginError: pip install nevergrad


def searcher_specs() -> list[SearcherSpec]:
    """Every searcher of the plugin (names are stable: specs and benchmarks use them)."""
    return [
        SearcherSpec("ngopt", NGOptSearcher, multi_objective=True, check_space=_check,
                     description="nevergrad NGOpt: picks its algorithm from space, budget and workers"),
        SearcherSpec("oneplusone", OnePlusOneSearcher, multi_objective=True, check_space=_check,
                     description="nevergrad (1+1) evolution strategy"),
        SearcherSpec("de", DESearcher, multi_objective=True, check_space=_check,
                     description="nevergrad differential evolution (TwoPointsDE)"),
        SearcherSpec("pso", PSOSearcher, multi_objective=True, check_space=_check,
                     description="nevergrad particle swarm"),
        SearcherSpec("ng-cma", CMASearcher, multi_objective=True, check_space=_check,
                     description="nevergrad CMA-ES (choices through softmax encoding)"),
    ]


@hookimpl
def automl_register_searchers() -> list[SearcherSpec]:
    return searcher_specs()
