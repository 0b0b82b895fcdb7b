"""``trainer: {name: loop}``: the user's own training loop, run once per trial, reporting from inside.

.. code-block:: yaml

    trainer:
      name: loop
      params:
        function: my_module:train      # train(config): calls automl.report(step, {...}) in its loop
        metrics: {loss: min}
        steps: 20                      # the budget steps the loop reports (1..steps)

The function runs in a thread of the trial's worker; each :func:`automl.report` is one budget step of
the engine (recorded, checkpointed, handed to Ray Tune's session for the scheduler), so every scheduler
(asha, hyperband, moasha, pbt) works on it. See :mod:`automl.loop` for the calls and ``docs/loop.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from automl.errors import TrialError
from automl.importpath import import_callable
from automl.interfaces import Trainer
from automl.loop import _NOTHING, LoopSession, read_state, write_state

__all__ = ["LoopTrainer"]

#: The engine's own record of a loop checkpoint: the step and its metrics (the user's state beside it).
META_FILE = "loop_meta.json"
#: Seconds a stopped loop gets to return before the trial goes on without it (its thread is a daemon).
JOIN_S = 60.0


class ResultTrainer(Trainer):
    """A trainer whose 'model' is its config and last result (the ``function`` and ``loop`` trainers): exported as
    ``result.json``, predicting that result."""

    config: dict[str, Any]
    result_: dict[str, float]

    def exported(self) -> dict[str, Any]:
        return {"config": self.config, "result": self.result_}

    def export(self, directory: Path) -> Path:
        path = directory / "result.json"
        path.write_text(json.dumps(self.exported(), default=str))
        return path

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        stored = json.loads(path.read_text())
        return lambda _batch: stored["result"]

    def sample_input(self, batch_size: int) -> Any:
        return None


class LoopTrainer(ResultTrainer):
    """Runs ``params.function(config)`` once; each of its :func:`automl.report` calls is a budget step."""

    _restored: Any = None

    @property
    def budget_steps(self) -> int:
        return int(self.params.get("steps", 1))

    def fit_step(self, step: int) -> None:  # the steps come from the loop itself (run_steps)
        raise NotImplementedError("the loop trainer's steps are its function's automl.report calls")

    def run_steps(self, start: int = 1) -> Iterator[int]:
        """Start the loop in a thread; yield each step it reports, holding it until the engine has recorded it.

        Reports of steps below ``start`` (a restarted trial whose loop did not load its checkpoint and runs
        them again) are let through without a yield: the trial has them already.
        """
        import threading

        from automl import loop

        fn = import_callable(str(self.params["function"]), what="function")
        session = LoopSession(self._restored, deadline=self.context.deadline)
        thread = threading.Thread(target=session.run, args=(fn, dict(self.config)), name="automl-loop", daemon=True)
        thread.start()
        last = 0
        try:
            while (item := session.next_report()) is not None:
                step, metrics, state = item
                if step <= last or step > self.budget_steps:
                    raise TrialError(
                        f"automl.report(step {step}) after step {last}: steps go up by at least 1, from 1 to "
                        f"params.steps ({self.budget_steps})" if step <= last else
                        f"automl.report(step {step}) is beyond params.steps ({self.budget_steps}): raise params.steps, "
                        "or return from the loop when automl.should_stop() is True")
                last = step
                if step < start:
                    session.resume()
                    continue
                self.result_, self.step_, self._state = metrics, step, state
                yield step
                session.resume(last=step == self.budget_steps)
            if session.error is not None:
                raise session.error
            if not hasattr(self, "result_"):
                raise TrialError(f"the loop function {self.params['function']} returned without calling automl.report")
        finally:
            session.stop()  # the scheduler stopped the trial (the generator is closed) or it ended: wake the loop
            thread.join(JOIN_S)
            loop._current = None

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        return dict(self.result_) if split == "valid" else {}

    def save_checkpoint(self, directory: Path, step: int | None = None) -> bool:
        """Write the state the loop saved with this step (:func:`automl.save_checkpoint`); False without one."""
        state = getattr(self, "_state", _NOTHING)
        if state is _NOTHING:
            return False
        if step is not None and step != self.step_:
            raise ValueError(f"asked to checkpoint after step {step}, but the loop's last report is step {self.step_}")
        write_state(state, directory)
        (directory / META_FILE).write_text(json.dumps({"step": self.step_, "metrics": self.result_}))
        return True

    def load_checkpoint(self, directory: Path) -> int:
        meta = json.loads((directory / META_FILE).read_text())
        self.step_, self.result_ = int(meta["step"]), {k: float(v) for k, v in meta["metrics"].items()}
        self._restored = read_state(directory)
        return self.step_

    def exported(self) -> dict[str, Any]:
        return {**super().exported(), "step": self.step_}


def check(params: Mapping[str, Any]) -> None:
    """``params.steps`` a positive int (``function`` and ``metrics`` are checked as the function trainer's)."""
    steps = params.get("steps", 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"params.steps must be a positive integer (the budget steps the loop reports), got {steps!r}")
