"""Hook implementations of the automl-hyperopt plugin (hyperopt is imported only when used)."""

from __future__ import annotations

from collections.abc import Callable

from automl.plugin import SearcherSpec, SearchSpace, hookimpl
from automl_hyperopt.searchers import (
    AnnealSearcher,
    ATPESearcher,
    HyperoptSearcher,
    TPESearcher,
    check_hyperopt_space,
    require,
)


def _checker(factory: type[HyperoptSearcher]) -> Callable[[SearchSpace], None]:
    def check(space: SearchSpace) -> None:
        require("hyperopt", *factory.needs)  # raises PluginError: pip install ...
        check_hyperopt_space(space)

    return check


def searcher_specs() -> list[SearcherSpec]:
    """Every searcher of the plugin (names are stable: specs and benchmarks use them)."""
    return [
        SearcherSpec("hyperopt-tpe", TPESearcher, description="hyperopt TPE over the conditional tree (primary objective)",
                     check_space=_checker(TPESearcher)),
        SearcherSpec("hyperopt-atpe", ATPESearcher,
                     description="hyperopt adaptive TPE (LightGBM-tuned TPE settings; primary objective)",
                     check_space=_checker(ATPESearcher)),
        SearcherSpec("hyperopt-anneal", AnnealSearcher, description="hyperopt simulated annealing (primary objective)",
                     check_space=_checker(AnnealSearcher)),
    ]


@hookimpl
def automl_register_searchers() -> list[SearcherSpec]:
    return searcher_specs()
