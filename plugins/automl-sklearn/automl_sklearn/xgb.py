"""XGBoost's classifier for any class labels (imported only when an ``xgboost`` model is built)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier

__all__ = ["XGBLabelClassifier"]


class XGBLabelClassifier(XGBClassifier):
    """``xgboost.XGBClassifier`` that takes any labels (strings, gaps), as scikit-learn classifiers do.

    XGBoost wants the labels 0..K-1: they are encoded with a ``LabelEncoder`` at fit (the
    ``eval_set`` labels too) and decoded by :meth:`predict`; ``classes_`` holds the original
    labels in the order of ``predict_proba``'s columns, which is what the ONNX converter
    (onnxmltools) writes as the class labels.
    """

    def fit(self, X: Any, y: Any, *, sample_weight: Any = None, **kwargs: Any) -> XGBLabelClassifier:
        # sample_weight named in the signature: scikit-learn's has_fit_parameter looks for it there.
        kwargs["sample_weight"] = sample_weight
        encoder = LabelEncoder().fit(np.asarray(y))
        # XGBClassifier.fit compares the labels with classes_: the encoded ones while fitting.
        self.__dict__.pop("label_encoder_", None)
        if kwargs.get("eval_set"):
            kwargs["eval_set"] = [(Xe, encoder.transform(np.asarray(ye))) for Xe, ye in kwargs["eval_set"]]
        super().fit(X, encoder.transform(np.asarray(y)), **kwargs)
        self.label_encoder_ = encoder
        return self

    @property
    def classes_(self) -> np.ndarray:
        encoder = self.__dict__.get("label_encoder_")
        return encoder.classes_ if encoder is not None else np.arange(self.n_classes_)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        encoded = np.asarray(super().predict(X, **kwargs)).astype(int)
        encoder = self.__dict__.get("label_encoder_")
        return encoder.inverse_transform(encoded) if encoder is not None else encoded
