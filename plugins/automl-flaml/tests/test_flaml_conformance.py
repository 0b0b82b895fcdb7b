"""Both FLAML searchers pass the conformance kit."""

from __future__ import annotations

from automl.testing import SearcherConformance


class TestCFO(SearcherConformance):
    searcher = "cfo"


class TestBlendSearch(SearcherConformance):
    searcher = "blendsearch"
