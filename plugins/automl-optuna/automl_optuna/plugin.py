"""Hook implementations of the automl-optuna plugin.

Importing this module never imports Optuna (see :mod:`automl_optuna.searchers`); each
``check_space`` first checks that the libraries are installed, so a missing one is
reported before any trial, with the package to install.
"""

from __future__ import annotations

from collections.abc import Callable

from automl.plugin import SearcherSpec, SearchSpace, hookimpl
from automl_optuna.bohb import BOHBSearcher
from automl_optuna.searchers import (
    CmaEsSearcher,
    GPSearcher,
    NSGA2Searcher,
    NSGA3Searcher,
    OptunaSearcher,
    QMCSearcher,
    TPESearcher,
    check_cmaes_space,
    require,
)


def _checker(factory: type[OptunaSearcher], extra: Callable[[SearchSpace], None] | None = None) -> Callable[[SearchSpace], None]:
    def check(space: SearchSpace) -> None:
        require("optuna", *factory.needs)  # raises PluginError: pip install ...
        if extra is not None:
            extra(space)

    return check


def searcher_specs() -> list[SearcherSpec]:
    """Every searcher of the plugin (names are stable: specs and benchmarks use them)."""
    tpe = "Optuna TPE (multivariate and group options; all objectives when several)"
    gp = "Optuna Gaussian-process BO (needs torch; all objectives when several)"
    return [
        SearcherSpec("tpe", TPESearcher, multi_objective=True, description=tpe, check_space=_checker(TPESearcher)),
        SearcherSpec("optuna-tpe", TPESearcher, multi_objective=True, description=f"alias of tpe: {tpe}",
                     check_space=_checker(TPESearcher)),
        SearcherSpec("gp", GPSearcher, multi_objective=True, description=gp, check_space=_checker(GPSearcher)),
        SearcherSpec("optuna-gp", GPSearcher, multi_objective=True, description=f"alias of gp: {gp}",
                     check_space=_checker(GPSearcher)),
        SearcherSpec("cmaes", CmaEsSearcher, description="Optuna CMA-ES over float and int parameters (primary objective)",
                     check_space=_checker(CmaEsSearcher, check_cmaes_space)),
        SearcherSpec("nsga2", NSGA2Searcher, multi_objective=True, description="Optuna NSGA-II genetic algorithm",
                     check_space=_checker(NSGA2Searcher)),
        SearcherSpec("nsga3", NSGA3Searcher, multi_objective=True,
                     description="Optuna NSGA-III (reference points, for many objectives)",
                     check_space=_checker(NSGA3Searcher)),
        SearcherSpec("qmc", QMCSearcher, multi_objective=True,
                     description="Optuna quasi-Monte Carlo (Sobol/Halton) space filling", check_space=_checker(QMCSearcher)),
        SearcherSpec("bohb", BOHBSearcher, multi_objective=True,
                     description="BOHB-style multi-fidelity: Optuna TPE (or a GP, model: gp) on the highest rung with enough "
                     "results (learns from every rung of asha/hyperband/moasha; all objectives when several)",
                     check_space=_checker(BOHBSearcher)),
    ]


@hookimpl
def automl_register_searchers() -> list[SearcherSpec]:
    return searcher_specs()
