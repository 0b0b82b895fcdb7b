"""Reporting from your own training loop: :func:`report`, :func:`should_stop`, :func:`save_checkpoint`,
:func:`load_checkpoint` (the ``loop`` trainer, :mod:`automl.builtin.loop_trainer`).

The user's function runs once per trial, in a thread of the trial's Ray worker, and calls these from inside
its loop, as Ray Tune's ``tune.report`` / ``tune.get_checkpoint`` and Optuna's ``trial.report`` /
``trial.should_prune`` are used::

    import automl

    def train(config):
        state = automl.load_checkpoint() or {"epoch": 0, "w": 0.0}
        for epoch in range(state["epoch"] + 1, 11):
            state = {"epoch": epoch, "w": step(state["w"], config["lr"])}
            automl.save_checkpoint(state)              # what a restarted trial goes on from
            automl.report(epoch, {"loss": loss(state["w"])})
            if automl.should_stop():                   # stopped by the scheduler, or the last step reported
                return

Each :func:`report` waits while the engine checkpoints the step and hands it to Ray Tune's session (the
scheduler decides there). Outside a search (the function called from plain Python, e.g. to try it) every call
is a no-op: :func:`report` returns, :func:`should_stop` is False, :func:`load_checkpoint` is None.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["TrialStopped", "load_checkpoint", "report", "save_checkpoint", "should_stop"]


class TrialStopped(BaseException):  # noqa: N818 - named as what happened, like Optuna's TrialPruned
    """Raised by :func:`report` when the trial was already stopped and the loop reports again.

    A ``BaseException`` (as ``SystemExit``, which Ray Tune's own report raises then), so a loop's
    ``except Exception`` does not swallow it; the engine ends the trial as the scheduler decided.
    """


_NOTHING = object()


class LoopSession:
    """The meeting point of the user's loop (one thread) and the engine's budget steps (the trial's thread).

    The loop's :meth:`report` hands over one step and blocks until the engine :meth:`resume`\\ s it or
    :meth:`stop`\\ s the trial; the engine's side takes each step with :meth:`next_report`. Written by hand:
    a one-slot hand-off with a stop flag, which neither ``queue.Queue`` (no way to wake a blocked
    producer on stop) nor Ray's session (it runs in the other thread) gives.
    """

    def __init__(self, restored: Any = None, deadline: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._cv = threading.Condition()
        #: When the search's wall time ends (the worker ends the trial then): see :meth:`deadline_near`.
        self.deadline = deadline
        self._clock = clock
        #: When the last report returned (the loop's start before the first), and the longest step seen so far.
        self._mark: float | None = None
        self._longest = 0.0
        self._pending: tuple[int, dict[str, float], Any] | None = None
        self._restored = restored
        self._staged: Any = _NOTHING
        self.stopped = False
        #: The last budget step was reported: should_stop is True, and a further report fails the trial.
        self.ended = False
        self.finished = False
        self.error: BaseException | None = None

    # -- the user's thread ------------------------------------------------------------------

    def run(self, fn: Callable[[dict[str, Any]], Any], config: dict[str, Any]) -> None:
        """Run the user's function to its end in this thread; its exception is kept for the engine."""
        global _current
        _current = self
        self._mark = self._clock()
        try:
            fn(config)
        except TrialStopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the trial's thread, where it fails the trial
            self.error = exc
        finally:
            with self._cv:
                self.finished = True
                self._cv.notify_all()

    def report(self, step: int, metrics: Mapping[str, Any], checkpoint: Any = _NOTHING) -> None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"automl.report: step must be an int (the budget step, 1-based), got {step!r}")
        if not isinstance(metrics, Mapping):
            raise TypeError(f"automl.report: metrics must be a mapping {{name: number}}, got {type(metrics).__name__}")
        values: dict[str, float] = {}
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
                raise TypeError(f"automl.report: metric {key!r} must be a number, got {type(value).__name__}")
            values[str(key)] = float(value)
        if checkpoint is not _NOTHING:
            self.save(checkpoint)
        with self._cv:
            if self.stopped:
                raise TrialStopped(f"automl.report(step {step}) after the trial was stopped: return from the loop "
                                   "when automl.should_stop() is True")
            state, self._staged = self._staged, _NOTHING
            self._pending = (step, values, state)
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._pending is None or self.stopped)
        now = self._clock()
        if self._mark is not None:
            self._longest = max(self._longest, now - self._mark)
        self._mark = now

    @property
    def should_stop(self) -> bool:
        return self.stopped or self.ended or self.deadline_near()

    def deadline_near(self) -> bool:
        """Whether one more step, as long as the longest so far (the engine's recording included), would end after
        the deadline: then the worker would end the trial mid-step, so the loop is told to return now, and the
        trial completes with the steps it reported (its last checkpoint and metrics), as an early stop does."""
        if self.deadline is None or self._mark is None:
            return False
        return self._clock() + self._longest >= self.deadline

    def save(self, state: Any) -> None:
        self._staged = state

    def load(self) -> Any:
        return self._restored

    # -- the engine's thread ----------------------------------------------------------------

    def next_report(self) -> tuple[int, dict[str, float], Any] | None:
        """The loop's next report (step, metrics, the checkpoint staged with it or ``_NOTHING``), or None once
        the function has returned (or raised: see :attr:`error`)."""
        with self._cv:
            self._cv.wait_for(lambda: self._pending is not None or self.finished)
            return self._pending

    def resume(self, *, last: bool = False) -> None:
        """Let the loop go on after its report (``last``: that was the last budget step, so should_stop is True)."""
        with self._cv:
            self._pending = None
            if last:
                self.ended = True
            self._cv.notify_all()

    def stop(self) -> None:
        """The trial ends (the scheduler stopped it, or it failed): should_stop is True from now on."""
        with self._cv:
            self.stopped = True
            self._pending = None
            self._cv.notify_all()


