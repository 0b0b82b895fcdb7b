"""Every hyperopt searcher passes the conformance kit."""

from __future__ import annotations

from automl.testing import PackageConformance, SearcherConformance


class TestHyperoptTPE(SearcherConformance):
    searcher = "hyperopt-tpe"
    options = {"n_startup_jobs": 10}


class TestHyperoptATPE(SearcherConformance):
    searcher = "hyperopt-atpe"
    # ATPE fits LightGBM models per suggestion (~0.3-1 s): short sequential checks; the bowl check
    # keeps 40 trials (after 25 its five bests are not yet better than random search's at 1%).
    n_trials = 10


class TestHyperoptAnneal(SearcherConformance):
    searcher = "hyperopt-anneal"


class TestPackage(PackageConformance):
    package = "automl-hyperopt"  # loads and registers every searcher without its libraries
