"""Tables, splits and the built-in CSV and Parquet sources.

Data reaches trainers as pandas frames: every row of a source as a :class:`Table`, cut
by the engine into train, validation and test parts (stratified for classification)
with the spec's seed, so every trial and every trainer sees the same split. With
``data.folds: K`` the split also says that trainers able to cross-validate should do K-fold
cross-validation over the train and validation parts together (with :attr:`Splits.seed`,
so every trial gets the same folds); a trainer that does not still has a real hold-out.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.column_kinds import HIGH_CARDINALITY as HIGH_CARDINALITY  # where it was first defined
from automl.column_kinds import ColumnCounts, decide_kind, reading_note
from automl.errors import DataError

__all__ = [
    "DataSummary", "Part", "Splits", "Table", "check_csv", "check_parquet", "check_table", "load_csv", "load_parquet",
    "split", "split_sizes", "summarize", "tidy_columns",
]


@dataclass
class Table:
    """Features ``X`` and target ``y`` of a whole data source.

    Attributes:
        notes: What reading and checking changed in the columns (a date column parsed, an ID
            column dropped...), one line each; ``automl validate`` prints them.
        image_shape: ``(channels, height, width)`` when every row is an image's pixels, channels
            first, then rows, then columns (an image source sets it); None for other tables.
    """

    X: pd.DataFrame
    y: pd.Series
    name: str = ""
    notes: list[str] = field(default_factory=list)
    image_shape: tuple[int, int, int] | None = None


@dataclass
class Part:
    X: pd.DataFrame
    y: pd.Series

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    """The train, validation and test parts of one table."""

    train: Part
    valid: Part
    test: Part
    task: str
    name: str = ""
    #: Cross-validation folds over train + valid (0: the hold-out ``valid`` part is the validation).
    folds: int = 0
    #: The seed the split was made with; the seed of the folds too.
    seed: int = 0
    #: Rounds of the ``folds`` (repeated cross-validation, each round shuffled anew); 1 under the validation split.
    repeats: int = 1
    #: ``(channels, height, width)`` of a row when the table's rows are images (:attr:`Table.image_shape`).
    image_shape: tuple[int, int, int] | None = None

    @property
    def classes(self) -> list[Any]:
        return sorted(pd.unique(self.train.y).tolist()) if self.task == "classification" else []


@dataclass(frozen=True)
class DataSummary:
    """What a trainer's default space may depend on, computed once from the whole table at plan time.

    Attributes:
        rows: Rows of the table (all of them, before the train / validation / test split).
        columns: Feature columns (the target left out, dropped columns left out).
        numeric: Numeric feature columns (booleans excluded).
        categorical: Booleans and string columns with at most :data:`HIGH_CARDINALITY` distinct values.
        high_cardinality: String columns with more distinct values.
        datetime: Date and datetime columns.
        classes: Distinct target values for classification; 0 for regression.
        image_shape: ``(channels, height, width)`` of a row when the rows are images (:attr:`Table.image_shape`).
    """

    rows: int = 0
    columns: int = 0
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    high_cardinality: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    classes: int = 0
    image_shape: tuple[int, int, int] | None = None


def column_kind(series: pd.Series) -> str:
    """``numeric``, ``flag`` (boolean), ``datetime``, ``id``, ``text``, ``high_cardinality`` or ``categorical``:
    the kind :func:`automl.column_kinds.decide_kind` gives the column's values as they are.

    ``id``: a unique value in every row of a table of at least 20 rows, for a string column, or
    an integer column whose name reads as an ID (``id``, ``user_id``, ``customerId``, ``Unnamed: 0``).
    ``text``: free text, strings of three words or more on average, more than half of them distinct.
    """
    return decide_kind(str(series.name), ColumnCounts.of(series, reading=False), reading=False)[0]


def check_table(table: Table, task: str) -> None:
    """Refuse data a task cannot learn from, with the reason; drop the columns no model should learn from.

    ID-like columns (a unique value per row, see :func:`column_kind`) and free-text columns are
    dropped from ``table.X``, each with a line in ``table.notes``.

    Raises:
        DataError: Too few rows, no feature column, duplicate column names, an entirely empty
            column, a missing target value, a single class, or a non-numeric regression target.
    """
    dup = sorted({str(c) for c in table.X.columns[table.X.columns.duplicated()]})
    if dup:
        raise DataError(f"data set {table.name!r} has duplicate column names {dup}: rename them so each is unique")
    if table.X.shape[1] == 0:
        raise DataError(f"data set {table.name!r} has no feature column: only the target {str(table.y.name)!r}")
    if len(table.y) < 10:
        raise DataError(f"data set {table.name!r} has {len(table.y)} rows; at least 10 are needed")
    empty = [c for c in table.X.columns if table.X[c].isna().all()]
    if empty:
        raise DataError(f"column(s) {empty} of {table.name!r} are entirely empty: drop them from the data")
    if table.y.isna().any():
        raise DataError(f"the target of {table.name!r} has {int(table.y.isna().sum())} missing values")
    if task == "classification":
        counts = table.y.value_counts()
        if len(counts) < 2:
            raise DataError(f"the target of {table.name!r} has a single class ({counts.index[0]!r}): nothing to classify")
    elif not pd.api.types.is_numeric_dtype(table.y):
        raise DataError(
            f"task is regression but the target of {table.name!r} is not numeric "
            f"(dtype {table.y.dtype}); use task: classification or a numeric target"
        )
    dropped: list[str] = []
    for column in table.X.columns:
        kind = column_kind(table.X[column])
        if kind == "id":
            dropped.append(column)
            table.notes.append(f"column {column!r}: a unique value in every row (an ID): dropped")
        elif kind == "text":
            dropped.append(column)
            table.notes.append(f"column {column!r}: free text (sentences, mostly distinct): dropped")
        elif kind == "high_cardinality":
            table.notes.append(f"column {column!r}: {table.X[column].nunique()} distinct values (high cardinality)")
    if dropped:
        if len(dropped) == table.X.shape[1]:
            raise DataError(f"data set {table.name!r} has no usable feature column: {dropped} are IDs or free text")
        table.X = table.X.drop(columns=dropped)


def summarize(table: Table, task: str) -> DataSummary:
    """The :class:`DataSummary` of a table :func:`check_table` passed (cheap: a ``nunique`` per string column)."""
    kinds: dict[str, list[str]] = {}
    for column in table.X.columns:
        kind = column_kind(table.X[column])
        kinds.setdefault("categorical" if kind == "flag" else kind, []).append(str(column))
    return DataSummary(
        rows=len(table.y), columns=table.X.shape[1], numeric=tuple(kinds.get("numeric", ())),
        categorical=tuple(kinds.get("categorical", ())), high_cardinality=tuple(kinds.get("high_cardinality", ())),
        datetime=tuple(kinds.get("datetime", ())),
        classes=int(table.y.nunique()) if task == "classification" else 0, image_shape=table.image_shape,
    )


def tidy_columns(frame: pd.DataFrame) -> list[str]:
    """Give the string columns of a file their real types, in place; return one note per change.

    - dates and datetimes written as text (``2024-01-31``, ``2024/01/31 10:00``) become datetime64;
    - booleans with missing values (``True``, ``False``, empty) become 1.0 / 0.0 / missing;
    - numbers written as text with a few junk values (``?``, ``n/a``: at most 5% of the rows and
      3 distinct junk strings) become numbers, the junk read as missing.

    ``yes`` / ``no`` and other words stay strings (categories).
    """
    notes: list[str] = []
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        counts = ColumnCounts.of(series, distinct=False)
        how = decide_kind(str(column), counts, reading=True)[1]
        if how is None:
            continue
        note = reading_note(column, how, counts)
        if how == "bools":
            frame[column] = series.map({True: 1.0, False: 0.0}).astype(float)
        elif how == "dates":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "could not infer format": mixed formats are parsed one by one
                parsed = pd.to_datetime(series.astype(object).where(series.notna(), None), errors="coerce",
                                        format="mixed")
            frame[column] = parsed
            bad = int(parsed.isna().sum() - series.isna().sum())
            note += f" ({bad} unreadable read as missing)" if bad else ""
        else:
            frame[column] = pd.to_numeric(series.where(~series.isin(list(counts.junk))), errors="coerce")
        notes.append(note)
    return notes


def split(table: Table, task: str, *, valid: float, test: float, seed: int, folds: int = 0,
          repeats: int = 1) -> Splits:
    """Cut ``table`` into train / validation / test parts.

    Classification splits are stratified: each class is shuffled and cut in the same
    proportions, with at least one row of each class in train. Written here rather than
    taken from scikit-learn so that the core does not depend on it.

    Raises:
        DataError: When a part would be empty, or ``folds`` exceeds the rows of a class
            (of all rows, for regression) left for cross-validation.
    """
    rng = np.random.default_rng(seed)
    n = len(table.y)
    if task == "classification":
        groups = [np.flatnonzero((table.y == c).to_numpy()) for c in pd.unique(table.y)]
    else:
        groups = [np.arange(n)]
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for idx in groups:
        idx = rng.permutation(idx)
        n_test, n_valid, _ = split_sizes(len(idx), valid, test)
        parts["test"].append(idx[:n_test])
        parts["valid"].append(idx[n_test : n_test + n_valid])
        parts["train"].append(idx[n_test + n_valid :])
    made = {}
    for key, chunks in parts.items():
        rows = np.sort(np.concatenate(chunks)) if chunks else np.array([], dtype=int)
        if len(rows) == 0 and key != "test":
            raise DataError(f"the {key} split of {table.name!r} is empty: use more data or a larger fraction")
        made[key] = Part(table.X.iloc[rows].reset_index(drop=True), table.y.iloc[rows].reset_index(drop=True))
    if folds:
        _check_folds(pd.concat([made["train"].y, made["valid"].y]), task, folds, table.name)
    return Splits(made["train"], made["valid"], made["test"], task=task, name=table.name, folds=folds, seed=seed,
                  repeats=max(1, int(repeats)) if folds else 1, image_shape=table.image_shape)


def split_sizes(n: int, valid: float, test: float) -> tuple[int, int, int]:
    """Rows of a class of ``n`` rows (of all rows, for regression) that :func:`split` puts in test, validation
    and train."""
    n_test, n_valid = int(round(n * test)), int(round(n * valid))
    if n - n_test - n_valid < 1:
        n_test = n_valid = 0 if n < 3 else 1
    return n_test, n_valid, n - n_test - n_valid


def _check_folds(y: pd.Series, task: str, folds: int, name: str) -> None:
    """Every fold needs rows of every class (stratified K-fold needs K rows of each class)."""
    if task == "classification":
        counts = y.value_counts()
        small = counts[counts < folds]
        if len(small):
            shown = ", ".join(f"{label!r}: {n}" for label, n in small.items())
            raise DataError(
                f"data.folds is {folds}, but the rows of {name!r} left for cross-validation (all but the test "
                f"part) hold fewer than {folds} rows of class(es) {shown}; use folds <= {int(counts.min())} "
                f"or add rows of those classes"
            )
    elif len(y) < folds:
        raise DataError(f"data.folds is {folds}, but {name!r} has only {len(y)} rows left for cross-validation")


def check_csv(options: Mapping[str, Any]) -> None:
    """Check a CSV source without holding it: the header (read here, before pandas renames a duplicate ``a`` to
    ``a.1``) has unique names, the target and another column; then, read in chunks
    (:func:`automl.data_profile.profile_csv`), the target has a value in every row and more than one value."""
    from automl.data_profile import profile_csv

    path = Path(str(options.get("path", "")))
    target = options.get("target")
    if not path.is_file():
        raise ValueError(f"CSV file {str(path)!r} does not exist")
    if not target:
        raise ValueError("a CSV source needs `target:` naming its target column")
    try:
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
    except UnicodeDecodeError as exc:
        raise ValueError(f"CSV file {str(path)!r} is not text (UTF-8): {exc.reason} at byte {exc.start}") from exc
    where = f"CSV file {str(path)!r}"
    if not header:
        raise ValueError(f"{where} is empty: it needs a header row naming the columns")
    _unique_columns(header, where)
    if target not in header:
        raise ValueError(f"{where} has no column {target!r}; its columns are {header}")
    if len(header) == 1:
        raise ValueError(f"{where} has no feature column: its only column is the target {target!r}")
    try:
        profile = profile_csv(options)
    except DataError as exc:
        raise ValueError(str(exc)) from exc
    if profile.target_missing:
        raise ValueError(f"{where}: the target column {target!r} has no value in {profile.target_missing} of "
                         f"{profile.rows} rows")
    if profile.classes is not None and len(profile.classes) == 1:
        raise ValueError(f"{where}: the target column {target!r} is constant ({next(iter(profile.classes))!r} "
                         "in every row: a single class, one value): nothing to learn")


def load_csv(options: Mapping[str, Any]) -> Table:
    """Read a CSV file with a header row; ``options``: ``path``, ``target``."""
    check_csv(options)
    path = Path(str(options["path"]))
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV file {str(path)!r}: {exc}") from exc
    return _table(frame, str(options["target"]), path.name)


def _unique_columns(names: list[str], where: str) -> None:
    """Refuse a repeated column name, naming each with its positions (1-based, as a spreadsheet counts)."""
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(position)
    dup = {name: at for name, at in seen.items() if len(at) > 1}
    if dup:
        shown = "; ".join(f"{name!r} at columns {', '.join(map(str, at))}" for name, at in dup.items())
        raise ValueError(f"{where} has duplicate column names: {shown} (pandas would rename the second to "
                         f"{next(iter(dup)) + '.1'!r}); rename them so each is unique")


def _table(frame: pd.DataFrame, target: str, name: str) -> Table:
    X = frame.drop(columns=[target])
    return Table(X, frame[target], name=name, notes=tidy_columns(X))


def check_parquet(options: Mapping[str, Any]) -> None:
    """Check a Parquet source from its schema only: the file exists and has the target column."""
    path = Path(str(options.get("path", "")))
    target = options.get("target")
    if not path.is_file():
        raise ValueError(f"Parquet file {str(path)!r} does not exist")
    if not target:
        raise ValueError("a Parquet source needs `target:` naming its target column")
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError("reading Parquet files needs pyarrow: pip install pyarrow") from exc
    try:
        columns = list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises its own error types for files that are not Parquet
        raise ValueError(f"cannot read Parquet file {str(path)!r}: {exc}") from exc
    where = f"Parquet file {str(path)!r}"
    _unique_columns(columns, where)
    if target not in columns:
        raise ValueError(f"{where} has no column {target!r}; its columns are {columns}")
    if len(columns) == 1:
        raise ValueError(f"{where} has no feature column: its only column is the target {target!r}")
    # The target column alone (Parquet stores columns apart): its missing values and distinct values.
    y = pq.read_table(path, columns=[str(target)]).column(0)
    if y.null_count:
        raise ValueError(f"{where}: the target column {target!r} has no value in {y.null_count} of {len(y)} rows")
    if len(y) and len(y.unique()) == 1:
        raise ValueError(f"{where}: the target column {target!r} is constant ({y[0].as_py()!r} in every row: a "
                         "single class, one value): nothing to learn")


def load_parquet(options: Mapping[str, Any]) -> Table:
    """Read a Parquet file; ``options``: ``path``, ``target``."""
    check_parquet(options)
    path = Path(str(options["path"]))
    frame = pd.read_parquet(path)
    return _table(frame, str(options["target"]), path.name)
