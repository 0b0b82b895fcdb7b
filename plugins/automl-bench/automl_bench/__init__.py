"""automl-bench: searcher benchmarks as an automl plugin package.

Installs ``automl bench`` (run a suite or a plan of suites into an append-only store) and
``automl leaderboard`` (the static leaderboard of a store) through the ``automl.commands``
entry points, and ``python -m automl_bench`` (``list``, ``run``, ``report``). A third-party
searcher installed as an automl plugin is ranked against the built-ins with
``automl bench s1 --methods automl:NAME,automl:tpe,random``.

Modules, bottom up (each imports only those above it in this list):

- :mod:`.base`: :class:`~.base.BenchmarkError`, what a task (:class:`~.base.Problem`) and a method
  (:class:`~.base.Method`) are, and what a run produced (:class:`~.base.Trace`);
- :mod:`.multifidelity` (the S2 functions, imported by trial workers), :mod:`.scoring`,
  :mod:`.bayesmark` (the R1 tasks), :mod:`.engine_tasks` (S2, R2, R3 through the whole engine);
- :mod:`.problems` (the synthetic functions and the task registry), :mod:`.methods` (our
  searchers, the peers and the method registry);
- :mod:`.suite` (suite files, ``suites/``), :mod:`.store` (results), :mod:`.runner`,
  :mod:`.report` (Markdown tables), :mod:`.plans` (``plans.yaml``: nightly, weekly),
  :mod:`.leaderboard`; :mod:`.cli` on top.

Nothing is imported with the package itself: ``automl --help`` imports :mod:`.cli` to show the
commands' help lines, and that must stay cheap.
"""
