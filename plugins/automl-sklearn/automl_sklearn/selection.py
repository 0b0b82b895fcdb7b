"""The sklearn trainer's side of ensembles from what ran (``automl.ensemble``, Caruana's greedy selection).

Three methods of :class:`~automl_sklearn.trainer.SklearnTrainer` live here:

- :func:`predictions`: a trial's class probabilities (classes in sorted order) or values, on the
  validation rows (out-of-fold over the train and validation rows under ``data.folds``, in the
  order of their concatenation, once per round of ``data.repeats``) and on the test part. A trial whose export is neither a skops
  nor an ONNX file also writes ``model.skops`` beside it, for the ensemble to load. A classifier
  without ``predict_proba`` (an SVM without ``probability``) gives its votes as probabilities: 1
  for the class it predicts, 0 for the others.
- :func:`score_predictions`: the plugin's own :func:`~automl_sklearn.metrics.scores` on such an
  array, per fold and averaged under ``data.folds``, exactly as a trial is scored.
- :func:`build_ensemble`: no model is serialised again. The ensemble's file is a manifest,
  ``ensemble.json`` (format, version, task, the classes in sorted order, and per member its
  trial, file, format, weight and whether it votes one-hot), with each member's own exported
  file beside it (a hard link where the file system allows, else a copy): its ``model.onnx``
  when it has one, else its ``model.skops``. The members are loaded once, with the trusted
  loaders, to check that they predict what the selection scored.
- :func:`load_ensemble`: the manifest read back as an :class:`EnsembleModel` (the weighted mean
  of the members' probabilities, labels by argmax; or of their values). It reads only files
  named in the manifest's own directory (plain names, no path), or, for the copy of the
  manifest a run keeps among its front models (``models/trial-NNNNN-ensemble.json``), in that
  trial's directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin

from automl_sklearn.export import OnnxModel, load_model
from automl_sklearn.folds import fold_parts
from automl_sklearn.metrics import _auc, mean_scores, scores
from automl_sklearn.skops_import import skops_io

if TYPE_CHECKING:
    from automl.plugin import EnsembleMember

__all__ = ["MANIFEST", "MEMBER_FILE", "EnsembleModel", "Given", "Votes", "build_ensemble", "ensemble_bytes",
           "fold_rows", "load_ensemble", "predictions", "score_predictions"]

#: The skops file an ensemble takes a member from when the trial has no ``model.onnx`` (its own export, or a
#: copy written beside it).
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
    for the class it predicts. Wraps a fitted pipeline; nothing is fitted here. (Kept so that the
    soft-voting skops files of ensembles built before the manifest still load.)"""

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


