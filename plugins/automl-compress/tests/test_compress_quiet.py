"""Loading a torchao-quantized program prints none of the library's load-time noise (GPU kernel libraries a CPU
machine lacks, torch's deprecation notice about torchao's enum), in a fresh process (imports are cached)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CODE = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    import numpy as np, torch
    logging.basicConfig()  # a user's logging set up: warnings would show
    from automl_compress.quantize import save_program
    from automl_torch.export import load_runner
    path = save_program(torch.nn.Linear(4, 2).eval(), torch.zeros(2, 4), Path(sys.argv[1]) / "m.pt2")
    print(load_runner(path)(np.zeros((3, 4), np.float32)).shape)
    print("torchao" in sys.modules)
""")


def test_loading_a_torch_program_imports_torchao_quietly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CODE, str(tmp_path)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(3,", "2)", "True"]
    assert "register_constant" not in done.stderr and "torchao" not in done.stderr, done.stderr
