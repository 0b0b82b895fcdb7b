"""scikit-learn estimators that run a search: :class:`AutoMLClassifier` and :class:`AutoMLRegressor`.

``fit(X, y)`` writes the rows into a fresh run directory (``data.parquet``, or ``data.csv``
without pyarrow), writes the spec it builds from the estimator's parameters there
(``spec.yaml``) and runs :func:`automl.search` on it with the ``sklearn`` trainer; ``predict``
and ``predict_proba`` use the best trial's exported model (:meth:`automl.result.Result.model`).
The run directory stays, so ``automl show``, ``automl report`` and :func:`automl.load` read it.

Needs scikit-learn (``pip install automl-sklearn``, which brings the trainer too).

>>> from automl import AutoMLClassifier
>>> clf = AutoMLClassifier(time_budget=60).fit(X, y)  # doctest: +SKIP
>>> clf.predict(X_new), clf.best_config_  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from automl.errors import DataError, SpecError
from automl.plan import UNBOUNDED_TRIALS  # the spec's own count when only a wall time bounds a search
from automl.result import Model, Result, load
from automl.yaml_loader import load_yaml

__all__ = ["AutoMLClassifier", "AutoMLRegressor"]

#: Rows up to which trials are scored by 5-fold cross-validation (above: one validation split).
CV_ROWS = 10_000
TRAINER = "sklearn"


class _AutoML(BaseEstimator):
    """What both estimators share; see :class:`AutoMLClassifier` for the parameters."""

    _task: ClassVar[str]
    _default_metric: ClassVar[str]
    _run_name: ClassVar[str]

    def __init__(
        self,
        *,
        time_budget: float | None = 60,
        trials: int | None = None,
        searcher: str | None = None,
        space: Mapping[str, Any] | None = None,
        metric: str | None = None,
        scheduler: str = "fifo",
        seed: int = 0,
        out: str | Path | None = None,
        n_cpus: int | None = None,
        spec: Mapping[str, Any] | str | Path | None = None,
    ) -> None:
        self.time_budget = time_budget
        self.trials = trials
        self.searcher = searcher
        self.space = space
        self.metric = metric
        self.scheduler = scheduler
        self.seed = seed
        self.out = out
        self.n_cpus = n_cpus
        self.spec = spec

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # the exported pipeline imputes
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = True  # concurrent trials finish in any order
        return tags

    # -- fitting -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> _AutoML:
        """Search for the best pipeline for ``X``, ``y`` within the budget; returns ``self``.

        Raises:
            ValueError: For X and y of different lengths, or a target the task cannot learn.
            AutoMLError: When the spec built from the parameters is invalid, or no trial completed.
        """
        frame, named = _as_frame(X)
        target = _as_target(y, len(frame))
        self._check_target(target)
        name = "target" if "target" not in frame.columns else "__target__"
        data_file = "data.parquet" if _has_pyarrow() else "data.csv"
        spec = self._spec(data_file, name, target)  # before any file: a bad parameter leaves no directory
        run_dir = self._new_run_dir()
        _write_rows(frame, target.rename(name), run_dir / data_file)
        spec_path = run_dir / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        from automl import search

        search(spec_path, out=run_dir)
        result = load(run_dir)
        best = result.best
        if best is None:
            result.model()  # raises, saying what the trials did
        assert best is not None
        self.__dict__.pop("_model", None)
        self.run_dir_, self._result = run_dir, result
        self.best_config_ = dict(best.config)
        self.n_features_in_ = frame.shape[1]
        if named:
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._fitted(target)
        return self

    def _check_target(self, y: pd.Series) -> None:
        """Refuse a target the task cannot learn from (before any file is written)."""

    def _fitted(self, y: pd.Series) -> None:
        """Set the task's own fitted attributes."""

    def _new_run_dir(self) -> Path:
        parent = Path(self.out) if self.out is not None else Path("runs")
        parent.mkdir(parents=True, exist_ok=True)
        prefix = f"{self._run_name}-{time.strftime('%Y%m%d-%H%M%S')}-"
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()

    def _spec(self, data_file: str, target: str, y: pd.Series) -> dict[str, Any]:
        """The spec of the search: built from the parameters, then ``spec``'s keys on top."""
        from automl.plugins import get_plugin_manager

        pm = get_plugin_manager()
        metric = self.metric or self._default_metric
        metrics = dict(pm.trainers.get(TRAINER).metrics(self._task, {}))  # type: ignore[arg-type]
        if metric not in metrics:
            raise ValueError(f"metric={metric!r} is not a {self._task} metric of the {TRAINER!r} trainer; "
                             f"use one of {', '.join(metrics)}")
        # With a time budget the spec's `auto` (the cost-aware searcher first); with a trial count only, TPE.
        searcher = self.searcher or ("auto" if self.time_budget is not None
                                     else "tpe" if "tpe" in pm.searchers.names() else "random")
        if self.time_budget is None and self.trials is None:
            raise ValueError("give time_budget (seconds) or trials, or both: the search needs a budget")
        budget: dict[str, Any] = {"trials": int(self.trials) if self.trials is not None else UNBOUNDED_TRIALS}
        if self.time_budget is not None:
            budget["wall_time"] = float(self.time_budget)
        params: dict[str, Any] = {"export": "skops", "rank_by": metric}
        trainer = {"name": TRAINER, "params": params}
        spec: dict[str, Any] = {
            "name": self._run_name,
            "task": self._task,
            "data": {"test": 0.0, **self._validation(y)},
            "trainer": trainer,
            "searcher": {"name": searcher},
            "scheduler": {"name": self.scheduler},
            "objectives": [{"metric": metric, "mode": metrics[metric]}],
            "budget": budget,
            "seed": int(self.seed),
        }
        if self.space is not None:  # else the trainer's default space for the data
            spec["space"] = dict(self.space)
        if self.n_cpus is not None:
            spec["resources"] = {"cpu": 1, "max_concurrent": int(self.n_cpus)}
        for key, value in _user_spec(self.spec).items():
            if key == "task" and value != self._task:
                raise ValueError(f"spec has task: {value}, but {type(self).__name__} does {self._task}")
            if key == "data":  # the rows are fit's X and y; the spec may say how to split them
                kept = {k: v for k, v in dict(value or {}).items() if k not in ("dataset", "csv", "parquet", "target",
                                                                                 "options")}
                # A split the spec gives replaces the default one (folds or a validation part).
                split = {} if {"folds", "validation"} & set(kept) else spec["data"]
                spec["data"] = {"test": 0.0, **split, **kept}
            else:
                spec[key] = value
        spec["data"].update({data_file.rsplit(".", 1)[-1]: data_file, "target": target})
        if spec["trainer"] is trainer and dict(spec["scheduler"] or {}).get("name", "fifo") != "fifo":
            params["steps"] = 4  # early stopping needs budget steps to stop between
        return spec

    def _validation(self, y: pd.Series) -> dict[str, Any]:
        """5-fold cross-validation on small data (stratified: each class needs 5 rows), else a 20% split."""
        smallest = int(y.value_counts().min()) if self._task == "classification" else len(y)
        return {"folds": 5} if len(y) <= CV_ROWS and smallest >= 5 else {"validation": 0.2}

    # -- results -------------------------------------------------------------------------

    @property
    def result_(self) -> Result:
        """The search's :class:`~automl.result.Result` (opened again after unpickling)."""
        check_is_fitted(self, "run_dir_")
        if getattr(self, "_result", None) is None:
            self._result = load(self.run_dir_)
        return self._result

    def _best_model(self) -> Model:
        check_is_fitted(self, "run_dir_")
        if getattr(self, "_model", None) is None:
            self._model = self.result_.model()
        return self._model

    def _rows(self, X: Any) -> Any:
        """``X`` for the model: by column name when fitted on named columns, else by position."""
        if not hasattr(self, "feature_names_in_") and isinstance(X, pd.DataFrame):
            return X.to_numpy()
        return X

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the best trial's exported model (see :class:`~automl.result.Model`)."""
        return self._best_model().predict(self._rows(X))

    def __getstate__(self) -> dict[str, Any]:
        # The open store and loaded model are not picklable; they are opened again from run_dir_.
        state = dict(super().__getstate__())
        state.pop("_result", None)
        state.pop("_model", None)
        return state


