"""``python -m benchmarks.compress`` (see :mod:`benchmarks.compress.run`)."""

from __future__ import annotations

from benchmarks.compress.run import main

if __name__ == "__main__":
    main()
