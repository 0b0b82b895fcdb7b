"""``python -m automl_bench`` (see :mod:`automl_bench.cli`)."""

from __future__ import annotations

from automl_bench.cli import main

if __name__ == "__main__":
    main(prog_name="python -m automl_bench")
