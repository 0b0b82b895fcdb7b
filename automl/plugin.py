"""The public API for plugin authors: everything a plugin, its tests and a benchmark import from the core.

Import from here (or from :mod:`automl` for the spec and run API, :mod:`automl.testing` for the
conformance kits), never from the core's other modules: they may change between versions, this
module's :data:`__all__` does not change without a version saying so (see "Changes for plugin
authors" in ``docs/plugins.md``). A test fails when a first-party plugin or a benchmark imports
anything else.

>>> from automl.plugin import hookimpl, SearcherSpec, Searcher, TrialRecord  # doctest: +SKIP

What is here, by use:

- **Hooks**: :data:`hookimpl` (decorate ``automl_register_*``, ``automl_open_store``,
  ``automl_trial_result``, ``automl_search_end``).
- **Subcommands**: :data:`COMMAND_GROUP` (``automl.commands``), the entry-point group in which a package
  names the :class:`click.Command` objects it adds as ``automl NAME`` (see ``docs/plugins.md``).
- **Strategies** (the ABCs a plugin subclasses): :class:`Searcher`, :class:`Trainer`,
  :class:`Compressor`; a results store implements :class:`ResultsStore`; a scheduler may
  subclass :class:`RungScheduler`.
- **Registry records** a plugin returns: :class:`SearcherSpec`, :class:`TrainerSpec`,
  :class:`SchedulerSpec`, :class:`CompressorSpec`, :class:`DatasetSpec`, :class:`DefaultSpace`.
- **What plugins receive**: :class:`Objective`, :class:`Constraint`, :class:`TrialOutcome` and :class:`RungResult` (a searcher),
  :class:`TrialContext` with its :class:`Splits` of :class:`Part` (a trainer), :class:`Table` (what a
  data set's loader returns; an image source sets its ``image_shape``, which ``Splits`` and
  ``DataSummary`` carry), :class:`DataSummary` (a trainer's default space),
  :class:`EnsembleMember` (a trainer's ``build_ensemble``), :class:`Run` with :class:`TrialRecord`,
  :class:`StepRecord`, :class:`RunRecord`, :class:`Front` and :class:`FrontMember` (hooks), their
  :class:`TrialStatus` and :class:`RunStatus`; the literal types :data:`Task` (``classification`` /
  ``regression``), :data:`Mode` (``min`` / ``max``) and :data:`Status` (a trial status as a string);
  :data:`COMPRESSOR_SEPARATOR` (``.`` in ``NAME.PARAM`` space entries) and :data:`UNCOMPRESSED`;
  :data:`SCHEDULER_ENGINE_ARGUMENTS` (what the engine passes a scheduler factory that names it).
- **Search spaces**: :class:`SearchSpace`, :class:`Float`, :class:`Int`, :class:`Choice`, :class:`Param`
  (any of the three), :data:`Value` (what a parameter takes). A space maps the unit cube onto its
  configs and back (``SearchSpace.from_unit`` / ``SearchSpace.to_unit``, each parameter's too).
- **Errors**: :class:`AutoMLError` and its :class:`SpecError`, :class:`DataError`, :class:`PluginError`,
  :class:`TrialError`, :class:`StoreError`.
- **Helpers**: :func:`lazy_import` (an optional library imported when first used, naming the package
  to install), :func:`import_callable`, :func:`measure_latency`, :func:`reference_latency`,
  :func:`single_thread`, :func:`file_size`, :func:`split_config`, :func:`split`, :func:`check_table`,
  :func:`load_csv`, :func:`summarize`, :func:`clean`, the Pareto tools (:func:`pareto_front`,
  :func:`hypervolume`, :func:`dominates`, :func:`non_dominated_sort`, :func:`crowding_distance`),
  the ensemble selection (:func:`greedy_selection` giving a :class:`Selection`, :func:`blend`),
  :func:`compress` (a trial's compression and export, as the engine runs it).
- **The engine, for tests and benchmarks**: :func:`get_plugin_manager` (the installed plugins'
  registries, a :class:`PluginManager`), :data:`KNOWN_PROVIDERS` (names the first-party packages
  provide), :func:`build_plan` (a spec checked against the plugins, as a search starts: a
  :class:`Plan`), :func:`run_plan` (the plan of a stored run, as ``resume`` builds it), :func:`start_ray`,
  :func:`concurrency`, :func:`cli`; reading a run's files: :func:`trial_dir` (a trial's directory),
  :func:`load_predictions` (the predictions a trial saved for ensemble selection), :func:`is_ensemble_trial`.

The data types (pandas) and what needs Ray are imported on first use, so importing this module
stays cheap for a plugin's entry point.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from automl.commands import COMMAND_GROUP
from automl.ensemble import EnsembleMember, Selection, blend, greedy_selection, is_ensemble_trial, load_predictions
from automl.errors import AutoMLError, DataError, PluginError, SpecError, StoreError, TrialError
from automl.hookspecs import hookimpl
from automl.importpath import import_callable
from automl.interfaces import (
    COMPRESSOR_SEPARATOR,
    SCHEDULER_ENGINE_ARGUMENTS,
    UNCOMPRESSED,
    Compressor,
    CompressorSpec,
    Constraint,
    DatasetSpec,
    DefaultSpace,
    Mode,
    Objective,
    RungResult,
    SchedulerSpec,
    Searcher,
    SearcherSpec,
    Status,
    Task,
    Trainer,
    TrainerSpec,
    TrialContext,
    TrialOutcome,
    split_config,
)
from automl.measure import file_size, measure_latency, reference_latency, single_thread
from automl.pareto import crowding_distance, dominates, hypervolume, non_dominated_sort, pareto_front
from automl.plugins import KNOWN_PROVIDERS, PluginManager, get_plugin_manager, lazy_import
from automl.records import Front, FrontMember, RunRecord, RunStatus, StepRecord, TrialRecord, TrialStatus
from automl.space import Choice, Float, Int, Param, SearchSpace, Value

if TYPE_CHECKING:
    from pathlib import Path

    from automl.data import DataSummary, Part, Splits, Table, check_table, load_csv, split, summarize
    from automl.plan import Plan, build_plan, run_plan
    from automl.run import Run
    from automl.schedulers import RungScheduler
    from automl.store import ResultsStore, clean
    from automl.trial_job import trial_dir

__all__ = [
    # hooks and subcommands
    "COMMAND_GROUP", "hookimpl",
    # strategies and registry records
    "Compressor", "CompressorSpec", "DatasetSpec", "DefaultSpace", "ResultsStore", "RungScheduler", "SchedulerSpec",
    "Searcher", "SearcherSpec", "Trainer", "TrainerSpec",
    # what plugins receive
    "COMPRESSOR_SEPARATOR", "SCHEDULER_ENGINE_ARGUMENTS", "UNCOMPRESSED", "Constraint", "DataSummary", "EnsembleMember", "Mode", "Objective", "Part",
    "RungResult", "Splits", "Status", "Table", "Task", "TrialContext", "TrialOutcome",
    # records
    "Front", "FrontMember", "Run", "RunRecord", "RunStatus", "StepRecord", "TrialRecord", "TrialStatus",
    # search spaces
    "Choice", "Float", "Int", "Param", "SearchSpace", "Value",
    # errors
    "AutoMLError", "DataError", "PluginError", "SpecError", "StoreError", "TrialError",
    # helpers
    "Selection", "blend", "check_table", "clean", "compress", "crowding_distance", "dominates", "file_size",
    "greedy_selection", "hypervolume", "import_callable", "lazy_import", "load_csv", "measure_latency",
    "non_dominated_sort", "pareto_front", "reference_latency", "single_thread", "split", "split_config", "summarize",
    # the engine, for tests and benchmarks
    "KNOWN_PROVIDERS", "Plan", "PluginManager", "build_plan", "cli", "concurrency", "get_plugin_manager", "start_ray",
    "is_ensemble_trial", "load_predictions", "run_plan", "trial_dir",
]

#: Names imported on first use: pandas (the data types, the plan), Ray (the scheduler base class) and SQLAlchemy (a
#: run and its store), none of which loading the plugins or starting a trial's worker needs.
_LAZY = {
    "Plan": "automl.plan", "build_plan": "automl.plan", "run_plan": "automl.plan", "trial_dir": "automl.trial_job",
    **{n: "automl.data" for n in ("DataSummary", "Part", "Splits", "Table", "check_table", "load_csv", "split",
                                  "summarize")},
    "RungScheduler": "automl.schedulers", "Run": "automl.run", "ResultsStore": "automl.store", "clean": "automl.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automl.plugin' has no attribute {name!r}")


def compress(
    trainer: Trainer, compressors: list[tuple[str, Compressor]], directory: Path, *, test: bool
) -> tuple[Path, dict[str, float]]:
    """Compress a trained model, export it and score the export, as a trial does (imports Ray).

    Runs every compressor's ``compress_model`` in order, evaluates the model in memory, exports
    it, then runs every ``compress_artifact`` in order on the file; when one rewrote the file, the
    metrics are the file's own (``trainer.evaluate_artifact``).

    Args:
        trainer: A trainer whose model is fitted.
        compressors: ``(name, compressor)`` pairs in the order the spec lists them.
        directory: Where the export is written.
        test: Also score the test part (``test_<metric>``).

    Returns:
        The final exported file and its metrics (validation, test when asked, each compressor's own).

    Raises:
        TrialError: When a metric is NaN or infinite after compression.
    """
    from automl.trial_worker import compress as _compress

    return _compress(trainer, compressors, directory, test=test)


def start_ray(address: str | None = None) -> bool:
    """Start a local Ray as the engine does (no dashboard, quiet logs, this machine's CPUs), or join
    ``address``; True when this call started it (then ``ray.shutdown()`` is the caller's)."""
    from automl.engine import _start_ray

    return _start_ray(address)


def concurrency(plan: Plan) -> int:
    """How many trials of ``plan`` (from :func:`automl.validate`) run at once on the started Ray
    cluster, counting the trainer's ``extra_resources``.

    Raises:
        SpecError: When one trial asks for more CPUs or GPUs than the cluster has, saying how many.
    """
    from automl.engine import _concurrency

    return _concurrency(plan)


def cli(argv: list[str]) -> int:
    """Run the ``automl`` command line with ``argv`` in this process; return its exit code (2 for bad input)."""
    from automl.cli import run

    return run(argv)
