"""The torch trainer refuses data it cannot train on when the table is loaded (``automl validate``), naming the columns."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import automl
from automl.plugin import DataError

SPEC = """
    task: classification
    data: {{csv: {csv}, target: label}}
    trainer: {{name: torch, params: {{epochs: 1}}}}
    searcher: {{name: random}}
    space:
      lr: {{type: float, low: 0.001, high: 0.01}}
    budget: {{trials: 1}}
"""


def _csv(tmp_path: Path, text_column: bool) -> Path:
    rows = ["x,city,label"] + [f"{i * 0.1},{['Paris', 'Lyon'][i % 2] if text_column else i % 3},{i % 2}"
                               for i in range(40)]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_validate_refuses_a_text_column_naming_it(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    spec = write_spec(SPEC.format(csv=_csv(tmp_path, True)))
    with pytest.raises(DataError, match=r"trainer 'torch' cannot train on data 'csv'.*'city' is (object|str)"):
        automl.validate(spec)
    done = subprocess.run([str(Path(sys.executable).with_name("automl")), "validate", str(spec)], capture_output=True, text=True)
    assert done.returncode == 2 and "city" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_numeric_columns_pass(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    assert automl.validate(write_spec(SPEC.format(csv=_csv(tmp_path, False)))).trainer.name == "torch"


def test_an_input_shape_that_does_not_fit_the_rows_is_refused_naming_the_images_shape() -> None:
    import pandas as pd
    from automl_torch.config import check_data

    from automl.plugin import Table

    rows = pd.DataFrame(np.zeros((4, 30)))
    # The image shape is a typed field of the table (what an image source sets), not a note to parse.
    images = Table(rows, pd.Series([0, 1, 0, 1]), notes=["images: 4 in 2 classes"], image_shape=(1, 6, 5))
    check_data("classification", {"input_shape": [1, 6, 5]}, images)
    # The wrong size, and the right size in the wrong order (the image would be read transposed).
    for wrong in ([1, 28, 28], [1, 5, 6]):
        with pytest.raises(ValueError, match=r"input_shape \[1, \d+, \d+\] does not fit the data: its rows are images "
                                             r"of input_shape \[1, 6, 5\]; set input_shape: \[1, 6, 5\]"):
            check_data("classification", {"input_shape": wrong}, images)
    plain = Table(rows, pd.Series([0, 1, 0, 1]))
    check_data("classification", {"input_shape": [1, 5, 6]}, plain)  # no image shape known: the count is all
    with pytest.raises(ValueError, match=r"\[3, 6, 5\] is 90 values a row and the data has 30 feature columns"):
        check_data("classification", {"input_shape": [3, 6, 5]}, plain)


def test_an_image_network_takes_the_shape_of_image_data_and_names_both_when_they_disagree(make_trainer,
                                                                                         digits) -> None:
    import dataclasses

    import pandas as pd
    from automl_torch.config import check_data

    from automl.plugin import Table

    images = Table(pd.DataFrame(np.zeros((4, 30))), pd.Series([0, 1, 0, 1]), image_shape=(1, 6, 5))
    check_data("classification", {"network": "cnn"}, images)
    assert images.notes == ["torch: input_shape [1, 6, 5], the data's image shape (trainer.params.input_shape "
                            "not given)"]
    # In a trial: the data's shape is the network's (digits' rows as the 8x8 images they are).
    shaped, table = digits, dataclasses.replace(digits, image_shape=None)
    assert shaped.image_shape == (1, 8, 8)
    trainer = make_trainer({"network": "cnn", "channels": 4, "conv_layers": 1}, {"epochs": 1}, data=shaped)
    assert trainer.settings.input_shape == (1, 8, 8)  # trained end to end: tests/test_image_data.py's search
    with pytest.raises(ValueError, match=r"input_shape \[1, 4, 16\] does not fit the data: its rows are images of "
                                         r"input_shape \[1, 8, 8\]"):
        make_trainer({"network": "cnn"}, {"input_shape": [1, 4, 16]}, data=shaped)
    with pytest.raises(ValueError, match="network cnn needs the image shape of a row, and the data gives none"):
        make_trainer({"network": "cnn"}, {}, data=table)
