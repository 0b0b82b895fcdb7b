"""Trivial objectives: the trial itself costs nothing, so the benchmark measures the engine."""

from __future__ import annotations

from typing import Any


def trivial(config: dict[str, Any]) -> dict[str, float]:
    return {"loss": (float(config["x"]) - 0.5) ** 2}


def fails_below(config: dict[str, Any]) -> dict[str, float]:
    """Trivial, but raises for ``x`` below ``config['share']``: that share of the trials fails."""
    x = float(config["x"])
    if x < float(config["share"]):
        raise ValueError(f"x={x:.3f} fails")
    return {"loss": (x - 0.5) ** 2}
