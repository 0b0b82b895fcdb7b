"""The trial function and what it calls: fit step by step, report, checkpoint, compress, export, measure.

Runs in the Ray worker process of each trial (``run_trial`` is the function Tune runs; the driver imports
this module only to hand it to Tune). It never writes the store: it reports to Tune, and the driver-side
:class:`automl.recorder.Recorder` records each report. What it shares with the driver (the job, the
reserved result keys, the trial directory's files) is in :mod:`automl.trial_job`.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import inspect
import json
import math
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ray import tune

from automl.data import Splits
from automl.errors import TrialError
from automl.interfaces import UNCOMPRESSED, Compressor, Trainer, TrialContext, split_config
from automl.measure import measure_artifact
from automl.records import estimate_key
from automl.trial_job import (
    ARTIFACT,
    BUDGET,
    CHECKPOINT_DIR,
    DEADLINE_REASON,
    ERROR,
    EXPORT_BAR,
    FAILURE_FILE,
    FAULT_FILE,
    FINAL,
    MEASURED_AS,
    NODE,
    NUMBER,
    RUNG_DIR,
    TIMINGS,
    TRACEBACK_FILE,
    Job,
    node_id,
    trial_dir,
)

__all__ = ["compress", "run_trial"]


def _finite(metrics: Mapping[str, float], where: str) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = float(value)
        if not math.isfinite(value):
            raise TrialError(f"metric {key!r} is {value} {where}")
        out[key] = value
    return out


def _rung_metrics(trainer: Trainer, directory: Path, job: Job) -> dict[str, float]:
    """Latency/size estimates at a rung: the trainer's own cheap estimates, else a quick export measured.

    Reported as ``latency_ms_estimate`` / ``size_bytes_estimate``: neither is a measurement of a model the
    trial keeps (an estimate is of the network in training; the quick export is replaced at the next rung),
    so a stopped trial never shows one as its measured ``latency_ms`` / ``size_bytes``.
    """
    out = {k: float(v) for k, v in trainer.rung_estimates(job.rung_metrics).items() if k in job.rung_metrics}
    missing = [m for m in job.rung_metrics if m not in out]
    if missing:
        out.update(measure_artifact(trainer, trainer.export(directory), job, missing, quick=True))
    return {estimate_key(k): v for k, v in out.items()}


def _fail(directory: Path, reason: str) -> None:
    """Leave the reason where the driver finds it, whatever becomes of this process."""
    with contextlib.suppress(OSError):
        (directory / FAILURE_FILE).write_text(reason)


def _watchdog(directory: Path, seconds: float, reason: str) -> threading.Timer:
    """End the trial after ``seconds`` with ``reason``: a step cannot be interrupted from inside, so the worker exits.

    Used for ``trial_timeout`` (the trial fails) and for the wall-time budget: Tune lets a running
    trial finish its step for up to 10 s after the experiment's time budget, and a fit step can
    take far longer, so the search would end late.
    """

    def fire() -> None:
        _fail(directory, reason)
        os._exit(3)

    timer = threading.Timer(max(0.0, seconds), fire)
    timer.daemon = True
    timer.start()
    return timer


def compress(
    trainer: Trainer, compressors: Sequence[tuple[str, Compressor]], directory: Path, *, test: bool
) -> tuple[Path, dict[str, float]]:
    """Compress a trained model, export it and score what is exported.

    Runs every ``compress_model`` in order, evaluates the model in memory, exports it, runs
    every ``compress_artifact`` in order on the file; when one rewrote the file, the metrics
    are the file's own (``trainer.evaluate_artifact``).

    Returns:
        The final artifact and its metrics: the validation metrics, ``test_<metric>`` when
        ``test``, and each compressor's own metrics.

    Raises:
        TrialError: When a metric is NaN or infinite after compression.
    """
    names = ", ".join(name for name, _ in compressors)
    for _, compressor in compressors:
        compressor.compress_model(trainer)
    valid = _finite(trainer.evaluate("valid"), f"after compression ({names})")
    tested = trainer.evaluate("test") if test else {}
    artifact = trainer.export(directory)
    rewritten = False
    for _, compressor in compressors:
        new = compressor.compress_artifact(trainer, artifact)
        if new is not None:
            artifact, rewritten = Path(new), True
    if rewritten:
        valid = _finite(trainer.evaluate_artifact(artifact, "valid"), f"on the compressed file {artifact.name} ({names})")
        if test:
            tested = trainer.evaluate_artifact(artifact, "test")
    out = {**valid, **{f"test_{k}": float(v) for k, v in tested.items()}}
    for name, compressor in compressors:
        out.update(_finite(compressor.metrics(), f"reported by compressor {name!r}"))
    return artifact, out


def run_trial(config: dict[str, Any], data: Splits | None = None, job: Job | None = None) -> None:
    """One trial inside a Ray worker: fit step by step, report, checkpoint, export, measure.

    A failure (an exception, a NaN or infinite metric, an objective metric the trainer did not
    report, a timeout, ``sys.exit``, ``os._exit``, KeyboardInterrupt) writes its one-line reason
    to ``failure.txt`` in the trial directory and ends the trial with an error, so Tune retries
    it when the spec allows and the driver records the reason; with ``job.report_failures`` (no
    retry to make) an exception is instead the trial's last report (``{ERROR: reason}``), so that
    this worker goes on to the next trial; a fatal signal leaves Python's
    fault report in ``fault.txt``. A trial restarted after a failure or a resume continues from
    its last checkpoint when the trainer saves them. The checkpoint stays until the driver has
    recorded the trial's end (:meth:`automl.recorder.Recorder._end_for_good` removes it): a
    driver killed before that re-issues the trial from its last checkpoint, not from step 1.
    """
    assert job is not None  # always bound by tune.with_parameters
    for entry in job.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    config = dict(config)
    number = int(config.pop(NUMBER))
    directory = trial_dir(job.run_dir, number)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / FAILURE_FILE).unlink(missing_ok=True)
    context = job.context(number, data)
    # The trainer never sees the compressors' entries (`prune.amount`); each compressor gets its own.
    trainer_config, compressor_config = split_config(config, [name for name, _, _ in job.compressors])
    with _death_notes(directory):
        timers = _watchdogs(directory, job)
        try:
            _run(job, data, trainer_config, compressor_config, directory, context)
        except Exception as exc:  # any trial failure is data for the store, not a crash
            error = _failed(directory, exc)
            if not job.report_failures or not _worker_sound(exc):
                raise error from None  # Tune retries the trial (or replaces the worker) on an error
            # The failure is the trial's last report and the worker lives on: Tune never reuses the worker of a
            # trial that raised, and a new one costs a process start and the imports again (~2.3 s per failed
            # trial measured here, benchmarks/README.md "Engine overhead"). The driver records it failed (Recorder).
            tune.report({ERROR: str(error)})
            return
        except SystemExit as exc:
            if not exc.code:  # Tune's own way to stop a trial (sys.exit(0) inside tune.report)
                raise
            raise _failed(directory, exc) from None
        except KeyboardInterrupt as exc:  # not the driver's Ctrl-C (the driver handles its own): the trial's
            raise _failed(directory, exc) from None
        finally:
            for timer in timers:
                timer.cancel()


def _run(job: Job, data: Splits | None, trainer_config: dict[str, Any], compressor_config: Mapping[str, Any],
         directory: Path, context: TrialContext) -> None:
    """The trial's work: fit, check, export, measure, report (``run_trial`` turns what it raises into the reason)."""
    clock = _Timings()
    trainer = job.trainer(trainer_config, job.params, context)
    metrics, steps = _fit(trainer, directory, job, clock)
    _check_required(job, metrics, steps)
    final: dict[str, Any] = dict(metrics)
    test = data is not None and len(data.test) > 0
    if test:
        final.update({f"test_{k}": v for k, v in trainer.evaluate("test").items()})
    skip = _below_export_bar(job, final)
    # The checkpoint is kept past the final report: the driver removes it once it has recorded the end.
    if skip is not None:  # far from the best: its metrics are kept, its model is not written
        tune.report({**final, BUDGET: steps, FINAL: True, TIMINGS: clock.timings(), MEASURED_AS: {"model": skip},
                     NODE: node_id()})
        return
    measured_as: dict[str, str] = {}
    artifact, final = _export(trainer, directory, job, context, compressor_config, final, test, clock)
    if job.measured:
        with clock.count("measure_s"):
            final.update(measure_artifact(trainer, artifact, job, ("size_bytes", "latency_ms"), quick=False,
                                          how=measured_as))
    if job.predictions:
        _save_predictions(trainer, directory, test)
    tune.report({**final, BUDGET: steps, FINAL: True, ARTIFACT: str(artifact), TIMINGS: clock.timings(), NODE: node_id(),
                 MEASURED_AS: measured_as})


