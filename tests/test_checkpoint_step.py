"""``Trainer.save_checkpoint`` is told the step it saves after, when its signature takes ``step``.

The worker's trial function (``run_trial``, run here in-process with Tune's ``report`` replaced)
passes ``step=k`` after budget step k to a trainer that takes it, and calls a trainer written for
0.1 (``save_checkpoint(self, directory)``) without it; a restarted trial goes on at k+1. The
trainer kit saves the same way. No Ray cluster: every test here is fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from automl import trial_job, trial_worker
from automl.builtin.function_trainer import FunctionTrainer
from automl.plugin import Trainer, TrainerSpec, TrialContext
from automl.testing import TrainerConformance, failed_checks, run_checks, tiny_splits

#: What each save_checkpoint call was given, in order: (trainer class name, step or "not told").
saves: list[tuple[str, Any]] = []

STEPS = 4


class Accumulator(Trainer):
    """A model whose state is a running sum over its steps: a resume without the state ends elsewhere."""

    @property
    def budget_steps(self) -> int:
        return int(self.params.get("steps", STEPS))

    def fit_step(self, step: int) -> None:
        self.total_ = getattr(self, "total_", 0.0) + step * (1 + self.context.seed % 7) / 10
        self.step_ = step

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        return {"loss": self.total_}

    def export(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.json"
        path.write_text(json.dumps({"total": self.total_}))
        return path

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        total = json.loads(path.read_text())["total"]
        return lambda batch: [total] * len(batch)

    def _write(self, directory: Path, step: int) -> bool:
        (directory / "state.json").write_text(json.dumps({"step": step, "total": self.total_}))
        return True

    def load_checkpoint(self, directory: Path) -> int:
        state = json.loads((directory / "state.json").read_text())
        self.total_, self.step_ = float(state["total"]), int(state["step"])
        return self.step_


class TakesStep(Accumulator):
    def save_checkpoint(self, directory: Path, step: int | None = None) -> bool:
        saves.append((type(self).__name__, step))
        assert step is not None
        return self._write(directory, step)


class NeedsStep(Accumulator):
    """Keyword-only and required: a call without ``step`` raises TypeError."""

    def save_checkpoint(self, directory: Path, *, step: int) -> bool:  # type: ignore[override]
        saves.append((type(self).__name__, step))
        return self._write(directory, step)


class TakesKeywords(Accumulator):
    def save_checkpoint(self, directory: Path, **options: Any) -> bool:  # type: ignore[override]
        saves.append((type(self).__name__, options.get("step", "not told")))
        return self._write(directory, int(options["step"]))


class WrittenFor01(Accumulator):
    """The 0.1 signature: no ``step``; it counts its steps itself."""

    def save_checkpoint(self, directory: Path) -> bool:  # type: ignore[override]
        saves.append((type(self).__name__, "not told"))
        return self._write(directory, self.step_)


class NoCheckpoints(Accumulator):
    """Does not override save_checkpoint: the ABC's default (which takes ``step``) says False."""


@pytest.fixture(autouse=True)
def _calls() -> None:
    saves.clear()


def run_trial(trainer: type[Trainer], run_dir: Path, monkeypatch: pytest.MonkeyPatch,
              number: int = 0) -> list[dict[str, Any]]:
    """The worker's trial function for one trial, in-process; returns what it reported to Tune."""
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(trial_worker.tune, "report", lambda metrics: reports.append(dict(metrics)))
    job = trial_job.Job(trainer=trainer, params={}, task="regression", seed=3, run_dir=str(run_dir),
                           measured=False, batch_size=1, warmup=0, repeats=1, cpus=1.0, gpus=0.0)
    trial_worker.run_trial({trial_job.NUMBER: number}, None, job)
    return reports


@pytest.mark.parametrize("trainer", [TakesStep, NeedsStep, TakesKeywords])
def test_the_worker_tells_a_trainer_that_takes_it_the_step(trainer: type[Trainer], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reports = run_trial(trainer, tmp_path, monkeypatch)
    # After every step but the last (the trial then exports and its checkpoint goes).
    assert saves == [(trainer.__name__, k) for k in range(1, STEPS)]
    assert [r[trial_job.BUDGET] for r in reports] == list(range(1, STEPS + 1))


def test_the_worker_calls_a_01_trainer_without_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reports = run_trial(WrittenFor01, tmp_path, monkeypatch)
    assert saves == [("WrittenFor01", "not told")] * (STEPS - 1)
    assert reports[-1][trial_job.FINAL] is True


def test_the_signature_is_read_once_per_trainer_class(tmp_path: Path) -> None:
    class Fresh(TakesStep):
        pass

    context = TrialContext("regression", 0, None, tmp_path)  # type: ignore[arg-type]
    before = trial_worker._takes_step.cache_info()
    for k in (1, 2, 3):
        trainer = Fresh({}, {}, context)
        trainer.fit_step(k)
        trial_worker._save_checkpoint(trainer, tmp_path / "checkpoint", k)
    after = trial_worker._takes_step.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)
    assert saves == [("Fresh", 1), ("Fresh", 2), ("Fresh", 3)]
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 3


