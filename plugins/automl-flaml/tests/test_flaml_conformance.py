"""Both FLAML searchers pass the conformance kit."""

from __future__ import annotations

from automl.testing import PackageConformance, SearcherConformance


class TestCFO(SearcherConformance):
    searcher = "cfo"
    # automl_flaml tells FLAML a stopped trial's partial value as its result, as FLAML does under
    # its own schedulers (see automl_flaml.searchers); the kit's check catches exactly that.
    stopped_as_final = True


class TestBlendSearch(SearcherConformance):
    searcher = "blendsearch"
    stopped_as_final = True


class TestPackage(PackageConformance):
    package = "automl-flaml"  # loads and registers every searcher without its libraries


class TestLearners(SearcherConformance):
    searcher = "learners"
    stopped_as_final = True  # its CFO threads are told as cfo's are
