"""Preprocessing as part of the pipeline: imputation, scaling, one-hot encoding, feature selection.

Everything here is an unfitted scikit-learn transformer placed in front of the model, so
it is fitted on the training rows (or training folds) only and never sees validation or
test rows. Keys (searched or fixed):

- ``impute``: ``mean`` (default), ``median`` or ``most_frequent`` for numeric (and date) columns;
  a missing value of a string column is a category of its own.
- ``missing_indicator``: ``true`` adds a 0/1 column per numeric column that had missing values.
- ``scale``: ``standard`` (default), ``minmax``, ``robust``, ``maxabs`` or ``none``.
- ``select``: ``none`` (default), ``univariate`` (ANOVA F / F-regression) or ``model``
  (importance from a small extra-trees model), keeping ``select_percentile`` percent (default 50).

Column kinds:

- numbers: imputed (``impute``), optionally flagged (``missing_indicator``) and scaled (``scale``);
- strings (categories, with or without missing values): one-hot encoded, a missing value being
  a category of its own; a column with more than :data:`MAX_CATEGORIES` distinct values keeps
  its ``MAX_CATEGORIES - 1`` most frequent ones and one column for all the others (scikit-learn's
  ``max_categories``); a category never seen in training encodes as all zeros;
- booleans: one 0/1 column;
- dates and datetimes (datetime64, or strings pandas can parse): year, month, day, weekday and
  days since 1970 (:class:`DateFeatures`), then imputed and scaled like numbers.

Memory: the encoded matrix is dense float64 with at most ``numeric (x2 with missing_indicator)
+ MAX_CATEGORIES x string + boolean + 5 x date`` columns, so ``8 x rows x that`` bytes: a string
column with thousands of values adds 32 columns, never thousands. ID-like and free-text columns
never get here: :func:`automl.data.check_table` drops them.

ONNX: skl2onnx converts all of this except :class:`DateFeatures` (``export: auto`` falls back
to skops for a table with dates; ``export: onnx`` fails the trial with the reason).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import SelectFromModel, SelectPercentile, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler

__all__ = [
    "MAX_CATEGORIES", "PREP_KEYS", "SCALERS", "SELECTORS", "DateFeatures", "check_prep", "date_columns",
    "numeric_columns", "preprocessor",
]

#: One-hot columns per string column at most (the least frequent values share the last one).
MAX_CATEGORIES = 32

SCALERS: dict[str, type[BaseEstimator] | None] = {
    "standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler, "maxabs": MaxAbsScaler, "none": None,
}
SELECTORS = ("none", "univariate", "model")
IMPUTE = ("mean", "median", "most_frequent")
#: Keys this module reads (the trainer keeps them away from the estimators).
PREP_KEYS = ("impute", "missing_indicator", "scale", "select", "select_percentile")


def numeric_columns(X: pd.DataFrame) -> list[str]:
    """Columns treated as numbers (booleans count as categories)."""
    return [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]


def date_columns(X: pd.DataFrame) -> list[str]:
    """Date and datetime columns (datetime64, with or without a time zone)."""
    return [c for c in X.columns if pd.api.types.is_datetime64_any_dtype(X[c])]


class DateFeatures(TransformerMixin, BaseEstimator):
    """Date columns to numbers: year, month, day, weekday and days since 1970 for each (missing stays missing).

    Takes datetime64 columns or strings pandas parses as dates (what a deployed model may be
    given straight from a CSV).
    """

    #: The features of one date column, in output order.
    PARTS = ("year", "month", "day", "weekday", "days")

    def fit(self, X: Any, y: Any = None) -> DateFeatures:
        self.n_features_in_ = np.asarray(X).shape[1] if not hasattr(X, "columns") else X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = X if hasattr(X, "columns") else pd.DataFrame(np.asarray(X, dtype=object))
        out = []
        for column in frame.columns:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mixed formats are parsed one by one
                dates = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True)
            days = (dates - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
            out += [dates.dt.year, dates.dt.month, dates.dt.day, dates.dt.weekday, days]
        return np.column_stack([np.asarray(part, dtype=np.float64) for part in out])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = list(input_features) if input_features is not None else [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([f"{name}_{part}" for name in names for part in self.PARTS], dtype=object)


def _value(config: Mapping[str, Any], fixed: Mapping[str, Any], key: str, default: Any) -> Any:
    return config.get(key, fixed.get(key, default))


def preprocessor(
    X: pd.DataFrame, task: str, config: Mapping[str, Any], fixed: Mapping[str, Any], *, seed: int = 0
) -> Pipeline:
    """The unfitted preprocessing pipeline for ``X``'s columns under ``config`` / ``fixed`` keys."""
    numeric = numeric_columns(X)
    flags = [c for c in X.columns if pd.api.types.is_bool_dtype(X[c])]
    dates = date_columns(X)
    other = [c for c in X.columns if c not in numeric and c not in flags and c not in dates]
    scaler = SCALERS[str(_value(config, fixed, "scale", "standard"))]

    def number_steps() -> list[tuple[str, Any]]:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(
            strategy=str(_value(config, fixed, "impute", "mean")),
            add_indicator=bool(_value(config, fixed, "missing_indicator", False)),
            # Keep all-empty columns (as zeros) so a column empty in one training fold does not change the width.
            keep_empty_features=True,
        ))]
        if scaler is not None:
            steps.append(("scale", scaler()))
        return steps

    num_steps = number_steps()
    columns: list[tuple[str, Any, list[Any]]] = []
    if numeric and not other and not flags and not dates:
        # All numeric: select by position, so the fitted pipeline also takes a plain matrix and
        # exports to ONNX with one input tensor (stacking and voting over per-member pipelines need it).
        columns.append(("num", Pipeline(num_steps), list(range(len(numeric)))))
    elif numeric:
        columns.append(("num", Pipeline(num_steps), numeric))
    if other:
        # No imputer: a missing value is a category of its own, which skl2onnx converts (its imputer
        # converter refuses NaN as the missing value of a string column).
        columns.append(("cat", OneHotEncoder(handle_unknown="ignore", max_categories=MAX_CATEGORIES,
                                             sparse_output=False), other))
    if dates:
        columns.append(("date", Pipeline([("parts", DateFeatures()), *number_steps()]), dates))
    if flags:
        # SimpleImputer refuses bool columns (and a bool column holds no missing value): encode directly.
        columns.append(("flag", OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop="if_binary"), flags))
    steps: list[tuple[str, Any]] = [("columns", ColumnTransformer(columns))]
    select = str(_value(config, fixed, "select", "none"))
    percentile = float(_value(config, fixed, "select_percentile", 50))
    if select == "univariate":
        steps.append(("select", SelectPercentile(f_classif if task == "classification" else f_regression,
                                                 percentile=percentile)))
    elif select == "model":
        forest = (ExtraTreesClassifier if task == "classification" else ExtraTreesRegressor)(
            n_estimators=50, random_state=seed, n_jobs=1)
        # SelectFromModel keeps a count of features, not a percentile: a callable turns the
        # percentile into a count once the width after encoding is known.
        steps.append(("select", SelectFromModel(forest, threshold=-math.inf, max_features=_KeepPercent(percentile))))
    return Pipeline(steps)


