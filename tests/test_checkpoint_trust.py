"""Trial checkpoints are not signed (docs/architecture.md, Trust): a tampered one must not run code when a resume,
a promotion or a PBT exploit reads it. The core's readers take tensors, plain arrays and JSON only."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from automl.loop import ARRAYS, STATE_TORCH, read_state, write_state


class Planted:
    """Unpickling this creates the file ``marker``: what a crafted pickle would do with ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.replace, (str(self.marker) + ".src", str(self.marker)))


def planted(tmp_path: Path) -> tuple[bytes, Path]:
    marker = tmp_path / "ran"
    Path(str(marker) + ".src").write_text("code ran")
    return pickle.dumps({"epoch": Planted(marker)}, protocol=2), marker


def test_a_tampered_torch_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    write_state({"epoch": 3, "w": torch.zeros(2)}, directory)
    assert read_state(directory)["epoch"] == 3
    payload, marker = planted(tmp_path)
    # torch.save's zip layout with the planted pickle as its data.pkl: what torch.load reads.
    buffer = io.BytesIO()
    torch.save({"epoch": 1}, buffer)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(directory / STATE_TORCH, "w") as target:
        for item in source.infolist():
            data = payload if item.filename.endswith("data.pkl") else source.read(item)
            target.writestr(item, data)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        read_state(directory)
    assert not marker.exists()


def test_a_tampered_array_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    write_state({"w": np.zeros(3)}, directory)
    payload, marker = planted(tmp_path)
    np.savez(directory / ARRAYS, a0=np.array([Planted(marker)], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        read_state(directory)
    assert not marker.exists()
