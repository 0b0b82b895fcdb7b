"""Export in formats that are safe to load: skops (default) or ONNX via skl2onnx.

``trainer.params.export``:

- ``skops`` (default): ``model.skops``, loaded back trusting skops' own defaults and exactly the
  further types this trainer writes (:data:`TRUSTED_TYPES`): no ``builtins.*`` name and no
  function from a whole package (a crafted file chaining ``numpy.full_like``, ``str`` and
  ``exec`` would run code), so skops never runs code the file names, unlike pickle.
- ``onnx``: ``model.onnx`` through skl2onnx, run with onnxruntime on one thread; a pipeline
  skl2onnx cannot convert (HistGradientBoosting in skl2onnx 1.20) or whose ONNX predictions
  disagree with scikit-learn's fails the trial with the reason.
- ``auto``: ONNX where it converts and agrees, skops otherwise; the artifact's suffix in the
  store says which one a trial got.

LightGBM and XGBoost models convert through onnxmltools' converters, registered with skl2onnx
(``update_registered_converter``) once such a model's library has been imported; their skops
files too are trusted for the exact types in :data:`TRUSTED_TYPES` only, never a whole package.

Latency is measured on the exported file through :func:`load_predictor`, never on the
in-memory pipeline.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from automl.plugin import TrialError
from automl_sklearn.preprocess import numeric_columns
from automl_sklearn.skops_import import skops_io

__all__ = [
    "EXPORTS", "TRUSTED_TYPES", "OnnxModel", "convert_skops_to_onnx", "export_model", "load_model", "load_predictor", "load_scorable",
    "register_boosting_converters",
]

EXPORTS = ("skops", "onnx", "auto")
_DISTANCES = ("BrayCurtis", "Canberra", "Chebyshev", "Dice", "Euclidean", "Hamming", "Haversine", "Jaccard",
              "Kulsinski", "Mahalanobis", "Manhattan", "Matching", "Minkowski", "RogersTanimoto", "RussellRao",
              "SEuclidean", "SokalMichener", "SokalSneath")  # not PyFunc: it calls a function the file names
#: Exactly the types, beyond skops' own default trust, that a skops file written by this trainer holds
#: (every model of its zoo, each preprocessing and selection, collected from files it wrote): no
#: ``builtins.*`` name, and no function other than the two score functions of its feature selection.
TRUSTED_TYPES = frozenset({
    "automl_sklearn.preprocess.DateFeatures", "automl_sklearn.preprocess._KeepPercent",
    "automl_sklearn.xgb.XGBLabelClassifier", "automl_sklearn.selection.Votes", "automl_sklearn.selection.Given",
    "numpy.dtype",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "sklearn.tree._tree.Tree", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    *(f"sklearn.metrics._dist_metrics.{name}Distance{bits}" for name in _DISTANCES for bits in (32, 64)),
    "collections.OrderedDict",  # LightGBM's record of its best scores
    "lightgbm.basic.Booster", "lightgbm.basic._InnerPredictor", "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor", "xgboost.core.Booster", "xgboost.sklearn.XGBRegressor",
    "skl2onnx.sklapi.cast_transformer.CastTransformer",  # their float32 inputs (automl_sklearn.build)
    "sklearn.utils._bunch.Bunch",  # a fitted voting / stacking model's named_estimators_ (a dict)
})
_registered: set[str] = set()


def register_boosting_converters() -> None:
    """Register onnxmltools' LightGBM / XGBoost converters with skl2onnx, for each library imported so far.

    A pipeline holding such a model has imported its library (built or loaded from skops),
    so the libraries themselves are never imported here just to register.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if "lightgbm" in sys.modules and "lightgbm" not in _registered:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                    convert_lightgbm, options=classifier_options)
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                    convert_lightgbm, options={"split": None})
        _registered.add("lightgbm")
    if "xgboost" in sys.modules and "xgboost" not in _registered:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBRegressor

        from automl_sklearn.xgb import XGBLabelClassifier

        update_registered_converter(XGBLabelClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                    convert_xgboost, options=classifier_options)
        update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                    convert_xgboost)
        _registered.add("xgboost")


