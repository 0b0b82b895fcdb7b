"""scikit-learn trainer and data sets for automl (registered through the ``automl`` entry point)."""

from typing import Any

from automl_sklearn.models import ENSEMBLES, MISSING, MODELS
from automl_sklearn.trainer import SklearnTrainer

__all__ = ["ENSEMBLES", "MISSING", "MODELS", "SklearnTrainer", "load_model", "load_predictor"]


def __getattr__(name: str) -> Any:
    # load_model / load_predictor need scikit-learn: imported on first use, not when the plugin loads.
    if name in ("load_model", "load_predictor"):
        from automl_sklearn import export

        return getattr(export, name)
    raise AttributeError(f"module 'automl_sklearn' has no attribute {name!r}")
