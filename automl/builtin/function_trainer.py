"""``trainer: {name: function}``: a Python function as the objective.

For synthetic benchmarks (Branin, ZDT...) and for users whose training is a plain
function. The spec names it by import path, so the spec runs the user's code, as any
trainer plugin does:

.. code-block:: yaml

    trainer:
      name: function
      params:
        function: my_module:evaluate   # evaluate(config) -> {"loss": 0.3}
        metrics: {loss: min}
        steps: 1                       # > 1: evaluate(config, budget=step) per step
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from automl.builtin.loop_trainer import LoopTrainer, ResultTrainer
from automl.builtin.loop_trainer import check as check_loop
from automl.hookspecs import hookimpl
from automl.importpath import import_callable
from automl.interfaces import Mode, Task, TrainerSpec
from automl.space import SearchSpace


def resolve(path: str) -> Callable[..., Any]:
    """The objective function at ``module:function``."""
    return import_callable(path, what="function")


CHECKPOINT_FILE = "function_state.json"


class FunctionTrainer(ResultTrainer):
    """Calls the function once per budget step; the 'model' it exports is the config and result."""

    @property
    def budget_steps(self) -> int:
        return int(self.params.get("steps", 1))

    def fit_step(self, step: int) -> None:
        fn = resolve(str(self.params["function"]))
        takes_budget = "budget" in inspect.signature(fn).parameters
        result = fn(self.config, budget=step) if takes_budget else fn(self.config)
        if isinstance(result, (int, float)):
            result = {next(iter(self.params["metrics"])): float(result)}
        self.result_ = {k: float(v) for k, v in dict(result).items()}
        self.step_ = step

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        return dict(self.result_)

    # The function is evaluated afresh at each budget, so the last step and its result are the
    # whole state: a restarted or promoted trial goes on at the next step.
    def save_checkpoint(self, directory: Path, step: int | None = None) -> bool:
        if not hasattr(self, "result_"):
            return False
        if step is not None and step != self.step_:  # a resume would skip or repeat a budget
            raise ValueError(f"asked to checkpoint after step {step}, but the last step evaluated is {self.step_}")
        (directory / CHECKPOINT_FILE).write_text(json.dumps({"step": self.step_, "result": self.result_}))
        return True

    def load_checkpoint(self, directory: Path) -> int:
        state = json.loads((directory / CHECKPOINT_FILE).read_text())
        self.step_, self.result_ = int(state["step"]), {k: float(v) for k, v in state["result"].items()}
        return self.step_



def _metrics(task: Task, params: Mapping[str, Any]) -> Mapping[str, Mode]:
    metrics = params.get("metrics") or {}
    return {str(k): v for k, v in dict(metrics).items()} if isinstance(metrics, Mapping) else {}


def _check(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    if "function" not in params:
        raise ValueError("the function trainer needs params.function: module:function")
    resolve(str(params["function"]))
    metrics = params.get("metrics")
    if not isinstance(metrics, Mapping) or not metrics or any(v not in ("min", "max") for v in metrics.values()):
        raise ValueError("the function trainer needs params.metrics: {name: min|max, ...}")
    steps = params.get("steps", 1)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"params.steps must be a positive integer, got {steps!r}")


@hookimpl
def automl_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "function",
            FunctionTrainer,
            tasks=("classification", "regression"),
            metrics=_metrics,
            check=_check,
            description="a Python function module:function(config[, budget]) -> {metric: value}",
            needs_data=False,
            measurable=False,
        ),
        TrainerSpec(
            "loop",
            LoopTrainer,
            tasks=("classification", "regression"),
            metrics=_metrics,
            check=_check_loop,
            description="your own training loop module:function(config), run once, calling automl.report(step, "
                        "{metric: value}) each step (docs/loop.md)",
            needs_data=False,
            measurable=False,
        ),
    ]


def _check_loop(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    _check(task, params, space)
    check_loop(params)


__all__ = ["FunctionTrainer", "resolve"]
