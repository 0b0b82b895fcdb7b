"""``python -m benchmarks.hpo`` (see :mod:`benchmarks.hpo.cli`)."""

from __future__ import annotations

from benchmarks.hpo.cli import main

if __name__ == "__main__":
    main(prog_name="python -m benchmarks.hpo")
