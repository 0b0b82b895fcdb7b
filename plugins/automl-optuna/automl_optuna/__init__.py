"""Optuna searchers for automl (registered through the ``automl`` entry point as ``optuna``).

Names: ``tpe`` (alias ``optuna-tpe``), ``gp`` (alias ``optuna-gp``), ``cmaes``, ``nsga2``,
``nsga3``, ``qmc``, ``bohb`` (model-based multi-fidelity, :mod:`automl_optuna.bohb`).
"""

from automl_optuna.bohb import BOHBSearcher
from automl_optuna.searchers import (
    CmaEsSearcher,
    GPSearcher,
    NSGA2Searcher,
    NSGA3Searcher,
    OptunaSearcher,
    QMCSearcher,
    TPESearcher,
)

__all__ = ["BOHBSearcher", "CmaEsSearcher", "GPSearcher", "NSGA2Searcher", "NSGA3Searcher", "OptunaSearcher", "QMCSearcher", "TPESearcher"]
