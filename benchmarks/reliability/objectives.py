"""Objectives for the reliability runs: each call leaves a line in a log, so a step that ran twice shows."""

from __future__ import annotations

import time
from typing import Any


def logged_steps(config: dict[str, Any], budget: int = 1) -> dict[str, float]:
    """Appends ``x budget`` to ``config['log']`` (which budget steps ran, how often), then works ``config['sleep']`` s."""
    with open(str(config["log"]), "a") as calls:
        calls.write(f"{float(config['x']):.12f} {budget}\n")
    time.sleep(float(config.get("sleep", 0.0)))
    return {"loss": float(config["x"]) + 1.0 / budget, "cost": float(budget)}


def quadratic(config: dict[str, Any]) -> dict[str, float]:
    """A bowl with its minimum at x = 0.3."""
    return {"loss": (float(config["x"]) - 0.3) ** 2}
