"""Searcher benchmarks: suites of problems, searchers and their peers side by side, an append-only store.

Run from the repository root::

    .venv/bin/python -m benchmarks.hpo list
    .venv/bin/python -m benchmarks.hpo run s1
    .venv/bin/python -m benchmarks.hpo report --out benchmarks/hpo/RESULTS.md

Modules: :mod:`.problems` (synthetic test functions), :mod:`.bayesmark` (the R1 tabular
tasks), :mod:`.methods` (our searchers and the peers), :mod:`.suite` (suite files),
:mod:`.store` (results), :mod:`.scoring` and :mod:`.report` (figures), :mod:`.cli`.
"""

from __future__ import annotations

from automl.plugin import AutoMLError

__all__ = ["BenchmarkError"]


class BenchmarkError(AutoMLError):
    """A suite file, method, task or store the benchmark cannot use; the message says how to fix it."""
