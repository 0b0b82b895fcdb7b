"""What the driver and the trial workers share: the job sent to the workers, the reserved keys of the
configs and results that travel through Ray Tune, and the files of a trial directory.

Runs in both processes (imported by :mod:`automl.trial_worker` in each Ray worker and by the driver-side
:mod:`automl.searcher_adapter`, :mod:`automl.recorder` and :mod:`automl.engine`); imports no Ray.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.data import Splits
from automl.interfaces import Compressor, Task, Trainer, TrialContext

__all__ = [
    "ARTIFACT", "BUDGET", "CHECKPOINT_DIR", "DEADLINE_REASON", "ERROR", "EXPORT_BAR", "FAILURE_FILE", "FAULT_FILE",
    "FINAL", "MEASURED_AS", "NODE", "NUMBER", "PBT_DIR", "RUNG_DIR", "TIMINGS", "TRACEBACK_FILE", "Job",
    "drop_snapshot", "finish_adoption", "keep_snapshot", "node_id", "remove_restart_files", "repair_adoptions",
    "stage_adoption", "trial_context", "trial_dir",
]

#: Reserved keys in the configs and results that travel through Tune.
NUMBER = "_automl_number"
FINAL = "_automl_final"
ERROR = "_automl_error"
ARTIFACT = "_automl_artifact"
TIMINGS = "_automl_timings"
MEASURED_AS = "_automl_measured_as"
#: The Ray node a trial's worker runs on, in its reports (the driver stores it as the trial's ``node``).
NODE = "_automl_node"
BUDGET = "budget"


def node_id() -> str | None:
    """The id of the Ray node this process runs on (a worker's, in a trial); None outside Ray (a trial run in
    the calling process: asking Ray's runtime context there would start a whole local Ray to answer)."""
    import ray

    if not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().get_node_id())


@dataclass(frozen=True)
class Job:
    """What every trial of a search shares; pickled once and sent to the workers."""

    trainer: type[Trainer]
    params: Mapping[str, Any]
    task: Task
    seed: int
    run_dir: str
    measured: bool
    batch_size: int
    warmup: int
    repeats: int
    cpus: float
    gpus: float
    #: Engine metrics to measure at intermediate steps too (for a multi-objective scheduler).
    rung_metrics: tuple[str, ...] = ()
    #: Steps where the scheduler compares trials (empty: every step): the only ones that need rung_metrics.
    rung_steps: tuple[int, ...] = ()
    trial_timeout: float | None = None
    #: When the trial phase of the search ends (``time.time()``): a trial still running then ends there.
    deadline: float | None = None
    #: Where the spec's import paths resolve from (the spec's directory, the driver's working directory).
    sys_path: tuple[str, ...] = ()
    #: The spec's compressors in order: (name, factory, fixed params).
    compressors: tuple[tuple[str, Callable[..., Compressor], Mapping[str, Any]], ...] = ()
    #: Save each completed trial's predictions (the search builds an ensemble from them, automl.ensemble).
    predictions: bool = False
    #: ``models.export: top``: (primary metric, mode, how many): a trial exports its model only when its
    #: primary value is within the best that many completed so far (read from :data:`EXPORT_BAR`).
    export_top: tuple[str, str, int] | None = None
    #: The objectives' metrics the trainer must report (the engine measures latency and size itself): a trial
    #: whose final metrics miss one fails with that reason instead of completing without it.
    required: tuple[str, ...] = ()
    #: A trial's exception is its last report (``{ERROR: reason}``) and the worker lives on, rather than an error that
    #: ends the worker (the engine's choice: no retry to make, and a scheduler that reads such a report).
    report_failures: bool = False

    def context(self, number: int, data: Splits | None) -> TrialContext:
        """The context trial ``number`` of this search gets."""
        return trial_context(self.task, self.seed, number, data, self.run_dir, self.cpus, self.gpus, self.deadline)


def trial_dir(run_dir: str | Path, number: int) -> Path:
    """The directory of trial ``number`` in a run directory (its exports, checkpoints, failure reason)."""
    return Path(run_dir) / "trials" / f"{number:05d}"


FAILURE_FILE = "failure.txt"
#: Where Python's fault handler writes when the worker dies of a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGABRT,
#: SIGILL): Ray's own text is the same for every death, so the driver reads the signal from here.
FAULT_FILE = "fault.txt"
#: The traceback of a trial's failure (the worker's exception, or Ray's full text for a death).
TRACEBACK_FILE = "traceback.txt"
CHECKPOINT_DIR = "checkpoint"
#: Where a trial's model is exported to estimate objectives at a rung (replaced at each rung).
RUNG_DIR = "rung"


#: Where PBT keeps copies of a trial's checkpoint at its interval steps (``pbt/000004``): what another trial may copy.
#: They outlive the trial (a later trial may copy a finished one); PBT drops those that rank too low to be copied.
PBT_DIR = "pbt"


