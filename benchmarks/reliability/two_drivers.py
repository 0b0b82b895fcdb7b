"""Start two ``automl search --out SAME`` at once, N times: how often do both run? (One run directory, one driver.)

    python -m benchmarks.reliability.two_drivers OUT_DIR [--tries 10]

Prints one JSON document: tries, how many times both drivers ran (exit 0 twice), and each refusal's line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
trainer:
  name: function
  params: {function: "benchmarks.reliability.objectives:quadratic", metrics: {loss: min}}
space:
  x: {type: float, low: 0, high: 1}
objectives:
  - {metric: loss, mode: min}
budget: {trials: 2}
seed: 1
"""


def run(base: Path, tries: int) -> dict[str, Any]:
    base.mkdir(parents=True, exist_ok=True)
    spec = base / "spec.yaml"
    spec.write_text(SPEC)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    results = []
    for i in range(tries):
        out = base / f"run{i}"
        procs = [subprocess.Popen([sys.executable, "-m", "automl.cli", "search", str(spec), "--out", str(out)], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        codes, errors = [], []
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            codes.append(proc.returncode)
            errors.append(err.strip().splitlines()[-1] if err.strip() else "")
        results.append({"codes": codes, "refusal": [e for c, e in zip(codes, errors) if c == 2],
                        "other": [e for c, e in zip(codes, errors) if c not in (0, 2)]})
    return {"tries": tries, "both_ran": sum(r["codes"] == [0, 0] for r in results), "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tries", type=int, default=10)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.out, args.tries), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
