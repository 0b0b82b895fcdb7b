"""The driver's record of a search: the Tune callback that writes each trial event to the store
(:class:`Recorder`), the progress counts it keeps, and the stopper that ends a search at its target.

Runs in the driver process: Tune calls the callback and the stopper there, and workers never write the
store. What it shares with the trial workers is in :mod:`automl.trial_job`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from automl.interfaces import Objective
from automl.records import LineageEntry, TrialRecord
from automl.searcher_adapter import SearcherAdapter, metrics_of, outcome_of
from automl.trial_job import (
    ARTIFACT,
    BUDGET,
    DEADLINE_REASON,
    ERROR,
    EXPORT_BAR,
    FAILURE_FILE,
    FAULT_FILE,
    FINAL,
    MEASURED_AS,
    NODE,
    NUMBER,
    PBT_DIR,
    TIMINGS,
    drop_snapshot,
    finish_adoption,
    keep_snapshot,
    remove_restart_files,
    repair_adoptions,
    stage_adoption,
    trial_dir,
)

__all__ = ["Counts", "Recorder", "TargetStopper", "best_step", "death_reason"]

log = logging.getLogger("automl")

#: Ray's full text for a trial whose worker died, kept in the trial's directory (the store holds one line).
RAY_ERROR_FILE = "ray_error.txt"


@dataclass
class Counts:
    """What the progress display shows."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    stopped: int = 0
    paused: int = 0
    best: float | None = None
    best_number: int | None = None
    started: float = field(default_factory=time.time)


class TargetStopper(tune.Stopper):
    """Ends the whole search once a completed trial reaches ``budget.target`` (read from :class:`Counts`)."""

    def __init__(self, counts: Counts, primary: Objective, target: float) -> None:
        self.counts = counts
        self.primary = primary
        self.target = target

    def __getstate__(self) -> dict[str, Any]:
        # Tune saves its stopper with the experiment state; the live counts are rebuilt on resume.
        return {**self.__dict__, "counts": Counts(total=self.counts.total)}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # single trials end by their budget or the scheduler

    def stop_all(self) -> bool:
        best = self.counts.best
        return best is not None and self.primary.to_min(best) <= self.primary.to_min(self.target)