#: The session of the trial running in this process (one trial at a time per Ray worker), or None.
_current: LoopSession | None = None


def report(step: int, metrics: Mapping[str, Any] | None = None, *, checkpoint: Any = _NOTHING,
           **named: Any) -> None:
    """Report the metrics after budget step ``step`` (1-based, increasing) of the running trial.

    Blocks while the engine records the step (and checkpoints it, when a checkpoint was given here or
    by :func:`save_checkpoint` since the last report) and the scheduler decides; then returns. Check
    :func:`should_stop` after it. Metrics may be given as a mapping or as keywords
    (``automl.report(3, loss=0.2)``). A no-op outside a search.

    Raises:
        TrialStopped: The trial was stopped before this call (the loop did not return when
            :func:`should_stop` said so).
        TypeError: ``step`` is not an int, or a metric is not a number.
    """
    session = _current
    if session is None:
        return
    session.report(step, {**(metrics or {}), **named}, checkpoint)


def should_stop() -> bool:
    """True when the loop must return: the scheduler stopped the trial, its last budget step was reported, or the
    search's wall time ends before another step would (as long as the longest so far) could be reported.

    False outside a search.
    """
    session = _current
    return session is not None and session.should_stop


def save_checkpoint(state: dict[str, Any] | str | Path) -> None:
    """Keep ``state`` as the checkpoint of the step the next :func:`report` reports.

    ``state`` is a dict (of dicts, lists, numbers, strings, numpy arrays and torch tensors, e.g. a
    model's and an optimizer's ``state_dict()``), or a path to a file or directory the loop wrote. The
    engine writes it into the trial's directory when that step is recorded, as JSON, ``.npz`` and
    ``torch.save`` files read back with ``torch.load(weights_only=True)`` (never unpickled), or the
    path's copy. A no-op outside a search.
    """
    session = _current
    if session is not None:
        session.save(state)


def load_checkpoint() -> Any:
    """What :func:`save_checkpoint` kept for the last recorded step, when the trial restarts from it; else None.

    A dict is returned as saved (numpy arrays and tensors included; tuples come back as lists); a path
    comes back as the path of its copy in the trial's checkpoint. None for a fresh trial and outside
    a search. Put the step in the state to know where to go on.
    """
    session = _current
    return None if session is None else session.load()


# -- the files of a checkpoint (written and read by the engine in the trial's worker) ----------

STATE_JSON = "state.json"
STATE_TORCH = "state.pt"
ARRAYS = "arrays.npz"
FILES = "files"
_ARRAY_KEY = "__automl_ndarray__"


def write_state(state: Any, directory: Path) -> None:
    """Write a :func:`save_checkpoint` state into ``directory`` (see there for what it may hold)."""
    if isinstance(state, (str, Path)):
        source = Path(state)
        if not source.exists():
            raise FileNotFoundError(f"automl.save_checkpoint: {source} does not exist")
        target = directory / FILES / source.name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True)
            shutil.copy2(source, target)
        return
    import numpy as np

    arrays: dict[str, Any] = {}
    flags = {"torch": False}
    encoded = _encode(state, arrays, flags, "state")
    if arrays:
        np.savez(directory / ARRAYS, **arrays)
    if flags["torch"]:
        import torch

        torch.save(encoded, directory / STATE_TORCH)
    else:
        (directory / STATE_JSON).write_text(json.dumps(encoded))


def read_state(directory: Path) -> Any:
    """The state :func:`write_state` wrote into ``directory`` (None when it holds none)."""
    files = directory / FILES
    if files.is_dir():
        return next(iter(sorted(files.iterdir())), None)
    if (directory / STATE_TORCH).is_file():
        import torch

        encoded = torch.load(directory / STATE_TORCH, weights_only=True, map_location="cpu")
    elif (directory / STATE_JSON).is_file():
        encoded = json.loads((directory / STATE_JSON).read_text())
    else:
        return None
    arrays: Mapping[str, Any] = {}
    if (directory / ARRAYS).is_file():
        import numpy as np

        with np.load(directory / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return _decode(encoded, arrays)


def _encode(obj: Any, arrays: dict[str, Any], flags: dict[str, bool], where: str) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"automl.save_checkpoint: key {key!r} at {where} is not a string or an int")
            out[key] = _encode(value, arrays, flags, f"{where}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays, flags, f"{where}[{i}]") for i, v in enumerate(obj)]
    module = type(obj).__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError(f"automl.save_checkpoint: the array at {where} holds Python objects")
            key = f"a{len(arrays)}"
            arrays[key] = obj
            return {_ARRAY_KEY: key}
        if isinstance(obj, np.generic):
            return obj.item()
    if module == "torch":
        import torch

        if isinstance(obj, torch.Tensor):
            flags["torch"] = True
            return obj.detach().cpu()
    raise TypeError(f"automl.save_checkpoint: {type(obj).__name__} at {where} cannot be saved safely: give dicts, "
                    "lists, numbers, strings, numpy arrays and torch tensors, or a path to a file you wrote")


def _decode(obj: Any, arrays: Mapping[str, Any]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY_KEY}:
            return arrays[obj[_ARRAY_KEY]]
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_decode(v, arrays) for v in obj]
    return obj