def export_model(pipeline: Any, X: pd.DataFrame, directory: Path, fmt: str = "skops") -> Path:
    """Write ``pipeline`` (fitted) under ``directory``.

    Args:
        pipeline: The fitted pipeline.
        X: Input rows: their columns define the ONNX inputs, and the ONNX model must predict
            them as scikit-learn does.
        directory: Where to write ``model.skops`` or ``model.onnx``.
        fmt: ``skops``, ``onnx`` or ``auto`` (see the module docstring).
    """
    if fmt in ("onnx", "auto"):
        try:
            return _to_onnx(pipeline, X, directory)
        except Exception as exc:  # skl2onnx raises many types; any of them means "not convertible"
            if fmt == "onnx":
                model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
                raise TrialError(
                    f"export: onnx: skl2onnx cannot convert {type(model).__name__}: {type(exc).__name__}: {exc}"[:1500]
                    + " (use export: auto to fall back to skops)"
                ) from exc
    sio = skops_io()
    path = directory / "model.skops"
    sio.dump(pipeline, path)
    return path


def _inputs(X: pd.DataFrame) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    numeric = set(numeric_columns(X))
    if len(numeric) == X.shape[1]:
        return [("X", FloatTensorType([None, X.shape[1]]))]  # one matrix (columns selected by position)
    # Mixed types: one input per column, named as the column: how skl2onnx maps a ColumnTransformer
    # that selects by name.
    return [(str(c), FloatTensorType([None, 1]) if c in numeric else StringTensorType([None, 1])) for c in X.columns]


def _feeds(X: pd.DataFrame, names: list[str], float_inputs: set[str]) -> dict[str, np.ndarray]:
    if len(names) == 1 and names[0] in float_inputs:
        return {names[0]: X.to_numpy(dtype=np.float32, na_value=np.nan)}
    feeds = {}
    for name, column in zip(names, X.columns, strict=True):
        values = X[column]
        if name in float_inputs:
            feeds[name] = values.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            feeds[name] = values.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return feeds


def _to_onnx(pipeline: Any, X: pd.DataFrame, directory: Path) -> Path:
    from skl2onnx import convert_sklearn, get_latest_tested_opset_version

    register_boosting_converters()
    model = pipeline.steps[-1][1]
    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    # onnxmltools' tree converters would write ai.onnx.ml 5, newer than skl2onnx accepts: cap it at 3.
    onx = convert_sklearn(pipeline, initial_types=_inputs(X), options=options,
                          target_opset={"": get_latest_tested_opset_version(), "ai.onnx.ml": 3})
    path = directory / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    # Float32 arithmetic may move a prediction; refuse an export that does not predict what was validated.
    got = load_predictor(path)(X)
    want = pipeline.predict(X)
    if is_classifier(model):
        # Float32 may flip a prediction that sits on a tie: allow 1% of the rows (and one row on small data).
        wrong = int(np.sum(np.asarray(got).ravel() != np.asarray(want).ravel()))
        ok = wrong <= max(1, len(X) // 100)
        detail = f"the ONNX model disagrees with scikit-learn on {wrong} of {len(X)} rows"
    else:
        scale = float(np.std(want)) or 1.0
        gap = float(np.max(np.abs(np.asarray(got, dtype=float).ravel() - np.asarray(want, dtype=float).ravel())))
        ok = gap <= 1e-3 * scale
        detail = f"the ONNX predictions differ from scikit-learn's by up to {gap:.3g} (scale {scale:.3g})"
    if not ok:
        path.unlink()
        raise ValueError(detail)
    return path


def convert_skops_to_onnx(source: Path, X: pd.DataFrame, directory: Path) -> Path:
    """``directory/model.onnx`` from the skops file ``source`` (what ``automl export --format onnx`` runs).

    Loads ``source`` with :func:`load_model`'s trusted types only; the ONNX model must predict
    ``X`` as the loaded pipeline does (the same check as an ONNX export at training time).

    Raises:
        ValueError: When the file holds untrusted types, or skl2onnx cannot convert the
            pipeline, or the ONNX predictions disagree.
    """
    pipeline = load_model(source)
    try:
        return _to_onnx(pipeline, X, directory)
    except Exception as exc:  # skl2onnx raises many types; any of them means "not convertible"
        model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        raise ValueError(f"skl2onnx cannot convert {type(model).__name__}: {type(exc).__name__}: {exc}"[:1500]) from exc


def load_model(path: Path) -> Any:
    """Load a skops file trusting only skops' defaults and :data:`TRUSTED_TYPES`.

    Raises:
        ValueError: When the file holds any other type (it was not written by this trainer).
    """
    sio = skops_io()
    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if t not in TRUSTED_TYPES]
    if foreign:
        raise ValueError(f"{path} holds types this trainer does not trust: {foreign}")
    return sio.load(path, trusted=untrusted)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread, as the latency protocol says (docs: field notes).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: skl2onnx graphs carry harmless unused initializers
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An ONNX export with the surface :func:`automl_sklearn.metrics.scores` uses: ``predict``,
    ``classes_`` and, when the fitted pipeline has them, ``predict_proba`` (skl2onnx's second output).

    Args:
        path: The ``.onnx`` file (run on one thread).
        classes: The fitted model's classes in sorted order (None for a regressor).
        proba: Whether the fitted model had ``predict_proba`` (an SVC without ``probability``
            has none; its ONNX second output holds scores, not probabilities).
    """

    def __init__(self, path: Path, classes: Any = None, proba: bool = False) -> None:
        self.session = _session(path)
        inputs = self.session.get_inputs()
        self.names = [i.name for i in inputs]
        self.floats = {i.name for i in inputs if i.type == "tensor(float)"}
        self.outputs = [o.name for o in self.session.get_outputs()]
        if classes is not None:
            self.classes_ = np.asarray(classes)
        if proba and len(self.outputs) > 1:
            self.predict_proba = self._proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.session.run(self.outputs[:1], _feeds(X, self.names, self.floats))[0]).ravel()

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The second output as it is, rows x classes: skl2onnx's tensor, or its ZipMap list of ``{class: p}``."""
        out = self.session.run(self.outputs[1:2], _feeds(X, self.names, self.floats))[0]
        if isinstance(out, list):  # ZipMap (an export with zipmap left on)
            keys = list(out[0]) if out else []
            return np.asarray([[row[k] for k in keys] for row in out], dtype=np.float64).reshape(len(X), -1)
        return np.asarray(out, dtype=np.float64)

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        proba = self.raw_proba(X)
        # Float32 sums overshoot 1 in the 7th digit, which scikit-learn's log_loss refuses: renormalise.
        proba = np.clip(proba, 0.0, 1.0)
        return proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)


