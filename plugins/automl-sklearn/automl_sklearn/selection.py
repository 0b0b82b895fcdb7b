"""The sklearn trainer's side of ensembles from what ran (``automl.ensemble``, Caruana's greedy selection).

Three methods of :class:`~automl_sklearn.trainer.SklearnTrainer` live here:

- :func:`predictions`: a trial's class probabilities (classes in sorted order) or values, on the
  validation rows (out-of-fold over the train and validation rows under ``data.folds``, in the
  order of their concatenation) and on the test part. A trial whose export is not a skops file
  (``export: onnx`` / ``auto``) also writes ``model.skops`` beside it: the ensemble loads its
  members from skops files only. A classifier without ``predict_proba`` (an SVM without
  ``probability``) gives its votes as probabilities: 1 for the class it predicts, 0 for the others.
- :func:`score_predictions`: the plugin's own :func:`~automl_sklearn.metrics.scores` on such an
  array, per fold and averaged under ``data.folds``, exactly as a trial is scored.
- :func:`build_ensemble`: each member's fitted pipeline loaded from its skops file with the
  trusted-type loader (:func:`~automl_sklearn.export.load_model`), nothing refitted, combined
  into a prefit soft-voting ``VotingClassifier`` (or ``VotingRegressor``) with the selection's
  weights (a member without ``predict_proba`` wrapped in :class:`Votes`), exported through
  :func:`~automl_sklearn.export.export_model` (``export: onnx`` is taken as ``auto`` here: ONNX
  where skl2onnx converts the ensemble, skops otherwise), and checked to predict what the
  selection scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch

from automl_sklearn.export import export_model, load_model, load_scorable
from automl_sklearn.metrics import _auc, mean_scores, scores

if TYPE_CHECKING:
    from automl.ensemble import EnsembleMember

__all__ = ["MEMBER_FILE", "Given", "Votes", "build_ensemble", "fold_rows", "predictions", "score_predictions"]

#: The skops file an ensemble loads a member from (the trial's own export, or a copy written beside it).
MEMBER_FILE = "model.skops"


class Given:
    """Fixed predictions with the surface :func:`~automl_sklearn.metrics.scores` reads (``predict``,
    ``predict_proba``, ``classes_``); the rows passed to them are ignored."""

    def __init__(self, values: np.ndarray, classes: Sequence[Any] | None) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        if classes is not None:
            self.classes_ = np.asarray(classes)
            self.predict_proba = self._proba

    def predict(self, X: Any = None) -> np.ndarray:
        if hasattr(self, "classes_"):
            return self.classes_[np.argmax(self.values, axis=1)]  # type: ignore[no-any-return]
        return self.values

    def _proba(self, X: Any = None) -> np.ndarray:
        return self.values


class Votes(ClassifierMixin, BaseEstimator):
    """A fitted classifier without ``predict_proba`` (an SVM) as soft-voting needs it: probability 1
    for the class it predicts. Wraps a fitted pipeline; nothing is fitted here."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def fit(self, X: Any, y: Any) -> Votes:
        raise NotImplementedError("Votes wraps a fitted model; it is never fitted")

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model.classes_)

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.model.predict(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return _one_hot(self.model.predict(X), list(self.classes_))

    def __sklearn_is_fitted__(self) -> bool:
        return True


def _one_hot(labels: Any, classes: list[Any]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)))
    out[np.arange(len(labels)), [index[v] for v in np.asarray(labels).tolist()]] = 1.0
    return out


def fold_rows(data: Any, task: str) -> tuple[pd.DataFrame, pd.Series, list[np.ndarray]]:
    """The train + validation rows and each fold's validation row positions, as the trainer's ``_setup`` makes them."""
    X = pd.concat([data.train.X, data.valid.X], ignore_index=True)
    y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
    splitter = (StratifiedKFold if task == "classification" else KFold)(
        int(data.folds), shuffle=True, random_state=int(getattr(data, "seed", 0)))
    return X, y, [va for _, va in splitter.split(X, y)]