def fold_rows(data: Any, task: str) -> tuple[pd.Series, list[np.ndarray]]:
    """The true values that out-of-fold predictions are scored against, and each part's positions in them, as the
    trainer's ``_setup`` cuts the parts: the train + validation rows, once per round of ``data.repeats`` (round
    ``r`` of ``n`` rows at positions ``r * n`` to ``(r + 1) * n - 1``)."""
    y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
    folds, repeats = int(data.folds), int(getattr(data, "repeats", 1) or 1)
    parts = fold_parts(y, task, folds, repeats, int(getattr(data, "seed", 0)))
    n = len(y)
    stacked = pd.concat([y] * repeats, ignore_index=True) if repeats > 1 else y
    return stacked, [(i // folds) * n + va for i, (_, va) in enumerate(parts)]


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
        else:  # k folds: each row predicted by the fit that did not see it, once per round of the folds
            n = len(data.train.y) + len(data.valid.y)
            folds = int(data.folds)
            rows = n * (len(self._parts) // folds)
            out = np.zeros((rows, len(classes))) if task == "classification" else np.zeros(rows)
            for i, (fit, X, _) in enumerate(self._parts):
                part = _values(fit.pipeline, X, task, classes)
                if part is None:
                    return None
                out[(i // folds) * n + X.index.to_numpy()] = part
        if out is not None:
            _keep_member_file(self)
    return out


def _keep_member_file(self: Any) -> None:
    """Write the exported pipeline as skops when the trial's export is neither skops nor ONNX (the formats an
    ensemble's members are loaded from)."""
    directory = Path(self.context.trial_dir)
    if not (directory / MEMBER_FILE).is_file() and not (directory / "model.onnx").is_file():
        sio = skops_io()
        tmp = directory / (MEMBER_FILE + ".tmp")
        sio.dump(self.pipeline_, tmp)
        tmp.replace(directory / MEMBER_FILE)


def score_predictions(
    self: Any, values: Any, split: str = "valid", metrics: Sequence[str] | None = None
) -> dict[str, float]:
    """Every metric of :meth:`~automl_sklearn.trainer.SklearnTrainer.evaluate`, from predictions on ``split``.

    Without ``metrics``, :func:`~automl_sklearn.metrics.scores` computes every metric; with them
    (the selection asks for one metric many times), only those are computed, each by the same
    ``sklearn.metrics`` call as in ``scores``, on the classes' positions instead of their labels
    (the same numbers: these metrics only compare classes for equality and order them as given).
    """
    task = self.context.task
    values = np.asarray(values, dtype=np.float64)
    wanted = [m for m in metrics or () if m in _ONE]
    coded = metrics is not None and len(metrics) > 0 and len(wanted) == len(metrics)
    if coded:
        def score(given: Given, y: Any) -> dict[str, float]:
            out = {}
            for name in wanted:
                value = _ONE[name](y, given)
                if value is not None:
                    out[name] = float(value)
            return out
    else:
        def score(given: Given, y: Any) -> dict[str, float]:
            return scores(task, given, None, y)
    y, folds, classes = _truth(self, split, coded)
    if folds is not None:
        return mean_scores([score(Given(values[va], classes), y[va]) for va in folds])
    return score(Given(values, classes), y)


def _truth(self: Any, split: str, coded: bool) -> tuple[np.ndarray, list[np.ndarray] | None, list[Any] | None]:
    """What predictions on ``split`` are scored against: the true values, each fold's row positions under
    ``data.folds`` (else None) and the classes; ``coded``: labels as their positions in the classes.

    Kept on the trainer: the ensemble selection scores hundreds of blends against the same rows, and splitting
    the folds anew and comparing string labels at each call took 43 of the 55 s of a 20-candidate selection on
    letter (15,000 rows, 26 classes).
    """
    cache = self.__dict__.setdefault("_scoring_truth", {})
    if (split, coded) not in cache:
        data, task = self.context.data, self.context.task
        folds = None
        if split == "test":
            y = np.asarray(data.test.y)
        elif int(getattr(data, "folds", 0) or 0) >= 2:
            rows, folds = fold_rows(data, task)
            y = np.asarray(rows)
        else:
            y = np.asarray(data.valid.y)
        classes = list(data.classes) if task == "classification" else None
        if coded and classes is not None:
            # A label outside the classes gets -1: never predicted, and refused by log_loss, as the label was.
            y = pd.Categorical(y, categories=classes).codes.astype(np.int64)
            classes = list(range(len(classes)))
        cache[(split, coded)] = (y, folds, classes)
    return cache[(split, coded)]  # type: ignore[no-any-return]


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


#: The ensemble's artifact: a manifest naming the members' own exported files, kept beside it.
MANIFEST = "ensemble.json"
#: What the manifest's ``format`` field holds, and the version of its layout this trainer reads.
MANIFEST_FORMAT, MANIFEST_VERSION = "automl-sklearn ensemble", 1
#: A member file's name in the ensemble's directory: no known model suffix at the end, so that ``automl
#: export`` of the ensemble trial never takes a member's file for the ensemble's own.
_MEMBER_NAME = "trial-{number:05d}-model.{fmt}.member"
_FRONT_COPY = re.compile(r"trial-(\d{5})-" + re.escape(MANIFEST))


def _member_source(member: EnsembleMember) -> tuple[Path, str]:
    """The member's exported file and its format: its ``model.onnx`` when it has one, else its skops file."""
    directory = Path(member.directory)
    artifact = Path(member.artifact) if member.artifact is not None else None
    for fmt in ("onnx", "skops"):
        own = directory / f"model.{fmt}"
        if own.is_file():
            return own, fmt
        if artifact is not None and artifact.suffix == f".{fmt}" and artifact.is_file():
            return artifact, fmt
    raise ValueError(f"trial {member.number} has no model.onnx nor {MEMBER_FILE} in {directory}; an ensemble "
                     "cannot use it")


def _place(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no bytes copied), or a copy where the file system refuses links."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def build_ensemble(self: Any, members: Sequence[EnsembleMember], directory: Path,
                   expected: Mapping[str, Any]) -> Path:
    """``directory/ensemble.json`` naming the members' exported files placed beside it, checked (module docstring).

    Raises:
        ValueError: A member without an exported file, a member file that does not load with the
            trusted loaders, or members that together do not predict what the selection scored.
    """
    data, task = self.context.data, self.context.task
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for m in members:
        source, fmt = _member_source(m)
        name = _MEMBER_NAME.format(number=int(m.number), fmt=fmt)
        _place(source, directory / name)
        entries.append({"trial": int(m.number), "file": name, "format": fmt, "weight": float(m.weight)})
    manifest: dict[str, Any] = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "task": task,
                                "members": entries}
    if task == "classification":
        manifest["classes"] = np.asarray(data.classes).tolist()
    with self._threads():
        members_ = [_load_member(directory / e["file"], e["format"], task, manifest.get("classes")) for e in entries]
        if task == "classification":  # whether an ONNX member's second output is probabilities, seen once here
            probe = pd.concat([data.train.X, data.valid.X], ignore_index=True).head(64)
            for entry, member in zip(entries, members_, strict=True):
                entry["votes"] = member.one_hot = member.votes(probe)
        path = directory / MANIFEST
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.replace(path)
        _check(EnsembleModel(manifest, members_), task, data, expected)
    return path


class _Member:
    """One member file, loaded: its class probabilities over the ensemble's classes, or its values."""

    def __init__(self, model: Any, fmt: str, task: str, classes: list[Any] | None, name: str = "") -> None:
        self.model, self.fmt, self.task, self.classes, self.name = model, fmt, task, classes, name
        self.one_hot: bool | None = None  # ONNX: set from the manifest (the build probes it)

    def votes(self, X: pd.DataFrame) -> bool:
        """Whether the member votes one-hot: no ``predict_proba`` (skops), or an ONNX second output that
        holds scores (an SVM's decision function), not probabilities."""
        if self.fmt != "onnx":
            return not hasattr(self.model, "predict_proba")
        if not hasattr(self.model, "predict_proba"):
            return True
        raw = self.model.raw_proba(X)
        if raw.shape != (len(X), len(self.classes or ())):
            raise ValueError(f"{self.name}: its probability output has shape {raw.shape}, not rows x "
                             f"{len(self.classes or ())} classes {self.classes}")
        return bool(raw.min() < -1e-4 or np.abs(raw.sum(axis=1) - 1).max() > 1e-3)

    def values(self, X: pd.DataFrame) -> np.ndarray:
        if self.fmt != "onnx":
            out = _values(self.model, X, self.task, list(self.classes or ()))
            assert out is not None
            return out
        if self.task != "classification":
            return np.asarray(self.model.predict(X), dtype=np.float64)
        assert self.classes is not None
        if self.one_hot:
            return _one_hot(self.model.predict(X), self.classes)
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)


def _load_member(path: Path, fmt: str, task: str, classes: list[Any] | None) -> _Member:
    if fmt == "skops":
        model = load_model(path)
        if task == "classification" and classes is not None and not set(model.classes_) <= set(classes):
            raise ValueError(f"{path.name} predicts the classes {list(model.classes_)}, not {classes}")
        return _Member(model, fmt, task, classes, path.name)
    if fmt == "onnx":
        return _Member(OnnxModel(path, classes if task == "classification" else None, task == "classification"),
                       fmt, task, classes, path.name)
    raise ValueError(f"{path.name}: unknown member format {fmt!r} (onnx or skops)")


class EnsembleModel:
    """An ensemble read from its manifest: the weighted mean of its members' class probabilities
    (labels: the most probable class) or values; ``predict``, ``predict_proba`` and ``classes_``."""

    def __init__(self, manifest: Mapping[str, Any], members: Sequence[_Member]) -> None:
        self.task = str(manifest["task"])
        self.members = list(members)
        self.weights = np.asarray([float(e["weight"]) for e in manifest["members"]], dtype=np.float64)
        if self.task == "classification":
            self.classes_ = np.asarray(manifest["classes"])
            self.predict_proba = self._proba

    def _blend(self, X: pd.DataFrame) -> np.ndarray:
        total = sum(w * m.values(X) for w, m in zip(self.weights, self.members, strict=True))
        return np.asarray(total, dtype=np.float64) / float(self.weights.sum())

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._blend(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        out = self._blend(X)
        if self.task == "classification":
            return self.classes_[np.argmax(out, axis=1)]  # type: ignore[no-any-return]
        return out


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``, its fields checked; member files must be plain names in its directory."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable ensemble manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not an ensemble manifest of this trainer (format {MANIFEST_FORMAT!r})")
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: ensemble manifest version {manifest.get('version')!r}; this trainer reads "
                         f"{MANIFEST_VERSION}")
    if manifest.get("task") not in ("classification", "regression"):
        raise ValueError(f"{path}: field 'task' must be classification or regression")
    if manifest["task"] == "classification" and not isinstance(manifest.get("classes"), list):
        raise ValueError(f"{path}: field 'classes' must be a list")
    entries = manifest.get("members")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: field 'members' must be a non-empty list")
    for i, entry in enumerate(entries):
        name = entry.get("file") if isinstance(entry, dict) else None
        # A tampered run directory must not make the loader read a file outside the ensemble's own directory.
        if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
                or "\0" in name or Path(name).name != name):
            raise ValueError(f"{path}: members[{i}].file must name a file in the manifest's own directory, "
                             f"not {name!r}")
        if entry.get("format") not in ("onnx", "skops"):
            raise ValueError(f"{path}: members[{i}].format must be onnx or skops")
        weight = entry.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"{path}: members[{i}].weight must be a number >= 0")
    return manifest


