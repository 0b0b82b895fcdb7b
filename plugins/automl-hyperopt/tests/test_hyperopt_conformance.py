"""Every hyperopt searcher passes the conformance kit."""

from __future__ import annotations

from automl.testing import PackageConformance, SearcherConformance


class TestHyperoptTPE(SearcherConformance):
    searcher = "hyperopt-tpe"
    options = {"n_startup_jobs": 10}


class TestHyperoptATPE(SearcherConformance):
    searcher = "hyperopt-atpe"


class TestHyperoptAnneal(SearcherConformance):
    searcher = "hyperopt-anneal"


class TestPackage(PackageConformance):
    package = "automl-hyperopt"  # loads and registers every searcher without its libraries
