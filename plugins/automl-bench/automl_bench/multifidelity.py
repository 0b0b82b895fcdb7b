"""Multi-fidelity synthetic problems (suite S2) as ``function``-trainer objectives.

The fidelity is the budget step ``z`` of ``steps`` (``s = z / steps``): BoTorch's AugmentedBranin form,
and a Hartmann3 whose low fidelities are shifted as in the MFHartmann family. At ``s = 1`` both are the
plain functions, with the known minima of benchmarks.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BRANIN_MIN = 0.397887
HARTMANN3_MIN = -3.86278
STEPS = 27

_A3 = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_P3 = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def augmented_branin(config: dict[str, Any], budget: int = STEPS) -> dict[str, float]:
    s = budget / STEPS
    x1 = 15 * float(config["x1"]) - 5
    x2 = 15 * float(config["x2"])
    b = 5.1 / (4 * math.pi**2) - 0.1 * (1 - s)
    value = (x2 - b * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
    return {"loss": value}


def mf_hartmann3(config: dict[str, Any], budget: int = STEPS) -> dict[str, float]:
    s = budget / STEPS
    x = np.array([float(config[f"x{i}"]) for i in (1, 2, 3)])
    alpha = _ALPHA - 0.1 * (1 - s)  # lower fidelities bias the weights (MFHartmann's delta)
    value = -float(np.sum(alpha * np.exp(-np.sum(_A3 * (x - _P3) ** 2, axis=1))))
    return {"loss": value}


def mf_zdt1(config: dict[str, Any], budget: int = STEPS) -> dict[str, float]:
    """ZDT1 in 3 variables, its second objective noisier at low fidelity (for MO-ASHA)."""
    s = budget / STEPS
    x = np.array([float(config[f"x{i}"]) for i in (1, 2, 3)])
    g = 1 + 9 * x[1:].sum() / 2
    f2 = g * (1 - math.sqrt(x[0] / g))
    return {"f1": float(x[0]), "f2": float(f2 + 0.3 * (1 - s) * math.sin(20 * x[0]))}
