"""scikit-learn trainer and data sets for automl (registered through the ``automl`` entry point)."""

from automl_sklearn.export import load_model, load_predictor
from automl_sklearn.models import ENSEMBLES, MISSING, MODELS
from automl_sklearn.trainer import SklearnTrainer

__all__ = ["ENSEMBLES", "MISSING", "MODELS", "SklearnTrainer", "load_model", "load_predictor"]
