"""The hooks plugins implement.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` and
named like the specs below. Built-in plugins are loaded from a list in
:mod:`automl.plugins`; others through the ``automl`` entry-point group:

.. code-block:: toml

    [project.entry-points.automl]
    mysearcher = "my_package.plugin"

Every hook is called with keyword arguments. Subcommands of ``automl`` are not a hook but the
``automl.commands`` entry-point group (:mod:`automl.commands` says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from automl.interfaces import CompressorSpec, DatasetSpec, SchedulerSpec, SearcherSpec, TrainerSpec
    from automl.records import TrialRecord
    from automl.run import Run
    from automl.store import ResultsStore

PROJECT = "automl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookimpl", "hookspec"]


@hookspec
def automl_register_searchers() -> Sequence[SearcherSpec]:
    """Return the searchers this plugin provides.

    Called once, when the plugin manager first needs the searcher registry.

    Returns:
        :class:`~automl.interfaces.SearcherSpec` records. Names must be unique over all
        installed plugins; a clash is an error naming both packages.
    """


@hookspec
def automl_register_trainers() -> Sequence[TrainerSpec]:
    """Return the trainers this plugin provides.

    Called once, when the plugin manager first needs the trainer registry.

    Returns:
        :class:`~automl.interfaces.TrainerSpec` records with unique names.
    """


@hookspec
def automl_register_schedulers() -> Sequence[SchedulerSpec]:
    """Return the trial schedulers (early stopping) this plugin provides.

    Called once, when the plugin manager first needs the scheduler registry.

    Returns:
        :class:`~automl.interfaces.SchedulerSpec` records with unique names.
    """


@hookspec
def automl_register_compressors() -> Sequence[CompressorSpec]:
    """Return the compressors this plugin provides.

    Called once, when the plugin manager first needs the compressor registry.

    Returns:
        :class:`~automl.interfaces.CompressorSpec` records with unique names.
    """


@hookspec
def automl_register_datasets() -> Sequence[DatasetSpec]:
    """Return the named data sources this plugin provides.

    Called once, when the plugin manager first needs the dataset registry.

    Returns:
        :class:`~automl.interfaces.DatasetSpec` records with unique names.
    """


@hookspec(firstresult=True)
def automl_open_store(url: str) -> ResultsStore | None:
    """Open the results store at ``url``.

    Called by the driver when a search starts (the spec's ``store``, default
    ``sqlite:///RUN_DIR/automl.db``) and by :meth:`Run.open <automl.run.Run.open>` for
    ``show``, ``resume``, ``report``, ``export`` and ``automl.load`` (the URL ``run.json``
    recorded). The built-in SQL store answers every URL with ``trylast``, so a plugin
    serves a scheme by answering first. Stops at first non-None result.

    Args:
        url: A SQLAlchemy-style URL (``sqlite:///run/automl.db``) or a plugin's own.

    Returns:
        An object implementing :class:`~automl.store.ResultsStore` (import it from
        :mod:`automl.plugin`), or None to let another plugin answer.
    """


@hookspec
def automl_trial_result(run: Run, trial: TrialRecord) -> None:
    """Be told about a trial's new state, in the driver, after the store recorded it.

    Called for each intermediate report, completion, early stop and failure; use it for
    progress displays, logging or experiment trackers. Must return quickly: it runs in
    the driver loop. An implementation that raises is recorded (one warning, ``plugin_errors``
    in the run's summary) and the search goes on; ``--strict-plugins`` makes it fatal.

    Args:
        run: The :class:`~automl.run.Run` being searched (``run.dir``, ``run.store``,
            ``run.run_id``, ``run.trials()``...).
        trial: The trial as the store now holds it, a frozen :class:`~automl.records.TrialRecord`
            (``trial.number``, ``trial.status``, ``trial.config``, ``trial.metrics``,
            ``trial.budget``, ``trial.error``...).
    """


@hookspec
def automl_search_end(run: Run) -> None:
    """Be told that a search ended and its front was written.

    Called once in the driver after ``front.json`` and the models are written; use it
    for reports and exports. An implementation that raises is recorded as for
    :func:`automl_trial_result`; the search still ends well.

    Args:
        run: The finished :class:`~automl.run.Run`.
    """