class _KeepPercent:
    """``max_features`` callable for SelectFromModel: ``percent`` % of the columns, at least one.

    A small class rather than a lambda so the fitted pipeline can be saved with skops.
    """

    def __init__(self, percent: float) -> None:
        self.percent = percent

    def __call__(self, X: Any) -> int:
        return max(1, int(math.ceil(X.shape[1] * self.percent / 100.0)))


def check_prep(values: Mapping[str, list[Any]]) -> None:
    """Check the values the preprocessing keys may take (``{key: [values...]}``) before any trial.

    Raises:
        ValueError: Naming the key, the value and the valid ones.
    """
    for value in values.get("impute", []):
        if value not in IMPUTE:
            raise ValueError(f"impute: {value!r} is not an imputation strategy; use one of {', '.join(IMPUTE)}")
    for value in values.get("scale", []):
        if value not in SCALERS:
            raise ValueError(f"scale: {value!r} is not a scaler; use one of {', '.join(SCALERS)}")
    for value in values.get("select", []):
        if value not in SELECTORS:
            raise ValueError(f"select: {value!r} is not a feature selection; use one of {', '.join(SELECTORS)}")
    for value in values.get("missing_indicator", []):
        if not isinstance(value, bool):
            raise ValueError(f"missing_indicator: {value!r} must be true or false")
    for value in values.get("select_percentile", []):
        # scikit-learn's own parameter validation says what a percentile may be.
        SelectPercentile(percentile=value)._validate_params()
