"""Signatures computed in blocks (issue 17): a big model file is never read into memory whole, and the
digest is the one the earlier whole-file code wrote, so run directories signed before still verify."""

from __future__ import annotations

import hashlib
import hmac
import json
import tracemalloc
from pathlib import Path

import pytest

from automl import trust


@pytest.fixture(autouse=True)
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "automl" / "key"
    monkeypatch.setenv(trust.KEY_ENV, str(path))
    return path


def whole_file_mac(content: bytes) -> str:
    """The signature as the whole-file code computed it: one HMAC over domain + content, all in memory."""
    return hmac.new(trust.load_key(), b"automl-run-content-v1\0" + content, hashlib.sha256).hexdigest()


def content(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


@pytest.mark.parametrize("size", [0, 1, trust.BLOCK - 1, trust.BLOCK, trust.BLOCK + 1, 3 * trust.BLOCK + 17])
def test_a_file_signed_in_blocks_has_the_whole_file_signature(tmp_path: Path, size: int) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content(size))
    assert trust.mac_file(path) == whole_file_mac(path.read_bytes()) == trust.mac(path.read_bytes())


def test_a_directory_signature_is_unchanged(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "a.bin").write_bytes(content(trust.BLOCK + 5))
    (model / "sub" / "b.txt").write_bytes(b"b")
    listing = "automl-directory\n" + "".join(
        f"{rel}\0{hashlib.sha256((model / rel).read_bytes()).hexdigest()}\n" for rel in ("a.bin", "sub/b.txt"))
    assert trust.mac_file(model) == whole_file_mac(listing.encode())


def test_a_run_signed_by_the_whole_file_code_still_verifies(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "trials" / "00000").mkdir(parents=True)
    model = run_dir / "trials" / "00000" / "model.onnx"
    model.write_bytes(content(2 * trust.BLOCK + 3))
    line = {"path": "trials/00000/model.onnx", "hmac": whole_file_mac(model.read_bytes())}
    (run_dir / trust.SIGNATURES).write_text(json.dumps(line) + "\n")
    assert trust.verify(run_dir, "trials/00000/model.onnx")
    model.write_bytes(content(2 * trust.BLOCK + 3)[:-1] + b"x")  # one byte changed at the end: refused
    verdict = trust.verify(run_dir, "trials/00000/model.onnx")
    assert not verdict and "changed since automl wrote it" in verdict.reason


def test_signing_and_verifying_a_big_file_holds_one_block(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    big = run_dir / "model.bin"
    with big.open("wb") as fh:
        for _ in range(32):
            fh.write(content(trust.BLOCK))
    trust.load_key()  # created outside the measured part
    tracemalloc.start()
    try:
        trust.sign(run_dir, [big])
        assert trust.verify(run_dir, big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Python's allocations while signing and verifying a 32 MiB file: a few blocks at most (read_bytes: 32 MiB).
    assert peak < 4 * trust.BLOCK
