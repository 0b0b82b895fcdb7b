"""hyperopt searchers for automl (registered through the ``automl`` entry point as ``hyperopt``).

Names: ``hyperopt-tpe``, ``hyperopt-atpe``, ``hyperopt-anneal``.
"""

from automl_hyperopt.searchers import AnnealSearcher, ATPESearcher, HyperoptSearcher, TPESearcher

__all__ = ["ATPESearcher", "AnnealSearcher", "HyperoptSearcher", "TPESearcher"]