def _OnnxModel(path: Path, fitted: Any) -> OnnxModel:  # noqa: N802 - the name the class had
    return OnnxModel(path, getattr(fitted, "classes_", None), hasattr(fitted, "predict_proba"))


def load_scorable(path: Path, fitted: Any) -> Any:
    """The exported model at ``path`` as an object the metrics can score (predict / predict_proba).

    Args:
        path: A ``.skops`` or ``.onnx`` file written by this trainer (or rewritten by a compressor).
        fitted: The fitted pipeline it was exported from (its classes and which scores it has);
            not read for an ensemble's manifest (``ensemble.json``), which names its classes.
    """
    path = Path(path)
    if path.suffix == ".json":
        from automl_sklearn.selection import load_ensemble

        return load_ensemble(path)
    return _OnnxModel(path, fitted) if path.suffix == ".onnx" else load_model(path)


def model_bytes(path: Path) -> tuple[int, str]:
    """The size of the model in an exported file, and what was counted.

    ONNX: the file. An ensemble's manifest: the sum of its member files. skops: the arrays and values the file stores, without skops' ``schema.json``
    (the description of every object's type and attributes, which for a small model is most of
    the file: 309 KB of a 319 KB logistic regression with 650 weights, measured).
    """
    path = Path(path)
    if path.suffix == ".json":  # an ensemble: its manifest names the members' files, which hold the model
        from automl_sklearn.selection import ensemble_bytes

        return ensemble_bytes(path), "ensemble: member files"
    if path.suffix != ".skops":
        return path.stat().st_size, "file"
    import zipfile

    with zipfile.ZipFile(path) as archive:
        stored = sum(i.compress_size for i in archive.infolist() if i.filename != "schema.json")
    return stored, "arrays and values, skops schema.json left out"


def load_predictor(path: Path) -> Callable[[pd.DataFrame], Any]:
    """A predict function over a DataFrame batch, running the exported ``.skops`` or ``.onnx`` file itself.

    For an ensemble's manifest (``ensemble.json``), the bound ``predict`` of its
    :class:`~automl_sklearn.selection.EnsembleModel`, whose ``predict_proba`` the Python API reads.
    """
    path = Path(path)
    if path.suffix == ".json":
        from automl_sklearn.selection import load_ensemble

        return load_ensemble(path).predict
    if path.suffix != ".onnx":
        return load_model(path).predict  # type: ignore[no-any-return]
    session = _session(path)
    names = [i.name for i in session.get_inputs()]
    float_inputs = {i.name for i in session.get_inputs() if i.type == "tensor(float)"}
    label = session.get_outputs()[0].name

    def predict(X: pd.DataFrame) -> Any:
        return session.run([label], _feeds(X, names, float_inputs))[0].ravel()

    return predict