def test_a_trainer_that_does_not_checkpoint_leaves_no_checkpoint(tmp_path: Path) -> None:
    trainer = NoCheckpoints({}, {}, TrialContext("regression", 0, None, tmp_path))  # type: ignore[arg-type]
    trainer.fit_step(1)
    trial_worker._save_checkpoint(trainer, tmp_path / "checkpoint", 1)
    assert not (tmp_path / "checkpoint").exists() and not (tmp_path / "checkpoint.tmp").exists()


@pytest.mark.parametrize("trainer", [TakesStep, WrittenFor01])
def test_a_restarted_trial_goes_on_after_the_step_of_its_checkpoint(trainer: type[Trainer], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    whole = run_trial(trainer, tmp_path / "whole", monkeypatch)
    # A first attempt that died after step 2, its checkpoint left where the worker keeps it.
    first = trainer({}, {}, TrialContext("regression", 3, None, tmp_path))  # type: ignore[arg-type]
    for k in (1, 2):
        first.fit_step(k)
        trial_worker._save_checkpoint(first, trial_job.trial_dir(tmp_path / "restart", 0) / "checkpoint", k)
    saves.clear()
    resumed = run_trial(trainer, tmp_path / "restart", monkeypatch)
    # Step 2 again first, restored from the checkpoint, not run (a killed driver may not have recorded it).
    assert [r[trial_job.BUDGET] for r in resumed] == [2, 3, 4]
    assert saves == [(trainer.__name__, 3 if trainer is TakesStep else "not told")]
    assert resumed[-1]["loss"] == whole[-1]["loss"]


def test_the_function_trainer_records_the_step_and_refuses_another(tmp_path: Path) -> None:
    trainer = FunctionTrainer({"x": 1.0}, {"function": "math:fabs", "metrics": {"loss": "min"}, "steps": 3},
                              TrialContext("regression", 0, None, tmp_path))  # type: ignore[arg-type]
    trainer.result_, trainer.step_ = {"loss": 0.5}, 2  # as after fit_step(2)
    assert trial_worker._takes_step(FunctionTrainer)
    assert trainer.save_checkpoint(tmp_path, step=2)
    fresh = FunctionTrainer(trainer.config, trainer.params, trainer.context)
    assert fresh.load_checkpoint(tmp_path) == 2 and fresh.result_ == {"loss": 0.5}
    with pytest.raises(ValueError, match="after step 3, but the last step evaluated is 2"):
        trainer.save_checkpoint(tmp_path, step=3)


# -- the trainer kit saves as the worker does ----------------------------------------------------

class AccumulatorKit(TrainerConformance):
    factory: ClassVar[type[Trainer]] = TakesStep
    task = "regression"
    params: ClassVar[dict[str, Any]] = {"steps": STEPS}

    def spec(self) -> TrainerSpec:
        return TrainerSpec("accumulator", self.factory, tasks=("regression",), metrics=lambda task, params: {"loss": "min"},
                           description="a running sum")


class SkipsAStepOnResume(TakesStep):
    def run_steps(self, start: int = 1) -> Any:
        yield from super().run_steps(start + 1 if start > 1 else start)


CHECK = "test_checkpoint_round_trip_resumes_identically"


@pytest.mark.parametrize("trainer", [TakesStep, NeedsStep, TakesKeywords, WrittenFor01])
def test_the_trainer_kit_tells_the_step_to_a_trainer_that_takes_it(trainer: type[Trainer]) -> None:
    results = run_checks(AccumulatorKit, only=[CHECK], factory=trainer)
    assert results[CHECK].outcome == "passed", results[CHECK].message
    told = "not told" if trainer is WrittenFor01 else STEPS // 2
    assert saves[-1] == (trainer.__name__, told)  # the kit saved after step k = steps // 2, and stopped
    assert [step for _, step in saves] == (["not told"] * 2 if trainer is WrittenFor01 else [1, 2])


def test_the_trainer_kit_catches_a_resume_that_skips_a_step() -> None:
    failures = failed_checks(run_checks(AccumulatorKit, only=[CHECK], factory=SkipsAStepOnResume))
    assert "run_steps yielded [4], expected [3, 4]" in failures.get(CHECK, ""), failures


def test_the_torch_trainer_checks_the_step_against_its_epoch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from automl_torch.trainer import NeuralNetTrainer

    context = TrialContext("classification", 0, tiny_splits("classification"), tmp_path)
    trainer = NeuralNetTrainer({"units": 4}, {"epochs": 2}, context)
    assert trial_worker._takes_step(NeuralNetTrainer)
    trainer.fit_step(1)
    assert trainer.save_checkpoint(tmp_path / "checkpoint", step=1)
    assert NeuralNetTrainer({"units": 4}, {"epochs": 2}, context).load_checkpoint(tmp_path / "checkpoint") == 1
    with pytest.raises(ValueError, match="after step 2, but the network's state is of epoch 1"):
        trainer.save_checkpoint(tmp_path / "checkpoint", step=2)


def test_a_trial_run_outside_ray_records_no_node_and_starts_no_ray() -> None:
    # In a fresh interpreter: asking Ray's runtime context for the node would start a local Ray to answer
    # (a node start of seconds, which timed out on a loaded machine and failed the trial).
    code = ("import ray\nfrom automl.trial_job import node_id\n"
            "print(node_id(), ray.is_initialized())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False"]
