"""A feature column's kind, decided in one place for a loaded table and for a file read in chunks.

A column's kind (``numeric``, ``flag``, ``datetime``, ``id``, ``text``, ``high_cardinality``,
``categorical``) and how reading a file turns its strings into values (booleans with missing values,
dates, numbers with a few junk strings) follow from a few counts: :class:`ColumnCounts`, counted over a
whole column (:func:`automl.data.column_kind`, :func:`automl.data.tidy_columns`) or summed over a file's
chunks (:mod:`automl.data_profile`). :func:`decide_kind` reads them, so ``automl validate``, which
profiles a file without holding it, and a search, which loads it, give a column the same kind and notes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["HIGH_CARDINALITY", "ColumnCounts", "Reading", "decide_kind", "reading_note"]

#: A string column with more distinct values than this is high-cardinality (:attr:`DataSummary.high_cardinality`).
HIGH_CARDINALITY = 50
#: Tables with fewer rows keep columns that only look like IDs (every value distinct by chance).
_ID_MIN_ROWS = 20
_ID_NAME = re.compile(r"^(id|.*[_ .\-]id|id[_ .\-].*|.*[a-z]Id|uuid|guid|index|unnamed: ?0|row_?(id|num|number)?)$",
                      re.IGNORECASE)
_DATE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$")
_BOOLS = {True, False}
_JUNK_KEPT = 4  # a file's numbers may hold at most 3 distinct junk strings: one more says "too many"

#: How reading a file turns a string column into values: booleans with missing values (1 / 0 / missing),
#: dates, numbers with a few junk strings read as missing.
Reading = Literal["bools", "dates", "numbers"]


def _dtype_class(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "flag"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    return "numeric" if pd.api.types.is_numeric_dtype(values) else "other"


@dataclass
class ColumnCounts:
    """The counts :func:`decide_kind` reads, over one whole column or summed over a file's chunks (:meth:`add`).

    A chunk without any value says nothing of the column's type (pandas reads it as numbers whatever the
    column holds): it counts rows only, and how it was read is kept in :attr:`empty_as`.
    """

    rows: int = 0
    present: int = 0
    #: Chunks with values that pandas read as numbers (integers among them) / booleans / datetimes / else.
    numeric_chunks: int = 0
    integer_chunks: int = 0
    bool_chunks: int = 0
    datetime_chunks: int = 0
    other_chunks: int = 0
    #: How pandas read the last chunk without any value (``numeric``, ``flag``, ``datetime``, ``other``).
    empty_as: str = ""
    #: Present values that are True / False, dates (as text), numbers; words of the "other" chunks' values.
    bool_values: int = 0
    dates: int = 0
    numbers: int = 0
    words: int = 0
    #: Up to four distinct strings of the "other" chunks that are not numbers, with their counts.
    junk: Counter[str] = field(default_factory=Counter)
    #: 64-bit hashes of the distinct values (8 bytes a value, not the strings), where an ID may hide.
    hashes: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def of(cls, values: pd.Series, *, reading: bool = True, distinct: bool = True) -> ColumnCounts:
        """The counts of a whole column (see :meth:`add`)."""
        counts = cls()
        counts.add(values, reading=reading, distinct=distinct)
        return counts

    def add(self, values: pd.Series, *, reading: bool = True, distinct: bool = True) -> None:
        """Count one chunk of the column (named ``values.name``).

        Args:
            reading: Count what reading a file converts (dates, numbers and junk in strings).
            distinct: Count distinct values and words (what text, ID and cardinality depend on), for string
                columns and integer columns named like IDs.
        """
        self.rows += len(values)
        present = values.dropna()
        kind = _dtype_class(values)
        if not len(present):
            self.empty_as = kind
            return
        self.present += len(present)
        if kind == "flag":
            self.bool_chunks += 1
            self.bool_values += len(present)
        elif kind == "datetime":
            self.datetime_chunks += 1
        elif kind == "numeric":
            self.numeric_chunks += 1
            self.integer_chunks += int(pd.api.types.is_integer_dtype(values))
            self.numbers += len(present)
        else:
            self._add_other(present, reading=reading, distinct=distinct)
        if distinct and (kind == "other" or (kind == "numeric" and _ID_NAME.match(str(values.name)))):
            self._hash(present.astype(str))

    def _hash(self, text: pd.Series) -> None:
        self.hashes = [np.unique(np.concatenate([*self.hashes, pd.util.hash_array(text.to_numpy(dtype=object))]))]

    def forget_text(self) -> None:
        """Drop the words and distinct values counted so far, before :meth:`add_text` counts them again.

        A file's column that pandas read as numbers in some chunks and as strings in others was counted only in
        the string chunks (and a number reads ``1.0`` in one chunk, ``1`` in another): its distinct values, what
        ID, text and cardinality depend on, come from a second read of that column alone, as the file's text."""
        self.words, self.hashes = 0, []

    def add_text(self, values: pd.Series) -> None:
        """Count the words and distinct values of one chunk of the column read as text."""
        text = values.dropna().astype(str)
        self.words += int(text.str.split().str.len().sum())
        self._hash(text)

    def _add_other(self, present: pd.Series, *, reading: bool, distinct: bool) -> None:
        self.other_chunks += 1
        self.bool_values += int(present.isin(list(_BOOLS)).sum()) if present.dtype == object else 0
        text = present.astype(str)
        if reading:
            self.dates += int(text.str.match(_DATE).sum())
            parsed = pd.to_numeric(text, errors="coerce")
            self.numbers += int(parsed.notna().sum())
            for value in text[parsed.isna()].unique()[:_JUNK_KEPT]:
                self.junk[str(value)] += int((text == value).sum())
        if distinct:
            self.words += int(text.str.split().str.len().sum())

    @property
    def distinct(self) -> int:
        return len(self.hashes[0]) if self.hashes else 0

    @property
    def chunks(self) -> int:
        """Chunks with values."""
        return self.numeric_chunks + self.bool_chunks + self.datetime_chunks + self.other_chunks


