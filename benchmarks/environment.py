"""The environment line a benchmark result keeps: when, which commit, how many CPUs, how loaded, which versions."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def environment(*packages: str) -> dict[str, Any]:
    """Date, short commit, CPUs this process may use, load average, machine and each named package's version."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        commit = "?"
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit, "cpus": len(os.sched_getaffinity(0)),
            "load_average": os.getloadavg(), "machine": platform.processor() or platform.machine(),
            **{name: importlib.import_module(name).__version__ for name in packages}}
