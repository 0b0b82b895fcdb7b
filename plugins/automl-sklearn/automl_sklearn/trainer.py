"""The ``sklearn`` trainer: preprocessing + a model from the zoo (or an ensemble), step by step.

Validation: a hold-out split (the engine's ``valid`` part), or with ``data.folds: K`` k-fold
cross-validation over the training and validation rows together (stratified for
classification, the same folds for every trial); the pipeline is then fitted again on all of
those rows for the test score and the export. The test part is only ever scored, after the
last step, and reported separately as ``test_<metric>``.

Budget steps (``trainer.params.steps``, default 1): a model that grows (forest and extra-trees
trees, boosting iterations, bagging members, MLP epochs) reaches ``ceil(full * step / steps)``
of its size at each step and the validation metrics are reported after each, so a scheduler
can stop weak trials early; a model that does not grow is fitted at the first step.
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

from automl.interfaces import Trainer
from automl_sklearn.build import Recipe, build_recipe, model_name
from automl_sklearn.export import convert_skops_to_onnx, export_model, load_predictor, load_scorable
from automl_sklearn.metrics import mean_scores, scores
from automl_sklearn.pool import write_record

__all__ = ["SklearnTrainer"]


class _Fit:
    """One recipe fitted on one set of rows and grown budget step by budget step.

    The preprocessing is fitted once, at the first step, on these rows only.
    """

    def __init__(self, recipe: Recipe, X: pd.DataFrame, y: pd.Series, classes: list[Any]) -> None:
        self.prep = clone(recipe.prep) if recipe.prep is not None else None
        self.model = clone(recipe.model)
        self.growth = recipe.growth
        self.full = recipe.full_size() if recipe.growth else 1
        self.size = 0
        self.X, self.y, self.classes = X, y, classes
        self.kwargs: dict[str, Any] = {}
        if recipe.sample_weight is not None:
            self.kwargs["sample_weight"] = compute_sample_weight(recipe.sample_weight, y)
        self._Xt: Any = None

    def grow(self, fraction: float) -> bool:
        """Fit up to ``fraction`` of the full size; False when nothing changed."""
        target = self.full if self.growth is None else max(1, math.ceil(self.full * fraction - 1e-9))
        if target <= self.size:
            return False
        if self._Xt is None:
            self._Xt = self.prep.fit_transform(self.X, self.y) if self.prep is not None else self.X
        if self.growth is None or (self.size == 0 and target >= self.full):
            # Fitted in one go (a single budget step included): scikit-learn's own fit, with its own
            # stopping rules (the MLP's tol / n_iter_no_change), exactly as outside automl.
            self.model.fit(self._Xt, self.y, **self.kwargs)
        elif self.growth.kind == "warm_start":
            # scikit-learn keeps the trees / iterations already fitted and adds the rest.
            self.model.set_params(warm_start=True, **{self.growth.param: target})
            self.model.fit(self._Xt, self.y, **self.kwargs)
        else:  # epochs: one partial_fit pass over the rows per epoch
            extra = {"classes": self.classes} if is_classifier(self.model) else {}
            for _ in range(target - self.size):
                self.model.partial_fit(self._Xt, self.y, **extra, **self.kwargs)
        self.size = target
        return True

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
        self._cache: dict[str, dict[str, float]] = {}
        if folds >= 2:
            X = pd.concat([data.train.X, data.valid.X], ignore_index=True)
            y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
            seed = int(getattr(data, "seed", 0))
            splitter = (StratifiedKFold if task == "classification" else KFold)(folds, shuffle=True, random_state=seed)
            self._parts = [
                (_Fit(self.recipe_, X.iloc[tr], y.iloc[tr], classes), X.iloc[va], y.iloc[va])
                for tr, va in splitter.split(X, y)
            ]
            self._pooled = (X, y)
            self._final: _Fit | None = None
        else:
            holdout = _Fit(self.recipe_, data.train.X, data.train.y, classes)
            self._parts = [(holdout, data.valid.X, data.valid.y)]
            self._final = holdout

    def fit_step(self, step: int) -> None:
        if step == 1 or not hasattr(self, "_parts"):
            self._setup()
        changed = False
        with self._threads():
            for fit, _, _ in self._parts:
                changed |= fit.grow(step / self.budget_steps)
        if changed:
            self._cache.clear()

    def _final_fit(self) -> _Fit:
        """The pipeline for test and export: the hold-out fit, or (with folds) a fit on all rows."""
        if self._final is None:
            X, y = self._pooled
            self._final = _Fit(self.recipe_, X, y, self.context.data.classes)
            self._final.grow(1.0)
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
            return mean_scores([scores(self.context.task, f.pipeline, X, y) for f, X, y in self._parts])
        part = self.context.data.test
        return scores(self.context.task, self.pipeline_, part.X, part.y)

    def evaluate_artifact(self, path: Path, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        """Every metric of :meth:`evaluate`, from the predictions of the exported ``.skops`` or ``.onnx`` file.

        Raises:
            ValueError: For ``valid`` under k-fold cross-validation: the exported model was
                fitted on those rows.
        """
        if split == "valid" and self._final is not self._parts[0][0]:
            raise ValueError("with data.folds the exported model is fitted on the validation rows: it cannot be "
                             "scored on them")
        part = getattr(self.context.data, split)
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

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        return load_predictor(path)

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
    # export, defined in automl_sklearn.selection and bound here as this class's methods.
    from automl_sklearn.selection import build_ensemble, predictions, score_predictions
