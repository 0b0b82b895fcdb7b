"""The core's own searchers: random and grid. Registered through the same hook as any plugin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from automl.hookspecs import hookimpl
from automl.interfaces import Objective, Searcher, SearcherSpec
from automl.space import SearchSpace


class RandomSearcher(Searcher):
    """Uniform (log-uniform for log parameters) independent draws.

    Each trial's config comes from its own generator seeded with ``(seed, number)``, so
    a config depends only on the seed and the trial number, never on the order in which
    concurrent trials finish, and a resumed search continues the same sequence.
    """

    def suggest(self, number: int) -> dict[str, Any] | None:
        return self.space.sample(np.random.default_rng([self.seed, number]))


class GridSearcher(Searcher):
    """Every combination of the parameters' grid values, in order (or shuffled).

    Args:
        shuffle: Visit the grid in a random order fixed by the seed (useful when the
            budget is smaller than the grid).
    """

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, shuffle: bool = False
    ) -> None:
        super().__init__(space, objectives, seed=seed)
        self.shuffle = shuffle
        self._points = list(space.grid())
        if shuffle:
            order = np.random.default_rng(seed).permutation(len(self._points))
            self._points = [self._points[i] for i in order]
        #: Grid points handed out: trial numbers also go to trials the grid did not suggest
        #: (starting points, configurations skipped for lack of time), so the grid keeps its own count.
        self._given = 0

    def suggest(self, number: int) -> dict[str, Any] | None:
        # A state pickled before the count existed indexed the grid by trial number: go on that way.
        given = getattr(self, "_given", number)
        if given >= len(self._points):
            return None
        self._given = given + 1
        return dict(self._points[given])


def _check_grid(space: SearchSpace) -> None:
    space.grid_size()  # raises ValueError naming a parameter with no finite grid


@hookimpl
def automl_register_searchers() -> list[SearcherSpec]:
    return [
        SearcherSpec("random", RandomSearcher, description="uniform random search (multi-objective by the front)"),
        SearcherSpec("grid", GridSearcher, description="exhaustive grid over grid values", check_space=_check_grid),
    ]
