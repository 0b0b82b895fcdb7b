"""The core's own searchers pass the conformance kit that plugin authors use."""

from __future__ import annotations

from automl.testing import SearcherConformance


class TestRandom(SearcherConformance):
    searcher = "random"
    improves = False  # random search is the reference the check compares against


class TestGrid(SearcherConformance):
    searcher = "grid"
    options = {"shuffle": True}  # the kit's grids are larger than its budgets: visit them in seeded order
    improves = False  # a fixed grid is no optimizer


class TestGridInOrder(SearcherConformance):
    searcher = "grid"
    improves = False
    seeded = False  # without shuffle the order is the grid's own, whatever the seed
