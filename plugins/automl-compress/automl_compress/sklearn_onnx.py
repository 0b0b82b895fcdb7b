"""``onnx``: a scikit-learn pipeline run by ONNX Runtime where it converts and predicts faster.

The trial's fitted pipeline (exported as skops by the trainer) is converted with skl2onnx
through the sklearn trainer's own ONNX export, which refuses a conversion whose predictions
disagree with scikit-learn's. With ``keep: faster`` (default) both files are timed with the
engine's latency protocol (one thread, warm-up, median) at ``batch_size`` and the ONNX file
is kept only when it is faster; a pipeline skl2onnx cannot convert (HistGradientBoosting in
skl2onnx 1.20) keeps its skops file. ``trees`` < 1 keeps the first fraction of a fitted
forest's trees (forest, extra_trees, bagging): a size knob applied after training; it is
ignored for other models. ``onnx_runtime`` reports 1 when the trial's artifact is the ONNX file.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pandas as pd

from automl.plugin import Compressor, Trainer, TrialError, measure_latency
from automl_compress.params import OnnxParams, parse

__all__ = ["OnnxCompressor", "keep_trees"]

#: Latency comparison: fewer calls than a trial's own measurement, the same protocol.
_WARMUP, _REPEATS = 5, 30


def keep_trees(pipeline: Any, fraction: float) -> bool:
    """Keep the first ``fraction`` of the fitted trees of ``pipeline``'s model; False when it has none."""
    from sklearn import ensemble

    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    # Members that vote with equal weight only: AdaBoost's trees carry weights of their own.
    kinds = (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor, ensemble.ExtraTreesClassifier,
             ensemble.ExtraTreesRegressor, ensemble.BaggingClassifier, ensemble.BaggingRegressor)
    if not isinstance(model, kinds) or fraction >= 1:
        return False
    trees = list(model.estimators_)
    n = max(1, math.ceil(len(trees) * fraction - 1e-9))
    model.estimators_ = trees[:n]
    if hasattr(model, "estimators_features_"):  # bagging draws features per member
        model.estimators_features_ = model.estimators_features_[:n]
    if hasattr(model, "estimators_samples_") and "_seeds" in vars(model):
        model._seeds = model._seeds[:n]
    model.n_estimators = n
    return True


class OnnxCompressor(Compressor):
    """Converts the trial's scikit-learn pipeline to ONNX (see the module docstring)."""

    def compress_artifact(self, trainer: Trainer, path: Path) -> Path | None:
        from automl_sklearn.export import export_model
        from automl_sklearn.trainer import SklearnTrainer

        p: OnnxParams = parse(OnnxParams, self.params)
        if not isinstance(trainer, SklearnTrainer):
            raise TrialError(f"compressor 'onnx' converts scikit-learn pipelines; got a {type(trainer).__name__}")
        pipeline = copy.deepcopy(trainer.pipeline_)
        trimmed = keep_trees(pipeline, p.trees)
        data = self.context.data
        rows = pd.concat([data.train.X, data.valid.X], ignore_index=True)
        out = path.parent / "onnx"
        out.mkdir(exist_ok=True)
        base: Path | None = None
        if trimmed:  # the skops file of the trimmed pipeline: what ONNX competes with
            base = export_model(pipeline, rows, out, "skops")
        self.onnx_ = 0.0
        try:
            converted = export_model(pipeline, rows, out, "onnx")
        except TrialError:
            return base  # skl2onnx cannot convert this pipeline: scikit-learn predicts
        if p.keep == "faster":
            batch = trainer.sample_input(p.batch_size)
            timed = {f: measure_latency(trainer.load_predictor(f), batch, warmup=_WARMUP, repeats=_REPEATS)
                     for f in (converted, base or path)}
            if timed[converted] >= timed[base or path]:
                return base
        self.onnx_ = 1.0
        return converted

    def metrics(self) -> dict[str, float]:
        return {"onnx_runtime": self.onnx_} if hasattr(self, "onnx_") else {}


