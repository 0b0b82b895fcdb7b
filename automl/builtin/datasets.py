"""The core's own data sources: CSV and Parquet files (``data: {csv: FILE, target: COLUMN}``, ``parquet: FILE``)."""

from __future__ import annotations

from automl.data import check_csv, check_parquet, load_csv, load_parquet
from automl.hookspecs import hookimpl
from automl.interfaces import DatasetSpec


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec("csv", load_csv, check=check_csv, description="a CSV file with a header row and a target column"),
        DatasetSpec("parquet", load_parquet, check=check_parquet, description="a Parquet file with a target column"),
    ]
