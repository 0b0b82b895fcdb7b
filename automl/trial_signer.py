"""The Tune callback that signs a trial's model files as its final result reaches the driver (:mod:`automl.trust`).

It runs ahead of the :class:`~automl.recorder.Recorder` (Tune calls callbacks in order), so the files are
signed before the store calls the trial completed: a driver killed in between leaves a trial that runs
again, never a completed trial whose files a resume would refuse as unsigned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune

from automl.trial_job import ARTIFACT
from automl.trust import sign_trial

__all__ = ["TrialSigner"]


class TrialSigner(tune.Callback):
    """Signs ``result[ARTIFACT]`` and the other model files of its trial's directory, in the driver.

    Args:
        run_dir: The run directory (where ``signatures.jsonl`` is).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.signed: set[str] = set()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        artifact = result.get(ARTIFACT)
        if artifact and str(artifact) not in self.signed:
            self.signed.add(str(artifact))
            sign_trial(self.run_dir, artifact)