def _replace_dir(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source``; a crash leaves the old ``target`` or the new one, and a stale copy."""
    tmp = target.with_name(target.name + ".copying")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def keep_snapshot(run_dir: str | Path, number: int, step: int) -> bool:
    """Copy trial ``number``'s checkpoint (of budget step ``step``) to ``pbt/``; False when it has none.

    Called in the driver while the trial's worker waits in its report of ``step`` (Tune's function API
    reports synchronously), so the checkpoint is the one saved just before that report.
    """
    source = trial_dir(run_dir, number) / CHECKPOINT_DIR
    if not source.is_dir():
        return False
    _replace_dir(source, trial_dir(run_dir, number) / PBT_DIR / f"{step:06d}")
    return True


#: A PBT exploit's copy of the donor's checkpoint, complete, waiting for the store to record the exploit:
#: ``trials/N/checkpoint.from-DONOR-STEP``. Its name says which exploit it is (see :func:`repair_adoptions`).
ADOPTING = CHECKPOINT_DIR + ".from-{donor:05d}-{step:06d}"
_ADOPTING = re.compile(r"checkpoint\.from-(\d{5,})-(\d{6,})")


def stage_adoption(run_dir: str | Path, donor: int, step: int, number: int) -> Path:
    """Copy ``donor``'s kept checkpoint of ``step`` beside trial ``number``'s (the trial's own stays until
    :func:`finish_adoption`); a crash leaves no staged copy or a complete one."""
    target = trial_dir(run_dir, number) / ADOPTING.format(donor=donor, step=step)
    _replace_dir(trial_dir(run_dir, donor) / PBT_DIR / f"{step:06d}", target)
    return target


def finish_adoption(staged: Path) -> None:
    """The staged copy (:func:`stage_adoption`) becomes its trial's checkpoint (after the store recorded the exploit);
    a crash in between leaves the staged copy, which :func:`repair_adoptions` swaps in."""
    shutil.rmtree(staged.parent / CHECKPOINT_DIR, ignore_errors=True)
    staged.rename(staged.parent / CHECKPOINT_DIR)


def repair_adoptions(run_dir: str | Path, last_exploit: Callable[[int], tuple[int, int] | None]) -> list[int]:
    """After a driver was killed in the middle of a PBT exploit: make each trial's checkpoint agree with the store.

    The driver stages the donor's copy, records the exploit (lineage, new config) in the store, then swaps the
    copy in. A staged copy whose exploit the store recorded (``last_exploit(number)``: the (donor, step) of the
    trial's last lineage entry) is swapped in now; one the store did not record is removed, so the trial goes on
    from its own checkpoint with its own config, as if never exploited. Returns the trials swapped in.
    """
    finished = []
    for staged in sorted(Path(run_dir).glob(f"trials/*/{CHECKPOINT_DIR}.from-*")):
        match = _ADOPTING.fullmatch(staged.name)
        if match is None or not staged.parent.name.isdigit():  # a half-made copy (``.copying``): never recorded
            shutil.rmtree(staged, ignore_errors=True)
            continue
        number = int(staged.parent.name)
        if last_exploit(number) == (int(match[1]), int(match[2])):
            finish_adoption(staged)
            finished.append(number)
        else:
            shutil.rmtree(staged, ignore_errors=True)
    return finished


def drop_snapshot(run_dir: str | Path, number: int, step: int) -> None:
    shutil.rmtree(trial_dir(run_dir, number) / PBT_DIR / f"{step:06d}", ignore_errors=True)


def remove_restart_files(directory: Path) -> None:
    """Drop what a trial keeps only to go on (its checkpoint, its rung export): disk stays bounded."""
    shutil.rmtree(directory / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(directory / RUNG_DIR, ignore_errors=True)


#: The reason a trial still running when the wall-time budget ends leaves (recorded as stopped, best step kept).
DEADLINE_REASON = "stopped when the wall-time budget ran out"

#: The file (in the run directory) where the driver keeps the value a trial must reach to export its model.
EXPORT_BAR = "export-bar.json"


def trial_context(task: Task, seed: int, number: int, data: Splits | None, run_dir: str | Path,
                  cpus: float = 1.0, gpus: float = 0.0, deadline: float | None = None) -> TrialContext:
    """The context of trial ``number`` of a search seeded ``seed``: the one place a :class:`TrialContext` is made.

    Its seed is the search's seed plus the trial number, its directory :func:`trial_dir`; the worker
    (:meth:`Job.context`), the ensemble trial and a trial's trainer built again after the search
    (:meth:`automl.plan.Plan.trial_context`) all get theirs here, so they cannot disagree.
    """
    return TrialContext(task, seed + number, data, trial_dir(run_dir, number), cpus, gpus,  # type: ignore[arg-type]
                        deadline)
