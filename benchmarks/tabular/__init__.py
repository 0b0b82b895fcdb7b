"""Tabular comparison of issue 14: automl vs FLAML vs the previous engine behaviour at equal wall time
(``python -m benchmarks.tabular.run``; protocol in :mod:`benchmarks.tabular.run`)."""
