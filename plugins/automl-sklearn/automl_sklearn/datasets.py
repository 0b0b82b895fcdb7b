"""The data sets that ship inside scikit-learn (nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import pandas as pd

from automl.plugin import DatasetSpec, Table

#: name -> (its ``sklearn.datasets`` loader, task, description); scikit-learn is imported when one is loaded.
_BUNDLED: dict[str, tuple[str, str, str]] = {
    "iris": ("load_iris", "classification", "3 iris species, 150 rows, 4 features"),
    "wine": ("load_wine", "classification", "3 wine cultivars, 178 rows, 13 features"),
    "breast_cancer": ("load_breast_cancer", "classification", "malignant/benign, 569 rows, 30 features"),
    "digits": ("load_digits", "classification", "8x8 handwritten digits, 1797 rows, 64 features"),
    "diabetes": ("load_diabetes", "regression", "disease progression, 442 rows, 10 features"),
}
#: name -> (channels, height, width) of a row, for the data sets whose rows are images (pixels row by row).
_IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {"digits": (1, 8, 8)}


def load(name: str, options: Mapping[str, Any]) -> Table:
    from sklearn import datasets

    loader = getattr(datasets, _BUNDLED[name][0])
    bunch = loader(as_frame=True)
    X = bunch.data if isinstance(bunch.data, pd.DataFrame) else pd.DataFrame(bunch.data)
    X.columns = [str(c) for c in X.columns]
    return Table(X, pd.Series(bunch.target, name="target"), name=name, image_shape=_IMAGE_SHAPES.get(name))


def dataset_specs() -> list[DatasetSpec]:
    return [
        DatasetSpec(name, partial(load, name), task=task, description=f"scikit-learn bundled: {text}")  # type: ignore[arg-type]
        for name, (_, task, text) in _BUNDLED.items()
    ]
