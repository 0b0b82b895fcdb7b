"""The searcher leaderboard: a static HTML page and a Markdown table from the benchmark store.

``automl leaderboard STORE --out DIR`` (or :func:`write_leaderboard`): :mod:`.store` reads the
rows of :mod:`automl_bench.store`, :mod:`.board` computes the figures, :mod:`.render`
writes ``DIR/index.html`` and ``DIR/leaderboard.md``.
"""

from __future__ import annotations

from automl_bench.leaderboard.render import write_leaderboard

__all__ = ["write_leaderboard"]
