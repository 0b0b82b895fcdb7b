"""Conformance kits for plugin authors (the pattern of ``optuna.testing`` and scikit-learn's
``parametrize_with_checks``): one class per plugin kind whose ``test_*`` methods pytest runs.

Subclass a kit in a test module, name what it checks, and pytest runs every check on it::

    from automl.testing import SearcherConformance, TrainerConformance

    class TestMySearcher(SearcherConformance):
        searcher = "my-searcher"          # the name it is registered under
        options = {"population": 8}       # spec options for every check

    class TestMyTrainer(TrainerConformance):
        trainer = "my-trainer"
        config = {"depth": 3}             # a small config: the checks train it several times
        params = {"steps": 3}

The kits: :class:`SearcherConformance`, :class:`TrainerConformance`,
:class:`CompressorConformance`, :class:`DatasetConformance`, :class:`StoreConformance`,
:class:`SchedulerConformance` and
:class:`PackageConformance` (or :func:`check_package`). Each runs in-process, without Ray, on
small data (:func:`tiny_splits`), in seconds. :func:`run_checks` runs a kit's checks outside
pytest collection and returns each one's result.
"""

from automl.testing.compressors import CompressorConformance
from automl.testing.datasets import DatasetConformance, no_network
from automl.testing.packages import PackageConformance, PackageReport, check_package, optional_libraries
from automl.testing.runner import CheckResult, failed_checks, run_checks
from automl.testing.schedulers import SchedulerConformance
from automl.testing.searchers import (
    BOOSTED_SIZE_SPACE,
    BOWL_SPACE,
    CONDITIONAL_SPACE,
    MIXED_SPACE,
    SearcherConformance,
    bowl,
    drive,
    flat_accuracy_strengths,
    random_best_median,
    random_bests,
    rank_sum_p_value,
)
from automl.testing.stores import POSTGRES_ENV, StoreConformance, postgres_url
from automl.testing.tables import tiny_splits, tiny_table
from automl.testing.trainers import KNOWN_DIRECTIONS, TrainerConformance, score_predictions

__all__ = [
    "BOOSTED_SIZE_SPACE",
    "BOWL_SPACE",
    "CONDITIONAL_SPACE",
    "KNOWN_DIRECTIONS",
    "MIXED_SPACE",
    "POSTGRES_ENV",
    "CheckResult",
    "CompressorConformance",
    "DatasetConformance",
    "PackageConformance",
    "PackageReport",
    "SchedulerConformance",
    "SearcherConformance",
    "StoreConformance",
    "TrainerConformance",
    "bowl",
    "check_package",
    "drive",
    "failed_checks",
    "flat_accuracy_strengths",
    "no_network",
    "optional_libraries",
    "postgres_url",
    "random_best_median",
    "random_bests",
    "rank_sum_p_value",
    "run_checks",
    "score_predictions",
    "tiny_splits",
    "tiny_table",
]
