"""A trainer's ``check_data`` that names a ``space`` keyword gets the search space when the table is loaded: the
torch trainer refuses, at ``automl validate``, an image network or augmentation searched on a table with no image
shape (before, every such trial failed at run time); a 3-argument ``check_data`` keeps working."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import automl
from automl.cli import main
from automl.plugin import SearchSpace, Table
from tests.test_image_data import _folder

SPEC = """
    task: classification
    data: {data}
    trainer: {{name: torch, params: {{epochs: 1}}}}
    searcher: {{name: random}}
    space:
      {entry}
      lr: {{type: float, low: 0.001, high: 0.01}}
"""


def _pixels(tmp_path: Path) -> Path:
    """A CSV table of 16 pixel columns: a table, so no image shape."""
    rows = ["label," + ",".join(f"p{i}" for i in range(16))]
    rows += [f"{i % 2}," + ",".join(str((i * 7 + j) % 255) for j in range(16)) for i in range(30)]
    path = tmp_path / "pixels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(("entry", "named"), [
    ("network: {type: choice, values: [mlp, cnn]}", "space parameter 'network' can take 'cnn' (its values: 'mlp', "
                                                    "'cnn'): network cnn needs the image shape of a row"),
    ("augment_crop: {type: int, low: 0, high: 2}", "space parameter 'augment_crop' can take 2 (its values: 0 to 2): "
                                                   "augment_flip / augment_crop work on images"),
])
def test_an_image_value_searched_on_a_table_is_refused_at_validate_and_passes_on_images(
        entry: str, named: str, write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    spec = write_spec(SPEC.format(data=f"{{csv: {_pixels(tmp_path)}, target: label}}", entry=entry))
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
    assert "its 16 columns as 4x4 gray images: [1, 4, 4]" in result.output
    # The same space on images: their shape is the network's.
    _folder(tmp_path / "imgs", {"a": 6, "b": 6})
    result = CliRunner().invoke(main, ["validate", str(write_spec(SPEC.format(data="{images: imgs}", entry=entry)))])
    assert result.exit_code == 0, result.output
    assert "note: torch: input_shape [1, 6, 5], the data's image shape" in result.output


def test_digits_with_a_searched_cnn_needs_no_input_shape(write_spec: Callable[[str], Path]) -> None:
    plan = automl.validate(write_spec(SPEC.format(data="{dataset: digits}",
                                                  entry="network: {type: choice, values: [mlp, cnn]}")))
    assert plan.load_table().image_shape == (1, 8, 8)
    assert "torch: input_shape [1, 8, 8], the data's image shape (trainer.params.input_shape not given)" in plan.notes


def test_check_data_gets_the_space_by_keyword_only_when_it_names_it(write_spec: Callable[[str], Path]) -> None:
    plan = automl.validate(write_spec(SPEC.format(data="{dataset: iris}", entry="units: {type: int, low: 8, high: 16}")))
    seen: list[tuple[Any, ...]] = []

    def three(task: str, params: Mapping[str, Any], table: Table) -> None:  # written before the keyword
        seen.append((task, dict(params), len(table.X)))

    def keyed(task: str, params: Mapping[str, Any], table: Table, *, space: SearchSpace) -> None:
        seen.append(tuple(space))

    # The trainer's own default space (no `space:`): what it chose for the data needs no check, the space is empty.
    auto = automl.validate(write_spec("task: classification\ndata: {dataset: iris}\ntrainer: {name: sklearn}\n"))
    assert auto.space_source == "trainer" and len(auto.space) > 0
    for target, check in ((plan, three), (plan, keyed), (auto, keyed)):
        target.trainer, target._table = dataclasses.replace(target.trainer, check_data=check), None
        target.load_table()
    assert seen == [("classification", {"epochs": 1}, 150), ("units", "lr"), ()]
