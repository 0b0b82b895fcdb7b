"""What validate and planning need of a CSV or Parquet file, read in chunks: the driver never holds the table.

``automl validate`` and the plan (the trainer's default space depends on the data's column kinds,
``data.folds: auto`` on its size and classes) need the header, each column's kind, the row count and
the target's classes, not the rows. :func:`profile_csv` reads the file :data:`CHUNK_ROWS` rows at a
time with pandas (``read_csv(chunksize=...)``; :func:`profile_parquet`: pyarrow's record batches) and
keeps per column only counts, a capped set of junk values and, where an ID may hide (string columns,
integer columns named like IDs), 64-bit hashes of the distinct values (8 bytes a distinct value, not the
strings): :class:`automl.column_kinds.ColumnCounts`,
and :func:`automl.column_kinds.decide_kind` gives each column the kind and the conversion that
:func:`automl.data.tidy_columns` and :func:`automl.data.column_kind` give it from the same counts, and
:meth:`Profile.check` refuses what :func:`automl.data.check_table` refuses, so ``validate`` reports
the same notes and errors as a search, which reads the rows it trains on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from automl.column_kinds import ColumnCounts, decide_kind, reading_note
from automl.data import DataSummary, split_sizes
from automl.errors import DataError

__all__ = ["CHUNK_ROWS", "MAX_CLASSES", "ColumnStats", "Profile", "profile_csv", "profile_of", "profile_parquet"]

#: Rows read at a time (20 columns of numbers: about 16 MB a chunk).
CHUNK_ROWS = 100_000
#: Distinct target values counted one by one; a target with more (a regression target) is only counted.
MAX_CLASSES = 10_000
#: One column's counts over every chunk read so far (the name this module gave them first).
ColumnStats = ColumnCounts


@dataclass
class Profile:
    """A CSV or Parquet file as validate and planning see it, read in chunks.

    Attributes:
        name: The file's name (the data set's name in messages).
        header: Every column name, in file order.
        target: The target column.
        chunk_rows: Rows read at a time.
        rows: Rows of the file.
        chunks: Chunks read (1 for a file of at most :data:`CHUNK_ROWS` rows).
        kinds: Feature column -> kind (``numeric``, ``flag``, ``datetime``, ``id``, ``text``,
            ``high_cardinality``, ``categorical``).
        empty: Feature columns with no value at all.
        distinct: Distinct values of the string columns.
        classes: Target value -> rows; None when the target has more than :data:`MAX_CLASSES` values.
        target_missing: Rows without a target value.
        target_numeric: Whether pandas reads the whole target column as numbers.
        notes: What reading changed, as :attr:`automl.data.Table.notes` says it.
    """

    name: str
    header: list[str]
    target: str
    chunk_rows: int = CHUNK_ROWS
    rows: int = 0
    chunks: int = 0
    kinds: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    distinct: dict[str, int] = field(default_factory=dict)
    classes: dict[Any, int] | None = field(default_factory=dict)
    target_missing: int = 0
    target_numeric: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """Feature columns a trainer gets (IDs and free text dropped)."""
        return [c for c, kind in self.kinds.items() if kind not in ("id", "text")]

    def check(self, task: str) -> None:
        """Refuse what :func:`automl.data.check_table` refuses, with its messages.

        Raises:
            DataError: Too few rows, no feature column, an empty column, a missing target value,
                a single class, a non-numeric regression target, no usable feature column.
        """
        if not self.kinds:
            raise DataError(f"data set {self.name!r} has no feature column: only the target {self.target!r}")
        if self.rows < 10:
            raise DataError(f"data set {self.name!r} has {self.rows} rows; at least 10 are needed")
        if self.empty:
            raise DataError(f"column(s) {self.empty} of {self.name!r} are entirely empty: drop them from the data")
        if self.target_missing:
            raise DataError(f"the target of {self.name!r} has {self.target_missing} missing values")
        if task == "classification":
            if self.classes is not None and len(self.classes) < 2:
                only = next(iter(self.classes), None)
                raise DataError(f"the target of {self.name!r} has a single class ({only!r}): nothing to classify")
        elif not self.target_numeric:
            raise DataError(f"task is regression but the target of {self.name!r} is not numeric; use task: "
                            "classification or a numeric target")
        if not self.features:
            raise DataError(f"data set {self.name!r} has no usable feature column: {list(self.kinds)} are IDs or "
                            "free text")

    def check_split(self, task: str, *, valid: float, test: float, folds: int) -> None:
        """Refuse a split :func:`automl.data.split` would refuse (an empty part, more folds than rows of a class).

        Raises:
            DataError: With split's message.
        """
        counts = list(self.classes.values()) if task == "classification" and self.classes else [self.rows]
        sizes = [split_sizes(n, valid, test) for n in counts]
        for index, part in ((2, "train"), (1, "valid")):
            if not sum(s[index] for s in sizes):
                raise DataError(f"the {part} split of {self.name!r} is empty: use more data or a larger fraction")
        if folds:
            left = [s[1] + s[2] for s in sizes]
            if min(left) < folds and task == "classification" and self.classes:
                small = [(label, n) for label, n in zip(self.classes, left, strict=True) if n < folds]
                shown = ", ".join(f"{label!r}: {n}" for label, n in small)
                raise DataError(f"data.folds is {folds}, but the rows of {self.name!r} left for cross-validation (all "
                                f"but the test part) hold fewer than {folds} rows of class(es) {shown}; use folds <= "
                                f"{min(left)} or add rows of those classes")  # as automl.data.split words it
            if min(left) < folds:
                raise DataError(f"data.folds is {folds}, but {self.name!r} has only {min(left)} rows left for "
                                "cross-validation")

    def summary(self, task: str) -> DataSummary:
        """The :class:`~automl.data.DataSummary` :func:`automl.data.summarize` gives the checked table."""
        kinds: dict[str, list[str]] = {}
        for column in self.features:
            kind = self.kinds[column]
            kinds.setdefault("categorical" if kind == "flag" else kind, []).append(column)
        return DataSummary(
            rows=self.rows, columns=len(self.features), numeric=tuple(kinds.get("numeric", ())),
            categorical=tuple(kinds.get("categorical", ())), high_cardinality=tuple(kinds.get("high_cardinality", ())),
            datetime=tuple(kinds.get("datetime", ())),
            classes=len(self.classes or {}) if task == "classification" else 0,
        )


_profiles: dict[tuple[str, int, int, str], Profile] = {}


def profile_csv(options: Mapping[str, Any], *, chunk_rows: int | None = None) -> Profile:
    """The :class:`Profile` of a CSV source (``options``: ``path``, ``target``), read ``chunk_rows`` rows (default
    :data:`CHUNK_ROWS`) at a time;
    kept for the file as it is (its size and modification time), so validate and the plan read it once.

    Raises:
        DataError: The file cannot be parsed.
    """
    path = Path(str(options["path"]))

    def chunks(rows: int) -> Iterator[pd.DataFrame]:
        try:
            yield from pd.read_csv(path, chunksize=rows)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read CSV file {str(path)!r}: {exc}") from exc

    def text(columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
        yield from pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=True, chunksize=rows)

    return _profile(path, str(options["target"]), lambda: list(pd.read_csv(path, nrows=0).columns), chunks,
                    chunk_rows, text)


def profile_parquet(options: Mapping[str, Any], *, chunk_rows: int | None = None) -> Profile:
    """The :class:`Profile` of a Parquet source, as :func:`profile_csv` (record batches of ``chunk_rows`` rows,
    each converted by pyarrow as :func:`pandas.read_parquet` converts the whole file); an index pandas stored as
    a column is not a feature, as in the loaded table.

    Raises:
        DataError: The file cannot be read.
    """
    import pyarrow.parquet as pq

    path = Path(str(options["path"]))

    def header() -> list[str]:
        schema = pq.read_schema(path)
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        return [name for name in schema.names if name not in index]

    def chunks(rows: int) -> Iterator[pd.DataFrame]:
        try:
            with pq.ParquetFile(path) as f:
                for batch in f.iter_batches(batch_size=rows):
                    yield batch.to_pandas()
        except Exception as exc:  # pyarrow raises its own error types for a file it cannot read
            raise DataError(f"cannot read Parquet file {str(path)!r}: {exc}") from exc

    return _profile(path, str(options["target"]), header, chunks, chunk_rows)


def _profile(path: Path, target: str, header: Callable[[], list[str]],
             chunks: Callable[[int], Iterator[pd.DataFrame]], chunk_rows: int | None,
             text: Callable[[list[str], int], Iterator[pd.DataFrame]] | None = None) -> Profile:
    """Read ``chunks(rows)`` into a :class:`Profile`, or give the one kept for the file as it is; ``text(columns,
    rows)`` reads those columns again as text, for columns read as numbers in some chunks and strings in others
    (a CSV's; a Parquet column has one type)."""
    info = path.stat()
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns, target)
    if key in _profiles and (chunk_rows is None or _profiles[key].chunk_rows == chunk_rows):
        return _profiles[key]
    names = header()
    profile = Profile(path.name, names, target, chunk_rows=chunk_rows or CHUNK_ROWS)
    stats = {c: ColumnCounts() for c in names if c != target}
    for chunk in chunks(profile.chunk_rows):
        _add_chunk(profile, stats, chunk)
    mixed = [c for c, s in stats.items() if s.numeric_chunks and s.other_chunks]
    if mixed and text is not None:  # read once more, those columns alone, as text
        for column in mixed:
            stats[column].forget_text()
        for chunk in text(mixed, profile.chunk_rows):
            for column in mixed:
                stats[column].add_text(chunk[column])
    _finish(profile, stats)
    _profiles.clear()  # one file at a time: a profile holds the hashes of its ID columns
    _profiles[key] = profile
    return profile


