"""nevergrad searchers for automl (registered through the ``automl`` entry point as ``nevergrad``).

Names: ``ngopt``, ``oneplusone``, ``de``, ``pso``, ``ng-cma``.
"""

from automl_nevergrad.searchers import (
    CMASearcher,
    DESearcher,
    NevergradSearcher,
    NGOptSearcher,
    OnePlusOneSearcher,
    PSOSearcher,
)

__all__ = ["CMASearcher", "DESearcher", "NGOptSearcher", "NevergradSearcher", "OnePlusOneSearcher", "PSOSearcher"]