def decide_kind(name: str, c: ColumnCounts, *, reading: bool) -> tuple[str, Reading | None]:
    """The kind of column ``name`` and, with ``reading`` (a file's strings), how reading converts it (or None).

    ``id``: a unique value in every row of a table of at least 20 rows, for a string column, or an integer
    column whose name reads as an ID (``id``, ``user_id``, ``customerId``, ``Unnamed: 0``). ``text``: free
    text, strings of three words or more on average, more than half of them distinct. Without ``reading``
    the values are taken as they are (a loaded table's): strings of True / False are a ``flag``.
    """
    full = c.rows >= _ID_MIN_ROWS and c.present == c.rows
    if not c.present:  # nothing but missing values: as pandas read them (a file reads them as numbers)
        return ("numeric" if reading else {"numeric": "numeric", "datetime": "datetime"}.get(c.empty_as,
                                                                                            "categorical")), None
    if c.bool_chunks == c.chunks:
        return "flag", None
    if c.datetime_chunks == c.chunks:
        return "datetime", None
    if c.numeric_chunks == c.chunks:
        named = c.integer_chunks == c.chunks and _ID_NAME.match(name)
        return ("id" if named and full and c.distinct == c.rows else "numeric"), None
    if c.bool_values == c.present and not c.numeric_chunks:
        return ("numeric", "bools") if reading else ("flag", None)
    if reading and c.dates >= 0.95 * c.present:
        return "datetime", "dates"
    junk = sum(c.junk.values())
    if reading and 0 < junk < c.present and junk <= 0.05 * c.rows and len(c.junk) <= 3:
        return "numeric", "numbers"
    if c.words >= 3 * c.present and c.distinct > 0.5 * c.present:
        return "text", None
    if full and c.distinct == c.rows:
        return "id", None
    return ("high_cardinality" if c.distinct > HIGH_CARDINALITY else "categorical"), None


def reading_note(name: str, how: Reading, c: ColumnCounts) -> str:
    """The note a conversion of :func:`decide_kind` writes (``automl validate`` and the loaded table say it)."""
    if how == "bools":
        return f"column {name!r}: booleans with missing values, read as 1 / 0 / missing"
    if how == "dates":
        return f"column {name!r}: dates, parsed"
    shown = ", ".join(repr(v) for v in sorted(c.junk))
    return f"column {name!r}: numbers, {sum(c.junk.values())} non-numeric value(s) ({shown}) read as missing"