def _values(pipeline: Any, X: pd.DataFrame, task: str, classes: list[Any]) -> np.ndarray | None:
    if task != "classification":
        return np.asarray(pipeline.predict(X), dtype=np.float64)
    if not hasattr(pipeline, "predict_proba"):
        return _one_hot(pipeline.predict(X), classes)
    proba = np.asarray(pipeline.predict_proba(X), dtype=np.float64)
    own = list(pipeline.classes_)
    if own == list(classes):
        return proba
    out = np.zeros((len(X), len(classes)))  # a class this fit never saw gets probability 0
    for j, label in enumerate(own):
        out[:, classes.index(label)] = proba[:, j]
    return out


def predictions(self: Any, split: str = "valid") -> np.ndarray | None:
    """The trial's predictions on ``split`` (see the module docstring); None without ``predict_proba``."""
    data, task = self.context.data, self.context.task
    classes = list(data.classes)
    with self._threads():
        if split == "test":
            return _values(self.pipeline_, data.test.X, task, classes)
        if self._final is self._parts[0][0]:  # hold-out: the validation part, in its order
            fit, X, _ = self._parts[0]
            out = _values(fit.pipeline, X, task, classes)
        else:  # k folds: each row predicted by the fit that did not see it
            n = len(data.train.y) + len(data.valid.y)
            out = np.zeros((n, len(classes))) if task == "classification" else np.zeros(n)
            for fit, X, _ in self._parts:
                part = _values(fit.pipeline, X, task, classes)
                if part is None:
                    return None
                out[X.index.to_numpy()] = part
        if out is not None:
            _keep_member_file(self)
    return out


def _keep_member_file(self: Any) -> None:
    """Write the exported pipeline as skops when the trial's export is another format (an ensemble loads skops)."""
    directory = Path(self.context.trial_dir)
    if not (directory / MEMBER_FILE).is_file():
        import skops.io as sio

        tmp = directory / (MEMBER_FILE + ".tmp")
        sio.dump(self.pipeline_, tmp)
        tmp.replace(directory / MEMBER_FILE)


def score_predictions(
    self: Any, values: Any, split: str = "valid", metrics: Sequence[str] | None = None
) -> dict[str, float]:
    """Every metric of :meth:`~automl_sklearn.trainer.SklearnTrainer.evaluate`, from predictions on ``split``.

    Without ``metrics``, :func:`~automl_sklearn.metrics.scores` computes every metric; with them
    (the selection asks for one metric many times), only those are computed, each by the same
    ``sklearn.metrics`` call as in ``scores``.
    """
    data, task = self.context.data, self.context.task
    classes = list(data.classes) if task == "classification" else None
    values = np.asarray(values, dtype=np.float64)
    wanted = [m for m in metrics or () if m in _ONE]
    if metrics and len(wanted) == len(metrics):
        def score(given: Given, y: Any) -> dict[str, float]:
            out = {}
            for name in wanted:
                value = _ONE[name](np.asarray(y), given)
                if value is not None:
                    out[name] = float(value)
            return out
    else:
        def score(given: Given, y: Any) -> dict[str, float]:
            return scores(task, given, None, y)
    if split == "test":
        return score(Given(values, classes), data.test.y)
    if int(getattr(data, "folds", 0) or 0) >= 2:
        _, y, folds = fold_rows(data, task)
        return mean_scores([score(Given(values[va], classes), y.iloc[va]) for va in folds])
    return score(Given(values, classes), data.valid.y)


def _prf(kind: int, average: str) -> Any:
    def metric(y: np.ndarray, given: Given) -> float:
        return float(skm.precision_recall_fscore_support(y, given.predict(), average=average, zero_division=0)[kind])
    return metric


def _roc_auc(y: np.ndarray, given: Given) -> float | None:
    classes = list(given.classes_)
    return _auc(y, given.values[:, 1] if len(classes) == 2 else given.values, classes)


#: One metric of :func:`~automl_sklearn.metrics.scores` at a time, computed as ``scores`` computes it.
_ONE: dict[str, Any] = {
    "accuracy": lambda y, g: skm.accuracy_score(y, g.predict()),
    "balanced_accuracy": lambda y, g: skm.balanced_accuracy_score(y, g.predict()),
    **{f"{name}_{average}": _prf(kind, average) for kind, name in enumerate(("precision", "recall", "f1"))
       for average in ("macro", "weighted")},
    "log_loss": lambda y, g: skm.log_loss(y, g.values, labels=list(g.classes_)),
    "roc_auc": _roc_auc,
    "r2": lambda y, g: skm.r2_score(y, g.predict()),
    "rmse": lambda y, g: skm.root_mean_squared_error(y, g.predict()),
    "mae": lambda y, g: skm.mean_absolute_error(y, g.predict()),
}


