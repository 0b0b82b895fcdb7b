"""Every nevergrad searcher passes the conformance kit."""

from __future__ import annotations

from automl.testing import PackageConformance, SearcherConformance


class TestNGOpt(SearcherConformance):
    searcher = "ngopt"
    options = {"budget": 40}


class TestOnePlusOne(SearcherConformance):
    searcher = "oneplusone"


class TestDE(SearcherConformance):
    searcher = "de"
    n_improve = 80  # its first generation (30 individuals) is random


class TestPSO(SearcherConformance):
    searcher = "pso"


class TestCMA(SearcherConformance):
    searcher = "ng-cma"


class TestPackage(PackageConformance):
    package = "automl-nevergrad"  # loads and registers every searcher without its libraries
