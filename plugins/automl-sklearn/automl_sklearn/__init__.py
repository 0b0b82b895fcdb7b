"""scikit-learn trainer and data sets for automl (registered through the ``automl`` entry point)."""

from automl_sklearn.trainer import SklearnTrainer

__all__ = ["SklearnTrainer"]
