"""scripts/gpu-check.sh and benchmarks/torch/gpu_check.py on a machine without a GPU, and the searches it runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from automl.spec import parse_spec
from benchmarks.torch.gpu_check import main, no_gpu_reason, search_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine: the script measures instead")
def test_the_script_says_in_one_line_that_there_is_no_gpu_and_exits_0() -> None:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["gpu-check: no GPU on this machine (no nvidia-smi on PATH); nothing measured."]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine: the check measures instead")
def test_the_check_itself_refuses_in_one_line_where_torch_sees_no_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert no_gpu_reason() is not None
    assert main([]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("gpu-check: no GPU on this machine (") and line.endswith("nothing measured.")


def test_each_fraction_is_a_valid_search_of_that_many_gpus_per_trial() -> None:
    from automl_torch.config import check

    for gpu in (1.0, 0.5, 0.25):
        spec = parse_spec(yaml.safe_dump(search_spec(gpu, 8, 3), sort_keys=False))
        assert spec.resources.gpu == gpu and spec.budget.trials == 8
        check("classification", spec.trainer.params, spec.space)  # the trainer takes its params and space