class Recorder(tune.Callback):
    """Driver side: writes each trial event to the store as it arrives, then notifies plugins."""

    def __init__(
        self, store: Any, run_id: int, *, run_dir: Path, metric_keys: set[str], primary: Objective, max_budget: int,
        notify: Callable[[TrialRecord], None], counts: Counts, adapter: SearcherAdapter,
        on_progress: Callable[[Counts], None] | None = None, rungs: Any = None, export_top: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        #: The search's seed: trial N's is ``seed + N`` (:func:`automl.trial_job.trial_context`), stored with it.
        self.seed = seed
        #: ``models.export: top``: keep :data:`EXPORT_BAR` at the ``export_top``-th best completed value.
        self.export_top = export_top
        self.values: list[float] = []
        self.run_dir = run_dir
        self.metric_keys = metric_keys
        self.primary = primary
        self.max_budget = max_budget
        self.notify = notify
        self.counts = counts
        self.adapter = adapter
        self.on_progress = on_progress
        #: A promotion-type :class:`~automl.schedulers.RungScheduler`: tells a pause from a stop.
        self.rungs = rungs
        self.first_start: float | None = None
        self.finished: set[int] = set()
        #: Each running trial's last step report (a failure the worker reports replaces Tune's last result).
        self.last_step: dict[int, dict[str, Any]] = {}
        self.recovered: set[int] = set()
        #: When each trial's current run began (a promoted trial runs in several pieces).
        self.segment: dict[int, float] = {}
        #: The Ray node each trial last reported from (stored once per trial and node).
        self.nodes: dict[int, str] = {}
        if hasattr(rungs, "bind"):  # PBT: its checkpoint copies, exploits and lineage go through the driver's record
            rungs.bind(lambda n, step: keep_snapshot(run_dir, n, step), self._exploited,
                       lambda n, step: drop_snapshot(run_dir, n, step), self._config_at)
            repair_adoptions(run_dir, self._last_exploit)  # an exploit a killed driver left half done

    def _last_exploit(self, number: int) -> tuple[int, int] | None:
        """The (donor, step) of trial ``number``'s last stored PBT exploit, None without one."""
        row = self.store.trial(self.run_id, number)
        return (row.lineage[-1].donor, row.lineage[-1].step) if row is not None and row.lineage else None

    def _config_at(self, number: int, step: int) -> dict[str, Any] | None:
        """PBT after a resume: trial ``number``'s config when it reached ``step`` (from its lineage), if its kept
        checkpoint of that step is there."""
        if not (trial_dir(self.run_dir, number) / PBT_DIR / f"{step:06d}").is_dir():
            return None
        row = self.store.trial(self.run_id, number)
        if row is None:
            return None
        before = [e for e in row.lineage if e.step < step]
        if before:
            return dict(before[-1].config)
        return dict(row.lineage[0].previous) if row.lineage else dict(row.config)

    def _exploited(self, exploit: Any) -> None:
        """PBT's exploit of a trial (:class:`automl.schedulers.Exploit`): the donor's checkpoint becomes the
        trial's, its lineage and new config are stored, and the searcher adapter re-issues it with that config."""
        number = exploit.number
        # Copy, record, swap: a driver killed before the store write leaves the trial its own checkpoint and config
        # (the staged copy is removed on resume), one killed after it a staged copy the resume swaps in
        # (repair_adoptions): the store's lineage and the checkpoint the trial goes on from always agree.
        staged = stage_adoption(self.run_dir, exploit.donor, exploit.step, number)
        row = self.store.trial(self.run_id, number)
        entry = LineageEntry(exploit.donor, exploit.step, dict(exploit.config),
                             dict(exploit.previous or (row.config if row else {})), time.time())
        lineage = [*(e.to_dict() for e in (row.lineage if row else ())), entry.to_dict()]
        self.store.save_trial(self.run_id, number, config=dict(exploit.config), lineage=lineage)
        finish_adoption(staged)
        self.adapter.configs[number] = dict(exploit.config)
        log.info("automl: pbt: trial %d goes on from trial %d's step %d with %s", number, exploit.donor, exploit.step,
                 exploit.config)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the store, the plugin
        # notifier and the progress display are live objects (our resume builds new ones).
        state = dict(self.__dict__)
        for key in ("store", "notify", "on_progress", "adapter", "rungs"):
            state[key] = None
        return state

    def _number(self, trial: Any) -> int:
        return int(trial.config[NUMBER])

    def _config(self, trial: Any) -> dict[str, Any]:
        return {k: v for k, v in trial.config.items() if k != NUMBER}

    def _emit(self, number: int) -> None:
        row = self.store.trial(self.run_id, number)
        if row:
            self.notify(row)
        if self.on_progress:
            self.on_progress(self.counts)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.adapter.maybe_flush()

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        now = time.time()
        self.first_start = self.first_start or now
        number = self._number(trial)
        row = self.store.trial(self.run_id, number)
        self.segment[number] = now
        self.counts.running += 1
        if row and row.status == "paused":  # promoted: the same trial goes on from its checkpoint
            self.counts.paused = max(0, self.counts.paused - 1)
            self.store.save_trial(self.run_id, number, tune_id=trial.trial_id, status="running")
            self._emit(number)
            return
        if number in self.recovered:  # a retry: counted by on_trial_recover
            attempts = int(row.attempts or 1) if row else 1
        else:  # first start, or a restart of a trial a killed driver left behind
            attempts = int(row.attempts or 1) + 1 if row and row.started_at else 1
        seeded = {"seed": self.seed + number} if self.seed is not None else {}
        self.store.save_trial(
            self.run_id, number, tune_id=trial.trial_id, status="running", config=self._config(trial),
            started_at=now, max_budget=self.max_budget, attempts=attempts, **seeded,
        )
        self._emit(number)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        if result.get(FINAL) or result.get(ERROR):
            return  # recorded once, at completion (a failure reported by the worker too)
        number = self._number(trial)
        self.last_step[number] = result
        self.store.add_step(self.run_id, number, int(result.get(BUDGET, 0)), metrics_of(result, self.metric_keys))
        node = result.get(NODE)
        if node and self.nodes.get(number) != node:  # a retry on another node moves it
            self.nodes[number] = str(node)
            self.store.save_trial(self.run_id, number, node=str(node))
        self._emit(number)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        number = self._number(trial)
        row = self.store.trial(self.run_id, number)
        self.recovered.add(number)
        self.counts.running = max(0, self.counts.running - 1)  # its worker ended; the restart counts it again
        reason = self._failure(trial)
        log.warning("automl: trial %d failed, retrying: %s", number, reason)
        self.store.save_trial(self.run_id, number, attempts=(int(row.attempts or 1) if row else 1) + 1,
                              error=f"retrying after: {reason}", **self._config_if_missing(trial, row))
        self._emit(number)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get(ERROR):  # a failure the worker reported and outlived (automl.trial_worker.run_trial)
            self._failed(trial, str(result[ERROR]))
            return
        outcome = outcome_of(self._number(trial), self._config(trial), result, False, self.max_budget)
        self._finish(trial, outcome.status, result, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        reason = self._failure(trial)
        if reason == DEADLINE_REASON:  # not the trial's fault: stopped, and its best step is kept
            self._finish(trial, "stopped", trial.last_result or {}, reason)
            best = best_step(self.store.steps(self.run_id, self._number(trial)), self.primary)
            if best:
                self.store.save_trial(self.run_id, self._number(trial), **best)
            return
        self._failed(trial, reason)

    def _failed(self, trial: Any, reason: str) -> None:
        """Record the trial failed with ``reason``, with its last step's budget and metrics."""
        log.warning("automl: trial %d failed: %s", self._number(trial), reason)
        last = trial.last_result or {}
        self._finish(trial, "failed", self.last_step.get(self._number(trial), {}) if last.get(ERROR) else last, reason)

    def _failure(self, trial: Any) -> str:
        """The trial's one-line reason: its worker's own, else the signal it died of, else Ray's text condensed
        (with where Ray's full text is)."""
        directory = trial_dir(self.run_dir, self._number(trial))
        with contextlib.suppress(OSError):
            text = (directory / FAILURE_FILE).read_text().strip()
            if text:
                return text
        ray_text = ""
        with contextlib.suppress(OSError, TypeError):
            ray_text = Path(trial.error_file).read_text() if trial.error_file else ""
        fault = ""
        with contextlib.suppress(OSError):
            fault = (directory / FAULT_FILE).read_text()
        reason = death_reason(ray_text, fault)
        if ray_text and reason != ray_text.strip():
            # Kept in the trial's directory: Tune writes it under Ray's session directory, which does not last.
            full = directory / RAY_ERROR_FILE
            with contextlib.suppress(OSError):
                directory.mkdir(parents=True, exist_ok=True)
                full.write_text(ray_text)
                reason = f"{reason} (Ray's full text: {full.relative_to(self.run_dir)})"
        return reason

    def _config_if_missing(self, trial: Any, row: TrialRecord | None) -> dict[str, Any]:
        """``config`` for a row without one: a trial's config is stored whatever ends it (Ray's memory killer too)."""
        return {} if row is not None and row.config else {"config": self._config(trial)}

    def _finish(self, trial: Any, status: str, result: Mapping[str, Any], error: str | None) -> None:
        number = self._number(trial)
        if number in self.finished:
            return
        paused = status == "stopped" and self.rungs is not None and number in self.rungs.paused
        if not paused:
            self.finished.add(number)
        self.last_step.pop(number, None)
        now = time.time()
        metrics = metrics_of(result, self.metric_keys) if not result.get(ERROR) else {}
        budget = int(result.get(BUDGET, 0) or 0)
        if status == "completed":
            self.store.add_step(self.run_id, number, budget, metrics, status=status)
        fields: dict[str, Any] = {"status": "paused" if paused else status, "finished_at": now, "budget": budget}
        if metrics:
            fields["metrics"] = metrics
        fields["error"] = error
        if ARTIFACT in result:
            fields["artifact"] = str(result[ARTIFACT])
        if isinstance(result.get(TIMINGS), Mapping):
            fields["timings"] = dict(result[TIMINGS])
        if result.get(NODE):
            fields["node"] = str(result[NODE])
        if isinstance(result.get(MEASURED_AS), Mapping):
            fields["measured_as"] = dict(result[MEASURED_AS])
        row = self.store.trial(self.run_id, number)
        fields.update(self._config_if_missing(trial, row))
        began = self.segment.pop(number, row.started_at if row else None)
        if began:  # the time it ran: a promoted trial's pieces add up, its time paused does not
            fields["duration"] = float((row.duration if row else None) or 0.0) + now - began
        self.store.save_trial(self.run_id, number, **fields)
        c = self.counts
        c.running = max(0, c.running - 1)
        if paused:  # its checkpoint stays: a promotion continues from it
            c.paused += 1
        else:
            self._end_for_good(number, status)
        value = metrics.get(self.primary.metric)
        better = c.best is None or (value is not None and self.primary.to_min(value) < self.primary.to_min(c.best))
        if status == "completed" and value is not None and better:
            c.best, c.best_number = value, number
        if status == "completed" and value is not None:
            self.note_completed(float(value))
        if self.rungs is not None:
            for dropped in self.rungs.take_dropped():
                if dropped != number and dropped not in self.finished:
                    self.finished.add(dropped)
                    self.store.save_trial(self.run_id, dropped, status="stopped", error=(
                        f"paused, then stopped for good: not promoted, and only {self.rungs.max_paused} paused "
                        "trials keep their checkpoints (scheduler option max_paused)"))
                    c.paused = max(0, c.paused - 1)
                    self._end_for_good(dropped, "stopped")
                    self._emit(dropped)  # plugins are told of every early stop, this one too
        self._emit(number)

    def note_completed(self, value: float) -> None:
        """Count a completed trial's primary value; rewrite the export bar once ``export_top`` trials completed."""
        if self.export_top is None or not math.isfinite(value):
            return
        self.values.append(value)
        if len(self.values) < self.export_top:
            return
        ranked = sorted(self.values, key=self.primary.to_min)
        bar = ranked[self.export_top - 1]
        path = self.run_dir / EXPORT_BAR
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"metric": self.primary.metric, "value": bar}))
        os.replace(tmp, path)  # a worker never reads half a file

    def _end_for_good(self, number: int, status: str) -> None:
        """A trial ended for good: its checkpoints go (they only serve a restart; disk stays bounded)."""
        remove_restart_files(trial_dir(self.run_dir, number))
        c = self.counts
        c.done += 1
        if status == "failed":
            c.failed += 1
        elif status == "stopped":
            c.stopped += 1


