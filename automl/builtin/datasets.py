"""The core's own data source: CSV files (``data: {csv: FILE, target: COLUMN}``)."""

from __future__ import annotations

from automl.data import check_csv, load_csv
from automl.hookspecs import hookimpl
from automl.interfaces import DatasetSpec


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return [DatasetSpec("csv", load_csv, check=check_csv, description="a CSV file with a header row and a target column")]
