"""automl: a plugin-based AutoML engine.

A YAML spec names the data, the search space, the trainer, the searcher and the
objectives; :func:`search` runs the trials on Ray Tune and ends with the Pareto front.

>>> import automl
>>> run = automl.search("searchspaces/quickstart.yaml", trials=10)  # doctest: +SKIP
>>> run.front().members  # doctest: +SKIP
>>> automl.load(run.dir).model().predict(frame)  # the best trial's model  # doctest: +SKIP
>>> automl.AutoMLClassifier(time_budget=60).fit(X, y).predict(X)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.errors import AutoMLError, DataError, PluginError, SpecError, StoreError, TrialError
from automl.hookspecs import hookimpl
from automl.interfaces import (
    Compressor,
    CompressorSpec,
    Constraint,
    DatasetSpec,
    DefaultSpace,
    Objective,
    SchedulerSpec,
    Searcher,
    SearcherSpec,
    Trainer,
    TrainerSpec,
    TrialContext,
    TrialOutcome,
)
from automl.loop import TrialStopped, load_checkpoint, report, save_checkpoint, should_stop
from automl.records import Front, FrontMember, RunRecord, RunStatus, StepRecord, TrialRecord, TrialStatus
from automl.space import Choice, Float, Int, SearchSpace
from automl.spec import Spec, load_spec, parse_spec

if TYPE_CHECKING:
    from pathlib import Path

    from automl.estimators import AutoMLClassifier, AutoMLRegressor
    from automl.result import Model, Result
    from automl.run import Run

#: The core's version; 0.2.0 changed the plugin contract (typed records, ``automl.plugin``): see
#: "Changes for plugin authors" in ``docs/plugins.md``.
__version__ = "0.2.0"

__all__ = [
    "AutoMLClassifier", "AutoMLError", "AutoMLRegressor", "Choice", "Compressor", "CompressorSpec", "Constraint",
    "DataError", "DatasetSpec", "DefaultSpace", "Float", "Front", "FrontMember", "Int", "Model", "Objective",
    "PluginError", "Result", "Run", "RunRecord", "RunStatus", "SchedulerSpec", "SearchSpace", "Searcher",
    "SearcherSpec", "Spec", "SpecError", "StepRecord", "StoreError", "Trainer", "TrainerSpec", "TrialContext",
    "TrialError", "TrialOutcome", "TrialRecord", "TrialStatus", "__version__", "hookimpl",
    "load", "load_spec", "parse_spec", "search", "validate",
    # Reporting from your own training loop (the loop trainer, docs/loop.md).
    "TrialStopped", "load_checkpoint", "report", "save_checkpoint", "should_stop",
]

#: Names imported on first use: scikit-learn (the estimators) and pandas (results) are not needed to run a search,
#: SQLAlchemy (a run's store) not in a trial's worker.
_LAZY = {"AutoMLClassifier": "automl.estimators", "AutoMLRegressor": "automl.estimators",
         "Model": "automl.result", "Result": "automl.result", "Run": "automl.run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automl' has no attribute {name!r}")


def load(run_dir: str | Path) -> Result:
    """Open a finished or running search's run directory: its front, best trial, trials and models
    (see :class:`automl.result.Result`)."""
    from automl.result import load as _load

    return _load(run_dir)


def search(spec: str | Path | Spec, **kwargs: Any) -> Run:
    """Run a search from a spec file or :class:`Spec`; see :func:`automl.engine.search` for the options."""
    from automl.engine import search as _search  # imports Ray only when a search runs

    return _search(spec, **kwargs)


def validate(
    spec: str | Path | Spec, *, disabled_plugins: tuple[str, ...] = (), data: bool = True, import_code: bool = False
) -> Any:
    """Check a spec against the installed plugins without running anything; returns the plan.

    With ``data`` (the default) the data is checked as a search would, so what only the data
    can tell (an entirely empty column, a single class, a non-numeric regression target, more
    folds than rows of a class) is reported here too: a CSV file read in chunks (never held
    whole, :mod:`automl.data_profile`), another source loaded and split.

    User code the spec names by import path (the ``function`` trainer's ``function``, a torch
    ``network``) is not imported: its module must be found (``importlib.util.find_spec``, which runs
    none of its code), and the function in it is checked only with ``import_code`` (``automl validate
    --import``), which imports the module and so runs its top-level code.
    """
    import contextlib

    from automl.importpath import without_imports
    from automl.plan import build_plan
    from automl.plugins import get_plugin_manager

    loaded = spec if isinstance(spec, Spec) else load_spec(spec)
    with contextlib.nullcontext() if import_code else without_imports():
        plan = build_plan(loaded, get_plugin_manager(disabled_plugins))
        if data:
            plan.check_data()
    return plan
