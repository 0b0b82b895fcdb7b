"""Conformance checks for plugin authors (the pattern of ``optuna.testing``).

Subclass :class:`SearcherConformance` in a test module, name your searcher, and pytest
runs every check on it::

    from automl.testing import SearcherConformance

    class TestMySearcher(SearcherConformance):
        searcher = "my-searcher"          # the name it is registered under
        options = {"population": 8}       # spec options for every check

The checks run in-process (no Ray) and take seconds.
"""

from automl.testing.searchers import (
    BOWL_SPACE,
    CONDITIONAL_SPACE,
    MIXED_SPACE,
    SearcherConformance,
    bowl,
    drive,
    random_best_median,
    random_bests,
    rank_sum_p_value,
)

__all__ = [
    "BOWL_SPACE",
    "CONDITIONAL_SPACE",
    "MIXED_SPACE",
    "SearcherConformance",
    "bowl",
    "drive",
    "random_best_median",
    "random_bests",
    "rank_sum_p_value",
]