def _add_chunk(profile: Profile, stats: dict[str, ColumnCounts], chunk: pd.DataFrame) -> None:
    profile.rows += len(chunk)
    profile.chunks += 1
    for column, s in stats.items():
        s.add(chunk[column])
    y = chunk[profile.target]
    profile.target_missing += int(y.isna().sum())
    profile.target_numeric = profile.target_numeric and pd.api.types.is_numeric_dtype(y) \
        and not pd.api.types.is_bool_dtype(y)
    if profile.classes is not None:
        counts: Counter[Any] = Counter(profile.classes)
        counts.update(y.dropna().value_counts().to_dict())
        profile.classes = dict(counts) if len(counts) <= MAX_CLASSES else None


def _finish(profile: Profile, stats: dict[str, ColumnCounts]) -> None:
    """Each column's kind and notes, in the order a loaded table's notes come (reading, then checking)."""
    checks: list[str] = []
    for column, s in stats.items():
        kind, how = decide_kind(str(column), s, reading=True)
        profile.kinds[str(column)] = kind
        if how:
            profile.notes.append(reading_note(column, how, s))
        if not s.present:
            profile.empty.append(str(column))
        if kind in ("categorical", "high_cardinality", "id", "text"):
            profile.distinct[str(column)] = s.distinct
        if kind == "id":
            checks.append(f"column {column!r}: a unique value in every row (an ID): dropped")
        elif kind == "text":
            checks.append(f"column {column!r}: free text (sentences, mostly distinct): dropped")
        elif kind == "high_cardinality":
            checks.append(f"column {column!r}: {s.distinct} distinct values (high cardinality)")
        s.hashes = []
    profile.notes.extend(checks)
    if profile.classes is not None and profile.target_numeric:
        profile.classes = {k: v for k, v in sorted(profile.classes.items())}


def profile_of(load: Callable[..., Any], options: Mapping[str, Any]) -> Profile | None:
    """The chunked :class:`Profile` of a source the core's CSV or Parquet loader reads; None for other sources (a
    plugin's data set is loaded whole: its loader is all the engine knows of it)."""
    from automl.data import load_csv, load_parquet

    if load is load_csv:
        return profile_csv(options)
    return profile_parquet(options) if load is load_parquet else None