def _check_required(job: Job, metrics: Mapping[str, float], steps: int) -> None:
    """Fail a trial whose trainer did not report an objective's metric (it would complete without a value)."""
    missing = [m for m in job.required if m not in metrics]
    if not missing:
        return
    reported = ", ".join(sorted(metrics)) if metrics else "nothing"
    names = ", ".join(missing)
    raise TrialError(f"objective {names} missing: the trainer reported {reported} after budget step {steps}")


@contextlib.contextmanager
def _death_notes(directory: Path) -> Iterator[None]:
    """While the trial runs, leave a note of how its worker dies where the driver finds it.

    Ray reports every death of a worker with the same text ("connection error code 2. End of
    file"), whether it exited, segfaulted or was killed. So: Python's fault handler writes a
    fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL) with the trial's stack to
    ``fault.txt``, and ``os._exit`` called by the trial's code leaves its exit code in
    ``failure.txt`` before exiting. What is left without a note is a signal no process can
    catch (SIGKILL: the kernel's OOM killer, ``kill -9``) or an exit from native code.
    """
    fault = directory / FAULT_FILE
    fault.unlink(missing_ok=True)
    was_enabled = faulthandler.is_enabled()
    real_exit = os._exit
    with open(fault, "w") as handle:
        faulthandler.enable(file=handle, all_threads=False)

        def noted_exit(code: int) -> None:
            caller = sys._getframe(1)
            if "/ray/" not in caller.f_code.co_filename.replace(os.sep, "/"):  # Ray's own exits are not the trial's
                where = f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno} in {caller.f_code.co_name}"
                if not (directory / FAILURE_FILE).exists():  # a watchdog's reason, written first, stays
                    _fail(directory, f"the trial's code called os._exit({code}) at {where}: its worker exited "
                                     f"with code {code}")
            real_exit(code)

        os._exit = noted_exit  # type: ignore[assignment]  # restored below: the worker may run another trial
        try:
            yield
        finally:
            os._exit = real_exit
            faulthandler.disable()
            if was_enabled:  # back to the process's stderr (Ray's worker wraps sys.stderr in an object without a fd)
                with contextlib.suppress(Exception):
                    faulthandler.enable(file=sys.__stderr__ or 2)
    if fault.stat().st_size == 0:
        fault.unlink(missing_ok=True)


