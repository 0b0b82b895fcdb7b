"""The core's own plugins pass the conformance kits that plugin authors use."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from automl.testing import (
    DatasetConformance,
    SearcherConformance,
    StoreConformance,
    postgres_url,
    tiny_table,
)


class TestRandom(SearcherConformance):
    searcher = "random"
    improves = False  # random search is the reference the check compares against


class TestGrid(SearcherConformance):
    searcher = "grid"
    options = {"shuffle": True}  # the kit's grids are larger than its budgets: visit them in seeded order
    improves = False  # a fixed grid is no optimizer


class TestGridInOrder(SearcherConformance):
    searcher = "grid"
    improves = False
    seeded = False  # without shuffle the order is the grid's own, whatever the seed


class TestSQLiteStore(StoreConformance):
    """The built-in store on SQLite, opened through the automl_open_store hook."""


class TestPostgresStore(StoreConformance):
    """The built-in store on PostgreSQL: skipped, with the reason, unless AUTOML_TEST_POSTGRES_URL names a server."""

    def url(self, tmp_path: Path) -> str:
        return postgres_url()


@functools.cache
def _files() -> dict[str, str]:
    """A CSV and a Parquet file of the kit's table, written once per session."""
    directory = Path(tempfile.mkdtemp(prefix="automl-kit-data-"))
    table = tiny_table("classification", rows=60)
    frame = table.X.assign(label=table.y)
    frame.to_csv(directory / "table.csv", index=False)
    frame.to_parquet(directory / "table.parquet", index=False)
    return {"csv": str(directory / "table.csv"), "parquet": str(directory / "table.parquet"),
            "missing": str(directory / "missing.csv")}


class TestCsv(DatasetConformance):
    dataset = "csv"
    task = "classification"
    columns = ("f0", "f1", "f2", "f3")
    rows = 60

    @property
    def options(self) -> dict[str, Any]:  # type: ignore[override]
        return {"path": _files()["csv"], "target": "label"}

    @property
    def bad_options(self) -> tuple[dict[str, Any], ...]:  # type: ignore[override]
        return ({"path": _files()["missing"], "target": "label"}, {"path": _files()["csv"], "target": "nothing"})


class TestParquet(DatasetConformance):
    dataset = "parquet"
    task = "classification"
    columns = ("f0", "f1", "f2", "f3")
    rows = 60

    @property
    def options(self) -> dict[str, Any]:  # type: ignore[override]
        return {"path": _files()["parquet"], "target": "label"}

    @property
    def bad_options(self) -> tuple[dict[str, Any], ...]:  # type: ignore[override]
        return ({"path": _files()["parquet"], "target": "nothing"},)