def _member_dir(path: Path, name: str) -> Path:
    """Where the member file ``name`` is: beside the manifest, or, for the manifest's copy among a run's
    front models (``models/trial-NNNNN-ensemble.json``, copied without its members), the trial's own directory."""
    here = path.parent
    if (here / name).is_file():
        return here
    front = _FRONT_COPY.fullmatch(path.name)
    if front is not None and here.name == "models":
        return here.parent / "trials" / front.group(1)
    return here


def load_ensemble(path: Path) -> EnsembleModel:
    """The ensemble of the manifest at ``path``, each member file loaded once with the trusted loaders.

    Raises:
        ValueError: A malformed manifest, a member named outside its directory, a missing member
            file, or one holding types this trainer does not trust.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    classes = manifest.get("classes") if manifest["task"] == "classification" else None
    members = []
    for entry in manifest["members"]:
        file = _member_dir(path, entry["file"]) / entry["file"]
        if not file.is_file():
            raise ValueError(f"{path}: member file {entry['file']!r} is missing (the ensemble is its manifest "
                             "and the member files beside it)")
        member = _load_member(file, entry["format"], manifest["task"], classes)
        member.one_hot = bool(entry.get("votes", False))
        members.append(member)
    return EnsembleModel(manifest, members)


def ensemble_bytes(path: Path) -> int:
    """The bytes of the member files the manifest at ``path`` names."""
    manifest = _read_manifest(Path(path))
    return sum((_member_dir(Path(path), e["file"]) / e["file"]).stat().st_size for e in manifest["members"])


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