class _Timings:
    """Where a trial's seconds went: fitting, exporting (compression included), measuring, the rest."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.spent = {"fit_s": 0.0, "export_s": 0.0, "measure_s": 0.0}

    @contextlib.contextmanager
    def count(self, key: str) -> Iterator[None]:
        mark = time.perf_counter()
        try:
            yield
        finally:
            self.spent[key] += time.perf_counter() - mark

    def timings(self) -> dict[str, float]:
        total = time.perf_counter() - self.began
        return {**self.spent, "other_s": max(0.0, total - sum(self.spent.values())), "total_s": total}


def _watchdogs(directory: Path, job: Job) -> list[threading.Timer]:
    """The trial's timeout and the search's wall-time deadline, each ending the worker when it comes."""
    timers = []
    if job.trial_timeout:
        timers.append(_watchdog(directory, job.trial_timeout, f"exceeded trial_timeout of {job.trial_timeout:g}s"))
    if job.deadline is not None:
        timers.append(_watchdog(directory, job.deadline - time.time(), DEADLINE_REASON))
    return timers


def _fit(trainer: Trainer, directory: Path, job: Job, clock: _Timings) -> tuple[dict[str, float], int]:
    """Run the budget steps (from the last checkpoint, if any), reporting and checkpointing each but the last.

    Returns:
        The validation metrics after the last step, and the last step trained: the trial's budget steps, or
        fewer when the trainer stopped early (patience), so the stored budget is the budget trained.
    """
    checkpoint = directory / CHECKPOINT_DIR
    steps = int(trainer.budget_steps)
    start = 1
    if checkpoint.is_dir():
        with contextlib.suppress(NotImplementedError):
            start = int(trainer.load_checkpoint(checkpoint)) + 1
    if 1 < start <= steps:
        # A step's checkpoint is saved before its report: a driver killed in between never recorded that step. Its
        # metrics again, restored (the store keeps one row per step: a step it has is not doubled).
        tune.report({**_finite(trainer.evaluate("valid"), f"after budget step {start - 1} (restored)"),
                     BUDGET: start - 1})
    metrics: dict[str, float] = {}
    ran = last = 0
    # Closed explicitly: a trainer whose steps run elsewhere (DDP workers) stops them as soon as
    # anything here raises, not when the generator happens to be collected.
    steps_iter = trainer.run_steps(start)
    try:
        mark = time.perf_counter()
        for step in steps_iter:
            ran, last = ran + 1, int(step)
            metrics = _finite(trainer.evaluate("valid"), f"after budget step {step}")
            clock.spent["fit_s"] += time.perf_counter() - mark
            if step < steps:
                extra = {}
                # Exporting and timing the model costs more than an epoch of a small network: only
                # where the scheduler decides (and at the first step after a restart, which may be one).
                if job.rung_metrics and (not job.rung_steps or step in job.rung_steps or step == start):
                    with clock.count("measure_s"):
                        extra = _rung_metrics(trainer, directory / RUNG_DIR, job)
                _save_checkpoint(trainer, checkpoint, step)
                tune.report({**metrics, **extra, BUDGET: step, NODE: node_id()})
            mark = time.perf_counter()
    finally:
        close = getattr(steps_iter, "close", None)
        if close is not None:
            close()
    if not ran:  # ran steps that report nothing ({}) are the objective check's to name
        raise TrialError("the trainer ran no budget step")
    return metrics, last


def _export(trainer: Trainer, directory: Path, job: Job, context: TrialContext, compressor_config: Mapping[str, Any],
            final: dict[str, Any], test: bool, clock: _Timings) -> tuple[Path, dict[str, Any]]:
    """Export the fitted model (compressed first when the spec compresses): the file and the trial's metrics."""
    if not job.compressors:
        with clock.count("export_s"):
            return trainer.export(directory), final
    compressors = [(name, factory({**fixed, **compressor_config[name]}, context))
                   for name, factory, fixed in job.compressors]
    before = {f"{k}{UNCOMPRESSED}": v for k, v in final.items()}
    with clock.count("export_s"):  # compression included
        artifact, after = compress(trainer, compressors, directory, test=test)
    return artifact, {**before, **after}


