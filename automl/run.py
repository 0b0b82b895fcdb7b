"""A run directory and what it holds: the store, the trials, the front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError
from automl.front import compute_front
from automl.interfaces import Constraint, Objective
from automl.store import Store

__all__ = ["Run", "RUN_FILE", "FRONT_FILE"]

RUN_FILE = "run.json"
FRONT_FILE = "front.json"


class Run:
    """One search's results, readable while the search runs and after it ended.

    Args:
        directory: The run directory (``--out``).
        store: The open results store.
        run_id: The run's id in the store.
    """

    def __init__(self, directory: Path, store: Store, run_id: int) -> None:
        self.dir = Path(directory)
        self.store = store
        self.run_id = run_id

    @classmethod
    def open(cls, directory: str | Path) -> Run:
        """Open an existing run directory.

        Raises:
            AutoMLError: When the directory holds no run.
        """
        d = Path(directory)
        meta = d / RUN_FILE
        if not meta.is_file():
            raise AutoMLError(f"{str(d)!r} holds no automl run (no {RUN_FILE}); pass the --out directory of a search")
        info = json.loads(meta.read_text())
        return cls(d, Store(info["store"]), int(info["run_id"]))

    def info(self) -> dict[str, Any]:
        row = self.store.get_run(self.run_id)
        if row is None:
            raise AutoMLError(f"run {self.run_id} is missing from the store {self.store.url!r}")
        return row

    @property
    def status(self) -> str:
        return str(self.info()["status"])

    def objectives(self) -> list[Objective]:
        return [Objective(**o) for o in self.info()["objectives"]["objectives"]]

    def constraints(self) -> list[Constraint]:
        return [Constraint(**c) for c in self.info()["objectives"].get("constraints", [])]

    def trials(self) -> list[dict[str, Any]]:
        return self.store.trials(self.run_id)

    def steps(self, number: int | None = None) -> list[dict[str, Any]]:
        return self.store.steps(self.run_id, number)

    def front(self) -> dict[str, Any]:
        """``front.json`` once the search ended; computed from the store while it runs."""
        path = self.dir / FRONT_FILE
        if path.is_file():
            return dict(json.loads(path.read_text()))
        trials = self.trials()
        front = compute_front(trials, self.objectives(), self.constraints())
        by_number = {t["number"]: t for t in trials}
        front["members"] = [
            {"number": n, "config": by_number[n]["config"], "metrics": by_number[n]["metrics"]} for n in front["members"]
        ]
        front["provisional"] = True
        return front

    def best(self) -> dict[str, Any] | None:
        """The front member best on the primary objective."""
        members = self.front()["members"]
        if not members:
            return None
        primary = self.objectives()[0]
        return min(members, key=lambda m: primary.to_min(m["metrics"][primary.metric]))

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, run_id={self.run_id})"
