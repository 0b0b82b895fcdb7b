"""The ``sklearn`` trainer: preprocessing + a model from the zoo (or an ensemble), step by step.

Validation: a hold-out split (the engine's ``valid`` part), or with ``data.folds: K`` k-fold
cross-validation over the training and validation rows together (stratified for
classification, the same folds for every trial); the pipeline is then fitted again on all of
those rows for the test score and the export. The test part is only ever scored, after the
last step, and reported separately as ``test_<metric>``.

Budget steps (``trainer.params.steps``, default 1): a model that grows (forest and extra-trees
trees, boosting iterations, LightGBM / XGBoost rounds, bagging members, MLP epochs) reaches
``ceil(full * step / steps)`` of its size at each step and the validation metrics are
reported after each, so a scheduler can stop weak trials early. ``trainer.params.fidelity``
(default ``auto``) says what a model that does not grow does: fitted at each step on a
growing, nested share of the training rows (``auto``, and every model with ``rows``), or
once at the first step (``growth``); see :mod:`automl_sklearn.fidelity`. A step fitted on a
share reports ``train_rows`` (rows the model saw; the folds' mean) with its metrics; a
LightGBM / XGBoost model reports ``boost_rounds`` (the rounds it predicts with, after early
stopping; see :mod:`automl_sklearn.boosting`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from automl.plugin import Trainer, TrialError
from automl_sklearn.boosting import Stopping, add_rounds
from automl_sklearn.build import Recipe, build_recipe, model_name
from automl_sklearn.export import convert_skops_to_onnx, export_model, load_predictor, load_scorable, model_bytes
from automl_sklearn.fidelity import FIDELITIES, RowShares
from automl_sklearn.metrics import mean_scores, scores
from automl_sklearn.pool import write_record

__all__ = ["SklearnTrainer"]


class _Fit:
    """One recipe fitted on one set of rows and grown budget step by budget step.

    Growth (``shares`` None): the preprocessing is fitted once, at the first step, on these
    rows; a model that grows grows at each step, any other is fitted at the first step.
    Row shares (``shares`` set): at each step the preprocessing and the model are fitted
    again, at full size, on that step's share of the rows (see :mod:`automl_sklearn.fidelity`).

    Args:
        recipe: What to fit.
        X: Training features.
        y: Training labels.
        classes: Every class of the task (``partial_fit`` needs them).
        valid: Validation rows for a LightGBM / XGBoost model's early stopping; None: no early stopping.
        shares: Row shares per step; None: every row at every step.
        rounds: A fixed number of boosting rounds, without early stopping (the refit on all
            rows under ``data.folds``: the folds' mean best round).
    """

    def __init__(
        self, recipe: Recipe, X: pd.DataFrame, y: pd.Series, classes: list[Any], *,
        valid: tuple[pd.DataFrame, pd.Series] | None = None, shares: RowShares | None = None, rounds: int | None = None,
    ) -> None:
        self.recipe = recipe
        self.growth = recipe.growth
        self.X, self.y, self.classes = X, y, classes
        self.valid = valid
        self.shares = shares
        self.rounds = rounds
        self.train_rows = 0
        self._reset(X, y)

    def _reset(self, X: pd.DataFrame, y: pd.Series) -> None:
        """Unfitted preprocessing and model, to be fitted on ``X``, ``y``."""
        self.prep = clone(self.recipe.prep) if self.recipe.prep is not None else None
        self.model = clone(self.recipe.model)
        self.full = self.recipe.full_size() if self.growth else 1
        if self.rounds is not None:
            self.full = self.rounds
        self.size = 0
        self._rows = (X, y)
        self.kwargs: dict[str, Any] = {}
        if self.recipe.sample_weight is not None:
            self.kwargs["sample_weight"] = compute_sample_weight(self.recipe.sample_weight, y)
        boosting = self.growth is not None and self.growth.kind == "boosting"
        patience = self.recipe.patience if self.valid is not None and self.rounds is None else None
        self.stopping = Stopping(patience) if boosting else None
        self._Xt: Any = None

    def grow(self, step: int, steps: int) -> bool:
        """Fit budget step ``step`` of ``steps``; False when nothing changed."""
        if self.shares is not None:
            rows = self.shares.rows(step)
            if len(rows) <= self.train_rows:
                return False
            self._reset(self.X.iloc[rows], self.y.iloc[rows])
            self._fit_to(self.full, last=True)
            self.train_rows = len(rows)
            return True
        self.train_rows = len(self.y)
        target = self.full if self.growth is None else max(1, math.ceil(self.full * step / steps - 1e-9))
        if target <= self.size or (self.stopping is not None and self.stopping.stopped):
            return False
        self._fit_to(target, last=step == steps)
        return True

    def _fit_to(self, target: int, *, last: bool) -> None:
        X, y = self._rows
        if self._Xt is None:
            self._Xt = self.prep.fit_transform(X, y) if self.prep is not None else X
        if self.stopping is not None:
            # LightGBM / XGBoost: add the rounds to the booster so far (automl_sklearn.boosting).
            add_rounds(self.model, self._Xt, y, target - self.size, self.stopping, valid=self._valid_rows(y),
                       cut=last, fit_kwargs=self.kwargs)
        elif self.growth is None or (self.size == 0 and target >= self.full):
            # Fitted in one go (a single budget step included): scikit-learn's own fit, with its own
            # stopping rules (the MLP's tol / n_iter_no_change), exactly as outside automl.
            self.model.fit(self._Xt, y, **self.kwargs)
        elif self.growth.kind == "warm_start":
            # scikit-learn keeps the trees / iterations already fitted and adds the rest.
            self.model.set_params(warm_start=True, **{self.growth.param: target})
            self.model.fit(self._Xt, y, **self.kwargs)
        else:  # epochs: one partial_fit pass over the rows per epoch
            extra = {"classes": self.classes} if is_classifier(self.model) else {}
            for _ in range(target - self.size):
                self.model.partial_fit(self._Xt, y, **extra, **self.kwargs)
        self.size = target

    def _valid_rows(self, y: pd.Series) -> tuple[Any, Any] | None:
        """The validation rows through the fitted preprocessing, for early stopping (None: off)."""
        if self.valid is None or self.stopping is None or self.stopping.patience is None:
            return None
        X, yv = self.valid
        if is_classifier(self.model):
            # A class the training rows lack cannot be encoded by the library: leave its rows out of early stopping.
            seen = yv.isin(set(pd.unique(y)))
            X, yv = X[seen.to_numpy()], yv[seen.to_numpy()]
        if len(yv) == 0:
            return None  # nothing to stop on: every round is kept
        return (self.prep.transform(X) if self.prep is not None else X), yv

    @property
    def kept_rounds(self) -> int | None:
        """Boosting rounds the model predicts with (None for other models)."""
        return self.stopping.kept if self.stopping is not None else None

    @property
    def pipeline(self) -> Pipeline:
        steps: list[tuple[str, Any]] = [("prep", self.prep)] if self.prep is not None else []
        return Pipeline([*steps, ("model", self.model)])


class SklearnTrainer(Trainer):
    """Fits ``Pipeline(preprocessing, model)`` where ``model`` comes from the config or params."""

    @property
    def budget_steps(self) -> int:
        return int(self.params.get("steps", 1))

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """Hold OpenMP/BLAS pools to the trial's CPUs: HistGradientBoosting otherwise takes every
        core of the machine and, next to other trials, runs ~7x slower on 2 cores (measured on wine)."""
        with threadpool_limits(limits=max(1, int(self.context.cpus))):
            yield

    # -- fitting ----------------------------------------------------------------------

    def _setup(self) -> None:
        data = self.context.data
        task = self.context.task
        self.recipe_ = build_recipe(
            self.config, self.params, task=task, X=data.train.X, seed=self.context.seed, cpus=self.context.cpus,
            trial_dir=self.context.trial_dir,
        )
        classes = data.classes
        folds = int(getattr(data, "folds", 0) or 0)
        seed = int(getattr(data, "seed", 0))
        self._cache: dict[str, dict[str, float]] = {}
        by_rows = self._row_fidelity()

        def fit(X: pd.DataFrame, y: pd.Series, valid: tuple[pd.DataFrame, pd.Series], part: int) -> _Fit:
            # Shares seeded by the split's seed (and the fold): the same rows for every trial of the search.
            shares = (RowShares.of(y, self.budget_steps, seed=seed + part, classification=task == "classification")
                      if by_rows else None)
            return _Fit(self.recipe_, X, y, classes, valid=valid, shares=shares)

        if folds >= 2:
            X = pd.concat([data.train.X, data.valid.X], ignore_index=True)
            y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
            splitter = (StratifiedKFold if task == "classification" else KFold)(folds, shuffle=True, random_state=seed)
            self._parts = [
                (fit(X.iloc[tr], y.iloc[tr], (X.iloc[va], y.iloc[va]), i), X.iloc[va], y.iloc[va])
                for i, (tr, va) in enumerate(splitter.split(X, y))
            ]
            self._pooled = (X, y)
            self._final: _Fit | None = None
        else:
            holdout = fit(data.train.X, data.train.y, (data.valid.X, data.valid.y), 0)
            self._parts = [(holdout, data.valid.X, data.valid.y)]
            self._final = holdout

    def _row_fidelity(self) -> bool:
        """Whether this trial's model is fitted on row shares (see :mod:`automl_sklearn.fidelity`)."""
        fidelity = str(self.params.get("fidelity", "auto"))
        if fidelity not in FIDELITIES:
            raise TrialError(f"fidelity {fidelity!r}: use one of {', '.join(FIDELITIES)}")
        if self.budget_steps < 2 or fidelity == "growth":
            return False
        return fidelity == "rows" or self.recipe_.growth is None

    def fit_step(self, step: int) -> None:
        if step == 1 or not hasattr(self, "_parts"):
            self._setup()
        changed = False
        with self._threads():
            for fit, _, _ in self._parts:
                changed |= fit.grow(step, self.budget_steps)
        if changed:
            self._cache.clear()

    def _final_fit(self) -> _Fit:
        """The pipeline for test and export: the hold-out fit, or (with folds) a fit on all rows."""
        if self._final is None:
            X, y = self._pooled
            kept = [f.kept_rounds for f, _, _ in self._parts if f.kept_rounds]
            # Boosting without a validation part: the folds' mean best number of rounds.
            rounds = max(1, round(sum(kept) / len(kept))) if kept else None
            self._final = _Fit(self.recipe_, X, y, self.context.data.classes, rounds=rounds)
            self._final.grow(1, 1)
        return self._final

    @property
    def pipeline_(self) -> Pipeline:
        """The fitted pipeline that is tested and exported."""
        return self._final_fit().pipeline

    # -- results ----------------------------------------------------------------------

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        if split not in self._cache:
            with self._threads():
                self._cache[split] = self._score(split)
        return dict(self._cache[split])

    def _score(self, split: str) -> dict[str, float]:
        if split == "valid":
            out = mean_scores([scores(self.context.task, f.pipeline, X, y) for f, X, y in self._parts])
            fits = [f for f, _, _ in self._parts]
            if fits[0].shares is not None:
                out["train_rows"] = float(sum(f.train_rows for f in fits) / len(fits))
            kept = [f.kept_rounds for f in fits if f.kept_rounds is not None]
            if kept:
                out["boost_rounds"] = float(sum(kept) / len(kept))
            return out
        part = self.context.data.test
        return scores(self.context.task, self.pipeline_, part.X, part.y)

    def evaluate_artifact(self, path: Path, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        """Every metric of :meth:`evaluate`, from the predictions of the exported ``.skops`` or ``.onnx`` file.

        Raises:
            ValueError: For ``valid`` under k-fold cross-validation: the exported model was
                fitted on those rows.
        """
        part = getattr(self.context.data, split)
        if Path(path).suffix == ".json":  # an ensemble's manifest: this trainer was never fitted
            if split == "valid" and int(getattr(self.context.data, "folds", 0) or 0) >= 2:
                raise ValueError("with data.folds the ensemble's members are fitted on the validation rows: it "
                                 "cannot be scored on them")
            with self._threads():
                return scores(self.context.task, load_scorable(Path(path), None), part.X, part.y)
        if split == "valid" and self._final is not self._parts[0][0]:
            raise ValueError("with data.folds the exported model is fitted on the validation rows: it cannot be "
                             "scored on them")
        with self._threads():
            return scores(self.context.task, load_scorable(Path(path), self.pipeline_), part.X, part.y)

    def export(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        with self._threads():
            pipeline = self.pipeline_
        data = self.context.data
        rows = pd.concat([data.train.X, data.valid.X], ignore_index=True)
        path = export_model(pipeline, rows, directory, str(self.params.get("export", "skops")))
        if Path(directory) == self.context.trial_dir:  # the final export, not a provisional one for a rung
            # The record that ensembles of the best trials read (see automl_sklearn.pool).
            name = self.context.trial_dir.name
            number = int(name) if name.isdigit() else -1
            write_record(directory, number, {**self.config, "model": model_name(self.config, self.params)},
                         self.evaluate("valid"))
        return path

    def model_size(self, path: Path) -> tuple[int, str]:
        """ONNX: the file; skops: the stored arrays and values without the schema; an ensemble's manifest:
        its member files (see :func:`model_bytes`)."""
        return model_bytes(path)

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        return load_predictor(path)

    #: What ``automl export --format`` accepts: the skops and ONNX files this trainer writes. LightGBM's
    #: and XGBoost's native files are not offered: they cannot hold the pipeline's imputation and
    #: encoding, so the booster alone is not the model that was measured.
    formats = {"skops": (".skops",), "onnx": (".onnx",)}
    #: ``automl export --format onnx`` of a trial exported as skops.
    conversions = {"onnx": ("skops",)}

    def convert(self, source: Path, fmt: str, directory: Path) -> Path:
        """skops to ONNX with skl2onnx, checked against the skops model's predictions.

        The skops file is loaded with the trusted-type policy of :func:`~automl_sklearn.export.load_model`;
        the ONNX inputs follow the training and validation rows, as in :meth:`export`.

        Raises:
            ValueError: For another conversion, a file this trainer did not write, or a
                pipeline skl2onnx cannot convert or whose ONNX predictions disagree.
        """
        if Path(source).suffix == ".json" or Path(source).name.endswith(".member"):
            raise ValueError("an ensemble is its manifest (ensemble.json) and its members' own files beside it; "
                             "it has no single skops or onnx file to export or convert to (export its members)")
        if fmt != "onnx" or Path(source).suffix != ".skops":
            raise ValueError(f"the sklearn trainer converts skops to onnx only, not {Path(source).name} to {fmt}")
        data = self.context.data
        rows = pd.concat([data.train.X, data.valid.X], ignore_index=True)
        directory.mkdir(parents=True, exist_ok=True)
        with self._threads():
            return convert_skops_to_onnx(Path(source), rows, directory)

    @property
    def members(self) -> list[int]:
        """Trial numbers of the members of an ensemble of the best trials (empty otherwise)."""
        return list(self.recipe_.members) if hasattr(self, "recipe_") else []

    # Ensembles of the completed trials (automl.ensemble): predictions, their scores and the voting
    # export, defined in automl_sklearn.selection and bound here as this class's methods (mypy does
    # not model an import in a class body, hence the ignore).
    from automl_sklearn.selection import build_ensemble, predictions, score_predictions  # type: ignore[misc]