def _member_pipeline(member: EnsembleMember) -> Any:
    own = Path(member.directory) / MEMBER_FILE
    if own.is_file():
        return load_model(own)
    if member.artifact is not None and Path(member.artifact).suffix == ".skops" and Path(member.artifact).is_file():
        return load_model(Path(member.artifact))
    raise ValueError(f"trial {member.number} has no skops file to load its pipeline from ({MEMBER_FILE} in "
                     f"{member.directory}); an ensemble cannot use it")


def build_ensemble(self: Any, members: Sequence[EnsembleMember], directory: Path,
                   expected: Mapping[str, Any]) -> Path:
    """A prefit soft-voting ensemble of the members' exported pipelines, exported and checked (module docstring).

    Raises:
        ValueError: A member without a skops file, members that disagree on the classes, or a
            file that does not predict what the selection scored.
    """
    data, task = self.context.data, self.context.task
    names = [f"trial{m.number}" for m in members]
    pipelines = [_member_pipeline(m) for m in members]
    weights = np.asarray([float(m.weight) for m in members], dtype=float)  # an array: skl2onnx's converter needs one
    voting: Any
    if task == "classification":
        classes = list(data.classes)
        for m, p in zip(members, pipelines, strict=True):
            if list(getattr(p, "classes_", [])) != classes:
                raise ValueError(f"trial {m.number}'s pipeline predicts the classes {list(p.classes_)}, not {classes}")
        pipelines = [p if hasattr(p, "predict_proba") else Votes(p) for p in pipelines]
        # flatten_transform=False: how skl2onnx converts voting (it changes transform(), not predict).
        voting = VotingClassifier(list(zip(names, pipelines, strict=True)), voting="soft", weights=weights,
                                  flatten_transform=False)
        voting.le_ = LabelEncoder().fit(classes)
        voting.classes_ = voting.le_.classes_
    else:
        voting = VotingRegressor(list(zip(names, pipelines, strict=True)), weights=weights)
    # Prefit: the members are the trials' fitted pipelines, set as scikit-learn's fit would set them.
    voting.estimators_ = pipelines
    voting.named_estimators_ = Bunch(**dict(zip(names, pipelines, strict=True)))
    if hasattr(pipelines[0], "feature_names_in_"):
        voting.feature_names_in_ = pipelines[0].feature_names_in_
    model = Pipeline([("model", voting)])
    rows = pd.concat([data.train.X, data.valid.X], ignore_index=True)
    directory.mkdir(parents=True, exist_ok=True)
    with self._threads():
        fmt = str(self.params.get("export", "skops"))
        # A member wrapped in Votes has no ONNX converter: such an ensemble is kept as skops rather than lost.
        path = export_model(model, rows, directory, "auto" if fmt == "onnx" else fmt)
        _check(load_scorable(path, model), task, data, expected)
    return Path(path)


def _check(model: Any, task: str, data: Any, expected: Mapping[str, Any]) -> None:
    """The exported file must predict what the selection scored (ONNX float32: 1% of rows may flip a tie)."""
    splits = {"test": data.test.X}
    if int(getattr(data, "folds", 0) or 0) < 2:  # under folds the validation predictions are out-of-fold
        splits["valid"] = data.valid.X
    for split, X in splits.items():
        if split not in expected or len(X) == 0:
            continue
        want = np.asarray(expected[split], dtype=np.float64)
        if task == "classification":
            got = np.asarray(model.predict(X)).ravel()
            labels = np.asarray(model.classes_)[np.argmax(want, axis=1)]
            wrong = int(np.sum(got != labels))
            if wrong > max(1, len(X) // 100):
                raise ValueError(f"the exported ensemble disagrees with the selection's predictions on {wrong} of "
                                 f"{len(X)} {split} rows")
        else:
            got_values = np.asarray(model.predict(X), dtype=np.float64).ravel()
            scale = float(np.std(want)) or 1.0
            gap = float(np.max(np.abs(got_values - want.ravel())))
            if gap > 1e-3 * scale:
                raise ValueError(f"the exported ensemble's {split} predictions differ from the selection's by up to "
                                 f"{gap:.3g} (scale {scale:.3g})")
