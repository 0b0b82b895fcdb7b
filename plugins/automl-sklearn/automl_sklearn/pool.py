"""The best trials so far, for ensembles whose members are ``best``.

Why files and not the store: a trial runs in a Ray worker and workers never read or write
the store (the driver owns it). Instead every completed sklearn trial writes a small JSON
record (:data:`RECORD`: its config and validation metrics) next to its exported model, and
an ensemble trial reads the records of its sibling trials under the run directory
(``TrialContext.trial_dir.parent``). Members are rebuilt from their configs and fitted
again on the ensemble's own training rows (or folds), so no fitted model of another trial
is ever loaded, and stacking gets honest out-of-fold predictions.

Consequences, documented for users: "so far" means the trials completed when the ensemble
trial starts, so with concurrent trials the members depend on timing; an ensemble trial
with fewer than two usable records fails with that reason (the search goes on); and the
run directory must be shared by the workers (always true for a local Ray).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.plugin import Mode

__all__ = ["RECORD", "Finished", "best_trials", "read_records", "write_record"]

#: The file each completed trial writes next to its export.
RECORD = "sklearn-trial.json"


@dataclass(frozen=True)
class Finished:
    """A completed single-model trial: what an ensemble needs to rebuild it."""

    number: int
    config: dict[str, Any]
    metrics: dict[str, float]


def write_record(directory: Path, number: int, config: Mapping[str, Any], metrics: Mapping[str, float]) -> Path:
    path = directory / RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"number": number, "config": dict(config), "metrics": dict(metrics)}, default=str))
    tmp.replace(path)  # atomic: a reader never sees half a record
    return path


def read_records(trials_dir: Path, *, exclude: Path | None = None) -> list[Finished]:
    """Every readable record under ``trials_dir/*/`` (a record being written is skipped)."""
    out = []
    for path in sorted(trials_dir.glob(f"*/{RECORD}")):
        if exclude is not None and path.parent.resolve() == exclude.resolve():
            continue
        try:
            doc = json.loads(path.read_text())
            out.append(Finished(int(doc["number"]), dict(doc["config"]), {k: float(v) for k, v in doc["metrics"].items()}))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def best_trials(records: list[Finished], metric: str, mode: Mode, k: int, *, singles: set[str]) -> list[Finished]:
    """The ``k`` best records on ``metric`` among single-model trials, one per distinct config."""
    seen: set[str] = set()
    usable = []
    for r in records:
        value = r.metrics.get(metric)
        key = json.dumps(r.config, sort_keys=True, default=str)
        if str(r.config.get("model")) not in singles or value is None or not math.isfinite(value) or key in seen:
            continue
        seen.add(key)
        usable.append(r)
    usable.sort(key=lambda r: (-r.metrics[metric] if mode == "max" else r.metrics[metric], r.number))
    return usable[:k]
