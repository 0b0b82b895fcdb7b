"""The searcher benchmarks' recorded results (RESULTS.md); the code is the automl-bench package.

The suites, methods, runner, store and leaderboard live in ``plugins/automl-bench`` (the
``automl_bench`` package, installed by ``scripts/setup.sh``). From the repository root::

    .venv/bin/python -m benchmarks.hpo list
    .venv/bin/python -m benchmarks.hpo run s1
    .venv/bin/python -m benchmarks.hpo report --out benchmarks/hpo/RESULTS.md

run ``python -m automl_bench`` (:mod:`automl_bench.cli`) with the store under ``benchmarks/results/``.
"""