class AutoMLClassifier(ClassifierMixin, _AutoML):
    """A classifier that searches scikit-learn pipelines (preprocessing + model) with automl.

    Args:
        time_budget: Seconds the whole search may take (``budget.wall_time``, Ray's start
            included; at least 15); None: only ``trials`` bounds it.
        trials: At most this many trials (``budget.trials``); None: as many as ``time_budget`` allows.
        searcher: A searcher name (``automl plugins`` lists them); None: with ``time_budget`` the
            spec's ``auto`` (``learners`` when automl-flaml is installed), else ``tpe`` when
            automl-optuna is installed, else ``random``.
        space: Search space entries as in a spec's ``space:``; None: the trainer's default space.
        metric: The metric to optimise (default ``accuracy``; any the sklearn trainer reports).
        scheduler: ``fifo`` (each trial runs in full), or an early-stopping scheduler such as
            ``asha`` (trials then grow in 4 budget steps).
        seed: The search's seed.
        out: The folder in which each ``fit`` makes a fresh run directory (default ``runs/``).
        n_cpus: At most this many trials at once (one CPU each); None: one per CPU.
        spec: A spec (a mapping, or a YAML file) whose top-level keys replace those built from
            the other parameters; its ``data:`` may set ``validation``, ``test``, ``folds`` and
            ``repeats``, while the rows are always ``fit``'s.

    Attributes:
        run_dir_: The run directory of the last ``fit``.
        result_: Its :class:`~automl.result.Result`.
        best_config_: The best trial's config.
        classes_: The class labels, sorted (the columns of :meth:`predict_proba`).
        n_features_in_: Columns seen in ``fit``.
        feature_names_in_: Their names, when ``X`` was a DataFrame with string column names.
    """

    _task = "classification"
    _default_metric = "accuracy"
    _run_name = "automl-classifier"

    def _check_target(self, y: pd.Series) -> None:
        check_classification_targets(y)
        if y.nunique() < 2:
            raise ValueError(f"y has a single class ({y.iloc[0]!r}): nothing to classify")

    def _fitted(self, y: pd.Series) -> None:
        self.classes_ = np.asarray(sorted(pd.unique(y).tolist()))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the best trial's model, columns in the order of :attr:`classes_`."""
        return self._best_model().predict_proba(self._rows(X))


