"""The ``sklearn`` trainer: preprocessing + a model from the zoo (or an ensemble), step by step.

Validation: a hold-out split (the engine's ``valid`` part), or with ``data.folds: K`` k-fold
cross-validation over the training and validation rows together (stratified for
classification, the same folds for every trial; ``data.repeats: R`` rounds of them, each
shuffled anew, the metrics the mean over the K x R parts); the pipeline is then fitted again
on all of those rows for the test score and the export. The test part is only ever scored, after the
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from threadpoolctl import threadpool_limits

from automl.plugin import EnsembleMember, Trainer, TrialError
from automl_sklearn.fidelity import FIDELITIES, RowShares
from automl_sklearn.metrics import mean_scores, scores
from automl_sklearn.pool import write_record

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

    from automl_sklearn.fitting import Fit

__all__ = ["SklearnTrainer"]

# scikit-learn and the modules that need it (building, fitting, exporting) are imported inside the methods
# that use them: this module is imported whenever the plugin loads (every ``automl`` command and every trial
# worker, whatever its trainer), where scikit-learn would cost about a second of CPU.


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
        from automl_sklearn.build import build_recipe
        from automl_sklearn.fitting import Fit
        from automl_sklearn.folds import fold_parts

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

        def fit(X: pd.DataFrame, y: pd.Series, valid: tuple[pd.DataFrame, pd.Series], part: int) -> Fit:
            # Shares seeded by the split's seed (and the fold): the same rows for every trial of the search.
            shares = (RowShares.of(y, self.budget_steps, seed=seed + part, classification=task == "classification")
                      if by_rows else None)
            return Fit(self.recipe_, X, y, classes, valid=valid, shares=shares)

        if folds >= 2:
            X = pd.concat([data.train.X, data.valid.X], ignore_index=True)
            y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
            repeats = int(getattr(data, "repeats", 1) or 1)
            self._parts = [
                (fit(X.iloc[tr], y.iloc[tr], (X.iloc[va], y.iloc[va]), i), X.iloc[va], y.iloc[va])
                for i, (tr, va) in enumerate(fold_parts(y, task, folds, repeats, seed))
            ]
            self._pooled = (X, y)
            self._final: Fit | None = None
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

    def _final_fit(self) -> Fit:
        """The pipeline for test and export: the hold-out fit, or (with folds) a fit on all rows."""
        from automl_sklearn.fitting import Fit

        if self._final is None:
            X, y = self._pooled
            kept = [f.kept_rounds for f, _, _ in self._parts if f.kept_rounds]
            # Boosting without a validation part: the folds' mean best number of rounds.
            rounds = max(1, round(sum(kept) / len(kept))) if kept else None
            self._final = Fit(self.recipe_, X, y, self.context.data.classes, rounds=rounds)
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
        from automl_sklearn.export import load_scorable

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
        from automl_sklearn.build import model_name
        from automl_sklearn.export import export_model

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
        its member files (see :func:`~automl_sklearn.export.model_bytes`)."""
        from automl_sklearn.export import model_bytes

        return model_bytes(path)

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        from automl_sklearn.export import load_predictor

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
        from automl_sklearn.export import convert_skops_to_onnx

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
    # export, defined in automl_sklearn.selection (which needs scikit-learn, hence imported here).

    def predictions(self, split: Literal["valid", "test"] = "valid") -> np.ndarray | None:
        from automl_sklearn.selection import predictions

        return predictions(self, split)

    def score_predictions(self, predictions: Any, split: Literal["valid", "test"] = "valid",
                          metrics: Sequence[str] | None = None) -> dict[str, float]:
        from automl_sklearn.selection import score_predictions

        return score_predictions(self, predictions, split, metrics)

    def build_ensemble(self, members: Sequence[EnsembleMember], directory: Path,
                       expected: Mapping[str, Any]) -> Path:
        from automl_sklearn.selection import build_ensemble

        return build_ensemble(self, members, directory, expected)
