"""A run read from Python: :func:`load` gives a :class:`Result` (front, best trial, trials) and its models.

>>> import automl
>>> result = automl.load("runs/qs")  # doctest: +SKIP
>>> result.best.metrics["accuracy"], result.best.config  # doctest: +SKIP
>>> result.model().predict(frame)  # the best trial's exported model  # doctest: +SKIP

A :class:`Model` is a trial's exported file, loaded by the trainer plugin the run used
(:meth:`~automl.interfaces.Trainer.load_predictor` of the trainer rebuilt for that trial, as
``automl export`` rebuilds it), so it predicts exactly what was validated and measured, with the
preprocessing that is part of the export. Only the files the engine wrote in the run directory
are read (the trial's directory or its copy in ``models/``), each with its plugin's own safe loader,
and only from a run signed with this user's key (:mod:`automl.trust`) unless ``load(..., trust=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.errors import AutoMLError
from automl.interfaces import Objective
from automl.records import FrontMember, TrialRecord
from automl.run import Run

__all__ = ["Member", "Model", "Result", "load"]


def load(run_dir: str | Path, *, trust: bool = False) -> Result:
    """Open the run in ``run_dir`` (finished, or still running).

    Args:
        run_dir: The run directory.
        trust: Load models from a run not signed with this user's key (another user's, or changed since it was
            written): its spec is imported and its model files loaded. The front and trials read without it.

    Raises:
        AutoMLError: When the directory holds no run.
    """
    return Result(Run.open(run_dir), trust=trust)


#: A front member (or the best trial): ``number``, ``config``, ``metrics``, ``model`` (the name 0.1 gave
#: :class:`~automl.records.FrontMember`, which :attr:`Result.front` and :attr:`Result.best` return).
Member = FrontMember


class Result:
    """A run's results: the Pareto front, the best trial, every trial, and their models.

    Args:
        run: The open run (see :func:`load`).
        trust: Load models even when the run's signatures do not verify (see :func:`load`).
    """

    def __init__(self, run: Run, *, trust: bool = False) -> None:
        self.run = run
        self.trust = trust
        self._plan: Any = None
        self._data: Any = None

    @property
    def dir(self) -> Path:
        """The run directory."""
        return self.run.dir

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``failed`` or ``interrupted``."""
        return self.run.status

    @property
    def objectives(self) -> list[Objective]:
        """The objectives, primary first."""
        return self.run.objectives()

    @property
    def front(self) -> list[Member]:
        """The Pareto front's members (computed from the store while the search runs)."""
        return list(self.run.front().members)

    @property
    def best(self) -> Member | None:
        """The completed front member best on the primary objective (the lower number on a tie);
        None when no trial completed with every objective and within the constraints."""
        primary = self.objectives[0]
        status = {t.number: t.status for t in self.run.trials()}
        scored = [(primary.to_min(float(m.metrics[primary.metric])), m.number, m) for m in self.front
                  if status.get(m.number) == "completed" and _finite(m.metrics.get(primary.metric))]
        return min(scored, key=lambda s: s[:2])[2] if scored else None

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: ``number``, ``status``, ``budget``, ``max_budget``, ``duration``, ``error``,
        then ``config.<name>`` and ``metrics.<name>`` columns (missing where a trial has none)."""
        rows = []
        for t in self.run.trials():
            row: dict[str, Any] = {"number": t.number, "status": str(t.status), "budget": t.budget,
                                   "max_budget": t.max_budget, "duration": t.duration, "error": t.error}
            row.update({f"config.{k}": v for k, v in t.config.items()})
            row.update({f"metrics.{k}": v for k, v in t.metrics.items()})
            rows.append(row)
        columns = ["number", "status", "budget", "max_budget", "duration", "error"]
        return pd.DataFrame(rows, columns=None if rows else columns)

    def model(self, number: int | None = None) -> Model:
        """The exported model of trial ``number`` (default: :attr:`best`), ready to predict.

        Raises:
            AutoMLError: When there is no such trial, it has no model file (failed, or its
                trainer exports none), or (without ``number``) no trial completed.
            UntrustedRunError: When the run, or the model file, is not signed with this user's key
                (and :func:`load` was not given ``trust=True``).
        """
        run = self.run
        if number is None:
            best = self.best
            if best is None:
                counts: dict[str, int] = {}
                for t in run.trials():
                    counts[t.status] = counts.get(t.status, 0) + 1
                seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
                raise AutoMLError(f"{str(run.dir)!r} has no completed trial with every objective within the "
                                  f"constraints ({seen}): no best model; `automl show {run.dir}` lists why")
            number = best.number
        row = run.store.trial(run.run_id, number)
        if row is None:
            numbers = [t.number for t in run.trials()]
            span = f"trials {min(numbers)}..{max(numbers)}" if numbers else "no trials"
            raise AutoMLError(f"{str(run.dir)!r} has no trial {number} (it has {span})")
        path = _artifact(run, row)
        from automl.trust import check_file, check_run

        if self._plan is None:  # before the stored spec is built into a plan (it imports what it names)
            check_run(run, "load models from", trust=self.trust)
        check_file(run.dir, path, "load models from", trust=self.trust)
        if self._plan is None:
            from automl.export import run_plan

            self._plan = run_plan(run)
            self._data = self._plan.load_data()
        from automl.export import trial_trainer

        trainer = trial_trainer(run, row, self._plan, self._data)
        try:
            predict = trainer.load_predictor(path)
        except (ValueError, OSError) as exc:
            raise AutoMLError(f"trial {number}: the {self._plan.trainer.name!r} trainer cannot load "
                              f"{str(path)!r}: {exc}") from exc
        return Model(number, path, predict, self._plan.task, self._data,
                     self._plan.trainer.name)

    def __repr__(self) -> str:
        return f"Result({str(self.dir)!r})"


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _artifact(run: Run, row: TrialRecord) -> Path:
    """The trial's model file, found in the run directory only: its copy in ``models/`` (a front
    member's), else the file in the trial's own directory."""
    number = row.number
    stored = row.artifact
    if not stored:
        why = f": {row.error}" if row.error else ""
        raise AutoMLError(f"trial {number} ({row.status}) has no model file{why}")
    name = Path(stored).name
    for path in (run.dir / "models" / f"trial-{number:05d}-{name}", run.dir / "trials" / f"{number:05d}" / name):
        # A symbolic link is returned too: Result.model refuses it, saying so.
        if name not in ("", ".", "..") and (path.exists() or path.is_symlink()):
            return path
    raise AutoMLError(f"trial {number}'s model file {name!r} is neither in {str(run.dir / 'models')!r} nor in "
                      f"{str(run.dir / 'trials' / f'{number:05d}')!r} (removed, or the run was copied without it)")


class Model:
    """One trial's exported model: ``predict`` and, for classification, ``predict_proba``.

    Takes a pandas DataFrame with the training columns (others are ignored; a missing one is an
    error naming it), or an array with the training columns in order. Columns that were numbers
    or dates in training are read as such (text such as ``"3.5"`` or ``"2024-01-31"``, as the data
    sources read files); categories and missing values are handled by the exported pipeline.

    Attributes:
        number: The trial number.
        path: The model file.
        task: ``classification`` or ``regression``.
        classes_: The class labels in sorted order (the columns of :meth:`predict_proba`); None
            for regression.
        feature_names_in_: The training columns, in order (None for a trainer without data).
    """

    def __init__(self, number: int, path: Path, predict: Callable[[Any], Any], task: str, data: Any,
                 trainer: str = "") -> None:
        self.number = number
        self.path = Path(path)
        self.task = task
        self.trainer = trainer
        self._predict = predict
        self._proba: Callable[[pd.DataFrame], np.ndarray] | None = None
        self._dtypes: pd.Series | None = data.train.X.dtypes if data is not None else None
        self.feature_names_in_ = (np.asarray(data.train.X.columns, dtype=object) if data is not None else None)
        self.classes_ = np.asarray(data.classes) if data is not None and task == "classification" else None

    def predict(self, X: Any) -> np.ndarray:
        """Labels (classification) or values (regression), one per row of ``X``."""
        return np.asarray(self._predict(self._frame(X))).ravel()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one row per row of ``X``, columns in the order of :attr:`classes_`.

        From the exported estimator's own ``predict_proba`` (a skops pipeline), or from the
        probability output of an ONNX file (a tensor, or skl2onnx's list of ``{class: p}``).

        Raises:
            AutoMLError: For a regression model, or one that gives no probabilities (an SVM
                without ``probability``, hard voting, a network exported with logits only).
        """
        if self.task != "classification" or self.classes_ is None:
            raise AutoMLError(f"trial {self.number} is a {self.task} model: it has no class probabilities; use predict")
        frame = self._frame(X)
        if self._proba is None:
            self._proba = self._proba_function()
        return self._proba(frame)

    # -- input ---------------------------------------------------------------------------

    def _frame(self, X: Any) -> Any:
        """``X`` as a DataFrame of the training columns in training order, their types read as in training."""
        if self.feature_names_in_ is None or self._dtypes is None:
            return X
        columns = [str(c) for c in self.feature_names_in_]
        if isinstance(X, pd.DataFrame):
            missing = [c for c in columns if c not in X.columns]
            if missing:
                raise AutoMLError(f"X lacks {len(missing)} column(s) trial {self.number}'s model was trained on: "
                                  f"{missing}; it needs {columns}")
            frame = X[columns]
        else:
            values = np.asarray(X, dtype=object if not isinstance(X, np.ndarray) else None)
            if values.ndim != 2 or values.shape[1] != len(columns):
                raise AutoMLError(f"X has shape {values.shape}; trial {self.number}'s model takes rows of "
                                  f"{len(columns)} columns: {columns} (or a DataFrame with those columns)")
            frame = pd.DataFrame(values, columns=columns)
        return self._retype(frame)

    def _retype(self, frame: pd.DataFrame) -> pd.DataFrame:
        assert self._dtypes is not None
        changed: dict[str, Any] = {}
        for column, dtype in self._dtypes.items():
            given = frame[column]
            if pd.api.types.is_bool_dtype(dtype) or given.dtype == dtype:
                continue
            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_numeric_dtype(given):
                read = pd.to_numeric(given, errors="coerce")
                what = "numbers"
            elif pd.api.types.is_datetime64_any_dtype(dtype) and not pd.api.types.is_datetime64_any_dtype(given):
                read = pd.to_datetime(given.astype(object).where(given.notna(), None), errors="coerce", format="mixed")
                what = "dates"
            else:
                continue
            if given.notna().any() and read.isna().all():
                raise AutoMLError(f"column {column!r} held {what} in training; X's holds none "
                                  f"(dtype {given.dtype}, e.g. {given.dropna().iloc[0]!r})")
            changed[str(column)] = read
        return frame.assign(**changed) if changed else frame

    # -- probabilities -------------------------------------------------------------------

    def _proba_function(self) -> Callable[[pd.DataFrame], np.ndarray]:
        assert self.classes_ is not None
        classes = list(self.classes_)
        # A trainer whose predictor is an estimator's own predict (the sklearn trainer's skops
        # pipeline, loaded with its trusted types) has that estimator's probabilities too.
        owner = getattr(self._predict, "__self__", None)
        if owner is not None:
            if not hasattr(owner, "predict_proba"):
                final = owner.steps[-1][1] if hasattr(owner, "steps") else owner
                raise AutoMLError(f"trial {self.number}'s model ({type(final).__name__}) gives no class probabilities "
                                  "(e.g. an SVM without probability, hard voting); use predict, or another trial")
            order = _order(list(getattr(owner, "classes_", classes)), classes, self.number)
            return lambda frame: np.asarray(owner.predict_proba(frame), dtype=np.float64)[:, order]
        if self.path.suffix == ".onnx":
            return _OnnxProba(self.path, classes, self.number)
        raise AutoMLError(f"trial {self.number}'s model ({self.path.name}, trainer {self.trainer!r}) gives no class "
                          "probabilities; use predict")

    def __repr__(self) -> str:
        return f"Model(trial {self.number}, {str(self.path)!r})"