class AutoMLRegressor(RegressorMixin, _AutoML):
    """A regressor that searches scikit-learn pipelines (preprocessing + model) with automl.

    Takes the parameters of :class:`AutoMLClassifier`; ``metric`` defaults to ``r2``.

    Attributes:
        run_dir_: The run directory of the last ``fit``.
        result_: Its :class:`~automl.result.Result`.
        best_config_: The best trial's config.
        n_features_in_: Columns seen in ``fit``.
        feature_names_in_: Their names, when ``X`` was a DataFrame with string column names.
    """

    _task = "regression"
    _default_metric = "r2"
    _run_name = "automl-regressor"

    def _check_target(self, y: pd.Series) -> None:
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise ValueError(f"y must hold numbers for a regression, not dtype {y.dtype}")

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values of the best trial's exported model."""
        return np.asarray(super().predict(X), dtype=np.float64)


def _as_frame(X: Any) -> tuple[pd.DataFrame, bool]:
    """``X`` as a DataFrame with string column names, and whether the names are the caller's."""
    if isinstance(X, pd.DataFrame):
        if all(isinstance(c, str) for c in X.columns):
            return X.reset_index(drop=True), True
        return X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1).reset_index(drop=True), False
    values = np.asarray(X)
    if values.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x columns), got shape {values.shape}; reshape a single feature "
                         "with X.reshape(-1, 1)")
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])]), False


def _as_target(y: Any, rows: int) -> pd.Series:
    values = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.ravel()
    if values.ndim != 1:
        raise ValueError(f"y must be 1-D (one target per row), got shape {values.shape}")
    if len(values) != rows:
        raise ValueError(f"X has {rows} rows but y has {len(values)}")
    return pd.Series(values)


def _has_pyarrow() -> bool:
    """Whether Parquet can be written: it keeps the column types (categories, dates) that CSV loses."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _write_rows(frame: pd.DataFrame, y: pd.Series, path: Path) -> None:
    """Write the rows and the target (column ``y.name``) to ``path`` (``.parquet`` or ``.csv``)."""
    rows = frame.assign(**{str(y.name): y.to_numpy()})
    if path.suffix == ".csv":
        rows.to_csv(path, index=False)
        return
    try:
        rows.to_parquet(path, index=False)
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError derive from them
        raise DataError(f"cannot write X to Parquet ({exc}); give each column a single type") from exc


def _user_spec(spec: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    path = Path(spec)
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    loaded, _ = load_yaml(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(loaded, dict):
        raise SpecError("a spec must be a YAML mapping (key: value lines)", file=str(path))
    return loaded