#: Python's fault handler's words for the fatal signals it reports (``fault.txt``).
_FATAL = {"Segmentation fault": "SIGSEGV", "Bus error": "SIGBUS", "Floating-point exception": "SIGFPE",
          "Floating point exception": "SIGFPE", "Aborted": "SIGABRT", "Illegal instruction": "SIGILL"}


def death_reason(ray_text: str, fault: str = "") -> str:
    """One line for a trial whose worker died without leaving its own reason.

    Args:
        ray_text: Tune's error file for the trial (Ray's text: the same ~700 characters for an exit, a kill
            and a segfault).
        fault: What Python's fault handler wrote in the worker (``fault.txt``): the fatal signal and the stack.
    """
    if fault.strip():
        first = fault.strip().splitlines()[0]
        words = first.removeprefix("Fatal Python error:").strip()
        signal = next((sig for name, sig in _FATAL.items() if name.lower() in words.lower()), None)
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', fault)
        where = f" in {Path(frames[0][0]).name}:{frames[0][1]} ({frames[0][2]})" if frames else ""
        return f"killed by {signal} ({words}){where}" if signal else f"{words or first}{where}"
    text = ray_text
    pid = re.search(r"\bpid[:=]\s*(\d+)", text)
    worker = f"its worker (pid {pid.group(1)})" if pid else "its worker"
    if "low on memory" in text or "OutOfMemoryError" in text or "NODE_OUT_OF_MEMORY" in text:
        used = re.search(r"memory used=([\d.]+\s*[KMGT]?B)", text)
        node = re.search(r"was ([\d.]+\s*[KMGT]?B) / ([\d.]+\s*[KMGT]?B) \(([\d.]+)\)", text)
        threshold = re.search(r"threshold of (\d+(?:\.\d+)?)", text)
        detail = []
        if node:
            detail.append(f"node memory {node.group(1)} / {node.group(2)}"
                          + (f" above the threshold {threshold.group(1)}" if threshold else ""))
        if used:
            detail.append(f"the trial's worker used {used.group(1)}")
        return "killed by Ray's memory monitor (out of memory)" + (f": {'; '.join(detail)}" if detail else "")
    lost = re.search(r"its node has died\. Node Id: ([0-9a-f]+)", text)
    if lost:  # a node of the cluster went away (removed, crashed, its machine lost) with the trial on it
        return f"the Ray node {lost.group(1)} running {worker} died"
    code = re.search(r"exits? with an exit code (-?\d+)", text)
    term = re.search(r"receives? a (SIG[A-Z]+)", text)
    if term:
        return f"killed by {term.group(1)} ({worker} exited with code {code.group(1) if code else '?'})"
    if code:
        return f"{worker} exited with code {code.group(1)}"
    if "connection error code" in text or "End of file" in text:
        return (f"{worker} died without a word: killed by SIGKILL (the kernel's OOM killer, or kill -9) or exited "
                "from native code")
    if "TaskCancelledError" in text:
        return "cancelled by Ray (TaskCancelledError)"
    if "NodeDiedError" in text or "node died" in text.lower():
        return f"the Ray node running {worker} died"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure #")]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "killed" in line.lower() or "died" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "the trial's worker process failed"


def best_step(steps: Sequence[Mapping[str, Any]], primary: Objective) -> dict[str, Any]:
    """``metrics`` and ``budget`` of the best of a trial's stored steps on the primary objective ({} when none)."""
    scored = [r for r in steps if isinstance((r["metrics"] or {}).get(primary.metric), (int, float))]
    if not scored:
        return {}
    best = min(scored, key=lambda r: (primary.to_min(float(r["metrics"][primary.metric])), -r["step"]))
    return {"metrics": dict(best["metrics"]), "budget": int(best["step"])}