def _order(have: list[Any], want: list[Any], number: int) -> list[int]:
    """Column indices that put probabilities over classes ``have`` in the order of ``want``."""
    if sorted(map(str, have)) != sorted(map(str, want)):
        raise AutoMLError(f"trial {number}'s model knows classes {have}, the run's data has {want}")
    index = {str(c): i for i, c in enumerate(have)}
    return [index[str(c)] for c in want]


class _OnnxProba:
    """Class probabilities from an ONNX file's probability output, whatever its layout.

    skl2onnx writes a tensor (rows x classes, classes in sorted order) with ``zipmap: False``,
    else a list of ``{class: probability}`` dicts; both are read. Inputs are fed by name:
    one float matrix of every column, or one input per column (numbers or strings).
    """

    def __init__(self, path: Path, classes: list[Any], number: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise AutoMLError("reading class probabilities from an ONNX model needs onnxruntime: "
                              "pip install onnxruntime") from exc
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: skl2onnx graphs carry harmless unused initializers
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.classes, self.number = classes, number
        outputs = self.session.get_outputs()[1:]  # the first is the label (or the only output)
        found = ([o for o in outputs if o.type.startswith("seq(map")]
                 or [o for o in outputs if o.type in ("tensor(float)", "tensor(double)") and len(o.shape or ()) == 2])
        if not found:
            raise AutoMLError(f"trial {number}'s ONNX model ({path.name}) has no probability output "
                              f"(its outputs: {[o.name for o in self.session.get_outputs()]}); use predict")
        self.output = found[0].name

    def _feeds(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        inputs = self.session.get_inputs()
        kinds = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}
        if len(inputs) == 1 and inputs[0].type in kinds and inputs[0].name not in frame.columns:
            return {inputs[0].name: frame.to_numpy(dtype=kinds[inputs[0].type], na_value=np.nan)}
        feeds = {}
        for item in inputs:
            if item.name not in frame.columns:
                raise AutoMLError(f"trial {self.number}'s ONNX model takes an input {item.name!r}, which is no "
                                  f"training column ({list(frame.columns)})")
            column = frame[item.name]
            if item.type in kinds:
                feeds[item.name] = column.to_numpy(dtype=kinds[item.type], na_value=np.nan).reshape(-1, 1)
            else:
                feeds[item.name] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
        return feeds

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        out = self.session.run([self.output], self._feeds(frame))[0]
        if isinstance(out, list):  # ZipMap: one {class: probability} per row
            have = list(out[0]) if out else self.classes
            order = _order(have, self.classes, self.number)
            proba = np.asarray([[row[have[i]] for i in order] for row in out], dtype=np.float64)
        else:
            proba = np.asarray(out, dtype=np.float64)
            if proba.ndim != 2 or proba.shape[1] != len(self.classes):
                raise AutoMLError(f"trial {self.number}'s ONNX probability output has shape {proba.shape}, "
                                  f"not rows x {len(self.classes)} classes")
        proba = proba.reshape(len(frame), len(self.classes))
        if len(proba) and (proba.min() < -1e-4 or np.abs(proba.sum(axis=1) - 1).max() > 1e-3):
            raise AutoMLError(f"trial {self.number}'s ONNX model gives scores, not probabilities (they are not in "
                              "[0, 1] or do not sum to 1: e.g. an SVM without probability); use predict")
        # Float32 sums miss 1 in the 7th digit: renormalised, as scikit-learn's metrics expect.
        proba = np.clip(proba, 0.0, 1.0)
        return np.asarray(proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12))
