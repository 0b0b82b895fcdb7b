"""onnx: scikit-learn pipelines converted with skl2onnx, kept where faster; fewer trees on demand."""

from __future__ import annotations

from pathlib import Path

import pytest
from automl_compress import OnnxCompressor
from automl_sklearn.trainer import SklearnTrainer

from automl.plugin import Splits, TrialContext, compress


def fitted(digits: Splits, tmp_path: Path, config: dict) -> SklearnTrainer:
    trainer = SklearnTrainer(config, {}, TrialContext("classification", 0, digits, tmp_path))
    trainer.fit_step(1)
    return trainer


def test_a_forest_converted_always_keeps_the_fraction_of_trees_asked(digits: Splits, tmp_path: Path) -> None:
    trainer = fitted(digits, tmp_path, {"model": "forest", "n_estimators": 20, "max_depth": 6})
    whole = OnnxCompressor({"keep": "always"}, trainer.context)
    full = whole.compress_artifact(trainer, trainer.export(tmp_path))
    assert full is not None and full.suffix == ".onnx" and whole.metrics() == {"onnx_runtime": 1.0}
    full_size = full.stat().st_size
    half = OnnxCompressor({"keep": "always", "trees": 0.5}, trainer.context)
    artifact, metrics = compress(trainer, [("onnx", half)], tmp_path, test=True)
    assert artifact.suffix == ".onnx"
    assert artifact.stat().st_size < 0.6 * full_size  # ten trees of the same depth instead of twenty
    assert len(trainer.pipeline_.steps[-1][1].estimators_) == 20  # the trial's own pipeline is untouched
    assert metrics["accuracy"] == trainer.evaluate_artifact(artifact)["accuracy"]
    assert metrics["onnx_runtime"] == 1.0


def test_a_pipeline_skl2onnx_cannot_convert_keeps_its_skops_file(digits: Splits, tmp_path: Path) -> None:
    trainer = fitted(digits, tmp_path, {"model": "hgb", "max_iter": 5})
    compressor = OnnxCompressor({"keep": "always"}, trainer.context)
    artifact, metrics = compress(trainer, [("onnx", compressor)], tmp_path, test=False)
    assert artifact.suffix == ".skops"
    assert metrics["onnx_runtime"] == 0.0


@pytest.mark.parametrize("model", [{"model": "linear"}, {"model": "knn", "n_neighbors": 3}])
def test_keep_faster_reports_which_file_it_kept(digits: Splits, tmp_path: Path, model: dict) -> None:
    trainer = fitted(digits, tmp_path, model)
    compressor = OnnxCompressor({}, trainer.context)
    result = compressor.compress_artifact(trainer, trainer.export(tmp_path))
    # Which file is faster is measured, not assumed; the metric says which one the trial kept.
    assert compressor.metrics()["onnx_runtime"] == (1.0 if result is not None else 0.0)
    assert result is None or result.suffix == ".onnx"
