"""``python -m benchmarks.hpo``: ``python -m automl_bench`` run from the repository (see :mod:`benchmarks.hpo`)."""

from __future__ import annotations

from automl_bench.cli import main

if __name__ == "__main__":
    main(prog_name="python -m benchmarks.hpo")