def _worker_sound(exc: BaseException) -> bool:
    """Whether the worker may run another trial after ``exc``: not after running out of memory, nor after an
    error of the GPU's runtime (a CUDA error can leave the process's device context unusable)."""
    if isinstance(exc, MemoryError):
        return False
    text = f"{type(exc).__name__} {exc}"
    return not any(word in text for word in ("CUDA", "cuDNN", "CUBLAS", "NCCL", "AcceleratorError", "device-side"))


def _failed(directory: Path, exc: BaseException) -> TrialError:
    """Leave a failed trial's one-line reason and traceback in its directory; the error that ends the trial."""
    reason = _reason(exc)
    if len(reason) > MAX_REASON:  # the store keeps a line; the whole message is in the traceback file
        reason = f"{reason[:MAX_REASON - 60]}... (in full: trials/{directory.name}/{TRACEBACK_FILE})"
    _fail(directory, reason)
    with contextlib.suppress(OSError):
        (directory / TRACEBACK_FILE).write_text(traceback.format_exc(limit=30))
    return TrialError(reason)


#: The longest reason a trial's store row gets (a longer message is cut, with where the whole one is).
MAX_REASON = 500


def _reason(exc: BaseException) -> str:
    """One line saying why the trial ended: the exception and its message, or where it came from without one."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno} in {tb[-1].name}" if tb else ""
    if isinstance(exc, SystemExit):
        return f"the trial's code called sys.exit({exc.code!r}){where}"
    if isinstance(exc, KeyboardInterrupt):
        return f"KeyboardInterrupt in the trial's worker (SIGINT, or raised by the trial's code){where}"
    text = str(exc).strip()
    if isinstance(exc, TrialError) and text:
        return text.splitlines()[0][:2000]
    name = type(exc).__name__
    if not text or text in ("{}", "[]", "()", "''", '""', "None"):  # says nothing: say where it was raised
        return f"{name}{': ' + text if text else ''} (no message){where}"
    return f"{name}: {text.splitlines()[0]}"[:2000]


def _below_export_bar(job: Job, metrics: Mapping[str, Any]) -> str | None:
    """Why this trial does not export its model (``models.export: top``), or None when it does."""
    if job.export_top is None:
        return None
    metric, mode, top = job.export_top
    value = metrics.get(metric)
    try:
        bar = json.loads((Path(job.run_dir) / EXPORT_BAR).read_text())["value"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # fewer than `top` trials completed so far (or a bar being written): export
    if value is None or bar is None:
        return None
    worse = float(value) < float(bar) if mode == "max" else float(value) > float(bar)
    if not worse:
        return None
    return f"not exported: {metric} {float(value):.6g} is not among the {top} best completed so far ({float(bar):.6g})"


def _save_predictions(trainer: Trainer, directory: Path, test: bool) -> None:
    """Save the trainer's predictions for the ensemble step; a trainer that cannot costs the trial nothing.

    The trial stays completed whatever happens here: the reason is left in a file for the
    ensemble step's summary, and the trial is simply no ensemble candidate.
    """
    from automl.ensemble import PREDICTIONS, PREDICTIONS_ERROR, save_predictions

    for stale in (PREDICTIONS_ERROR, PREDICTIONS.format(split="valid"), PREDICTIONS.format(split="test")):
        (directory / stale).unlink(missing_ok=True)  # from an earlier attempt of this trial

    for split in ("valid", "test") if test else ("valid",):
        try:
            values = trainer.predictions(split)  # type: ignore[arg-type]
            if values is not None:
                save_predictions(directory, split, values)
        except Exception as exc:  # any trainer error: the trial keeps its result
            with contextlib.suppress(OSError):
                (directory / PREDICTIONS.format(split=split)).unlink(missing_ok=True)
                (directory / PREDICTIONS_ERROR).write_text(f"{split}: {type(exc).__name__}: {exc}"[:2000])
            return


@functools.cache
def _takes_step(cls: type[Trainer]) -> bool:
    """Whether ``cls.save_checkpoint`` takes ``step`` (asked once per trainer class).

    A trainer written for 0.1, ``save_checkpoint(self, directory)``, is called without it.
    """
    try:
        parameters = inspect.signature(cls.save_checkpoint).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): call it the 0.1 way
        return False
    return any(p.name == "step" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.kind == p.VAR_KEYWORD
               for p in parameters)


def _save_checkpoint(trainer: Trainer, checkpoint: Path, step: int) -> None:
    """Save after budget step ``step`` atomically: a crash while saving leaves the previous checkpoint intact."""
    tmp = checkpoint.with_name(CHECKPOINT_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    saved = trainer.save_checkpoint(tmp, step=step) if _takes_step(type(trainer)) else trainer.save_checkpoint(tmp)
    if saved:
        shutil.rmtree(checkpoint, ignore_errors=True)
        tmp.rename(checkpoint)
    else:
        shutil.rmtree(tmp, ignore_errors=True)

