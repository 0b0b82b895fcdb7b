"""How much a configuration of the sklearn trainer costs, relative to others of the same model.

The engine learns seconds per unit from the trials that finished (per model and categorical choices) and
does not start a configuration predicted not to finish before the wall time ends (``TrainerSpec.cost``).
Only the parameters that multiply the work are counted: the number of trees (bagged or boosted) and, for
boosted trees, the depth a tree of that many leaves has (histogram building costs about rows x depth per tree).
Everything else (knn, linear models, ...) costs one unit: their trials of one kind cost about the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["config_cost"]

#: Parameters (after ``MODEL__``) that bound a boosted tree's size.
_LEAVES = ("num_leaves", "max_leaves")


def config_cost(config: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    """Relative cost of ``config`` (the trainer's part of a trial's config) under the fixed ``params``."""
    model = config.get("model", params.get("model"))
    if not isinstance(model, str):
        return 1.0

    def value(name: str) -> float | None:
        v = config.get(f"{model}__{name}", params.get(f"{model}__{name}"))
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None

    units = value("n_estimators") or 1.0
    leaves = next((v for v in (value(n) for n in _LEAVES) if v is not None), None)
    if leaves is not None:
        units *= max(1.0, math.log2(leaves + 1))
    share = value("max_features")
    if share is not None and share <= 1.0:  # split search looks at this share of the columns
        units *= share
    return units
