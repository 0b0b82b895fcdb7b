"""A run directory and what it holds: the store, the trials, the front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from automl.errors import AutoMLError, PluginError, StoreError
from automl.front import compute_front
from automl.interfaces import Constraint, Objective
from automl.records import Front, FrontMember, RunRecord, StepRecord, TrialRecord
from automl.store import ResultsStore, shown_url

if TYPE_CHECKING:
    from automl.plugins import PluginManager

__all__ = ["Run", "RUN_FILE", "FRONT_FILE"]

RUN_FILE = "run.json"
FRONT_FILE = "front.json"


class Run:
    """One search's results, readable while the search runs and after it ended.

    Hooks receive it (``automl_trial_result(run, trial)``, ``automl_search_end(run)``);
    :meth:`open` reopens a run directory; ``automl.load`` wraps it in a
    :class:`~automl.result.Result` with models.

    Args:
        directory: The run directory (``--out``).
        store: The open results store.
        run_id: The run's id in the store.

    Attributes:
        dir: The run directory (a :class:`~pathlib.Path`): ``run.json``, ``automl.db`` (the default
            store), ``front.json`` once the search ended, ``trials/NNNNN/`` (each trial's files),
            ``models/`` (the front members' models).
        store: The :class:`~automl.store.ResultsStore` the run is recorded in.
        run_id: The run's id in that store.
    """

    def __init__(self, directory: Path, store: ResultsStore, run_id: int) -> None:
        self.dir = Path(directory)
        self.store = store
        self.run_id = run_id

    @classmethod
    def open(cls, directory: str | Path, plugins: PluginManager | None = None, *, store: str | None = None) -> Run:
        """Open an existing run directory, its store opened through the ``automl_open_store`` hook
        (so a store plugin serves ``show``, ``resume``, ``report`` and ``export`` too).

        The store is the one ``run.json`` names, with two guards (a run directory may come from someone
        else): a SQLite file is never created by opening a run, and a store outside the run directory is
        opened only when ``run.json`` is signed with this user's key (:mod:`automl.trust`) or ``store`` names
        it. A run directory moved or copied elsewhere reads its own ``automl.db``.

        Args:
            directory: The run directory.
            plugins: The plugin manager to ask (default: the process-wide one).
            store: The store's URL, instead of the one ``run.json`` names (``automl show --store``).

        Raises:
            AutoMLError: When the directory holds no run, its store is refused (the message says why), or no
                installed plugin opens its store.
        """
        d = Path(directory)
        meta = d / RUN_FILE
        if not meta.is_file():
            raise AutoMLError(f"{str(d)!r} holds no automl run (no {RUN_FILE}); pass the --out directory of a search")
        try:
            info = json.loads(meta.read_text())
            url, run_id = str(info["store"]), int(info["run_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AutoMLError(f"{str(meta)!r} is not an automl run file ({type(exc).__name__}: {exc})") from exc
        url = store if store is not None else _recorded_store(d, url)
        if plugins is None:
            from automl.plugins import get_plugin_manager

            plugins = get_plugin_manager()
        opened = plugins.open_store(url)
        if not isinstance(opened, ResultsStore):
            raise PluginError(f"the plugin answering automl_open_store for {shown_url(url)!r} returned an object of type "
                              f"{type(opened).__name__!r}, not a results store (see automl.plugin.ResultsStore)")
        return cls(d, opened, run_id)

    def info(self) -> RunRecord:
        """The run's record in the store.

        Raises:
            StoreError: When the store no longer holds the run.
        """
        row = self.store.get_run(self.run_id)
        if row is None:
            raise StoreError(f"run {self.run_id} is missing from the store {shown_url(self.store.url)!r}")
        return row

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``failed`` or ``interrupted``."""
        return str(self.info().status)

    def objectives(self) -> list[Objective]:
        """The objectives, primary first."""
        return [Objective(**o) for o in self.info().objectives["objectives"]]

    def constraints(self) -> list[Constraint]:
        return [Constraint(**c) for c in self.info().objectives.get("constraints", [])]

    def trials(self) -> list[TrialRecord]:
        """Every trial, by number."""
        return self.store.trials(self.run_id)

    def trial(self, number: int) -> TrialRecord | None:
        """Trial ``number``, or None."""
        return self.store.trial(self.run_id, number)

    def steps(self, number: int | None = None) -> list[StepRecord]:
        """Trial ``number``'s budget steps (every trial's when None)."""
        return self.store.steps(self.run_id, number)

    def front(self) -> Front:
        """``front.json`` once the search ended; computed from the store while it runs (``provisional``)."""
        path = self.dir / FRONT_FILE
        if path.is_file():
            front = Front.from_dict(json.loads(path.read_text()))
            if any(not m.config and not m.metrics for m in front.members):
                # An older front.json listed members by number only: their records come from the store.
                by_number = {t.number: t for t in self.trials()}
                front = front.with_members([
                    FrontMember(m.number, by_number[m.number].config, by_number[m.number].metrics, m.model)
                    if m.number in by_number else m for m in front.members
                ])
            return front
        return compute_front(self.trials(), self.objectives(), self.constraints()).replace(provisional=True)

    def best(self) -> FrontMember | None:
        """The front member best on the primary objective."""
        members = self.front().members
        if not members:
            return None
        primary = self.objectives()[0]
        return min(members, key=lambda m: primary.to_min(m.metrics[primary.metric]))

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, run_id={self.run_id})"


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (relative to the working directory when the URL's is); None for an
    in-memory one or another kind of URL."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite":
        return None
    name = rest.split("?", 1)[0]
    return Path(name).absolute() if name and name != ":memory:" else None


def _recorded_store(directory: Path, url: str) -> str:
    """The store URL ``run.json`` names, as it may be opened (see :meth:`Run.open`)."""
    from automl import trust

    meta = directory / RUN_FILE
    outside = f"{str(meta)!r} names a store outside the run directory ({shown_url(url)})"
    how = "pass --store URL (automl show) to read that store, or open the run's own directory"
    db = _sqlite_file(url)
    if db is None:
        if url.startswith("sqlite") or trust.verify(directory, RUN_FILE):
            return url
        raise AutoMLError(f"{outside} and is not signed with your key ({trust.verify(directory, RUN_FILE).reason}); {how}")
    if trust.inside(directory, db) is None:
        own = directory / "automl.db"
        if db.name == own.name and own.is_file() and trust.inside(directory, own) is not None:
            # The run was moved or copied (perhaps from another user): its own database, not the original's.
            return f"sqlite:///{own.resolve()}"
        verdict = trust.verify(directory, RUN_FILE)  # a name in it: directory may be relative
        if not verdict:
            raise AutoMLError(f"{outside} and is not signed with your key ({verdict.reason}); {how}")
    if not db.is_file():
        raise AutoMLError(f"{str(meta)!r} names the store {shown_url(url)}, but there is no database at {str(db)!r} "
                          "(opening a run never creates one): the run directory is incomplete, or pass --store URL")
    return url
