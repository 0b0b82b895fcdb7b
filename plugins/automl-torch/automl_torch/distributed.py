"""One trial on N processes: Ray Train's ``TorchTrainer`` with DistributedDataParallel, inside the Tune trial.

The trial's process launches the Ray Train run in a thread and follows it: each epoch,
every worker calls ``ray.train.report`` (rank 0 with a checkpoint of the full training
state), and a :class:`EpochRelay` callback on the Ray Train controller puts the report on
a Ray queue that :func:`run_distributed` reads while ``fit()`` is still running. So the
trial yields each epoch as the workers finish it, and the engine evaluates and reports it
to Tune, where ASHA may stop the trial; a stop is passed back on a second queue and the
workers end at the next epoch boundary.

Workers: the same :class:`~automl_torch.loop.Fitter` as a single process, with the
global batch split over them, the model initialised from the trial's seed on every rank
(DDP also broadcasts rank 0's weights) and per-rank seeds for dropout. ``gloo`` on CPU,
``nccl`` on GPU (TorchTrainer's default backend for the device).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import ray
import torch
import torch.distributed as dist
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.v2.api.callback import UserCallback
from ray.util.queue import Empty, Queue

from automl.plugin import TrialError
from automl_torch.config import Settings
from automl_torch.loop import Fitter, seed_everything
from automl_torch.networks import build_model

if TYPE_CHECKING:
    from automl_torch.trainer import NeuralNetTrainer

__all__ = ["EpochRelay", "run_distributed", "train_worker"]

STATE_FILE = "torch_state.pt"
_DONE = "__done__"
_STOP = "__stop__"


class EpochRelay(UserCallback):
    """On the Ray Train controller: forward each epoch's reports and checkpoint to the trial's process.

    Ray's own ``TuneReportCallback`` forwards to Tune directly; the engine needs the
    epochs in the trial function instead (to evaluate, checkpoint and report them itself),
    so this one puts them on a queue the trial reads. The checkpoint's bytes travel with
    the report: Ray Train deletes a checkpoint as soon as the next one is registered
    (``num_to_keep=1``), which may be before the trial reads the queue, but never while
    this callback runs.
    """

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Checkpoint | None) -> None:
        first = metrics[0]
        samples = sum(m["samples"] for m in metrics)
        self.queue.put({
            "epoch": int(first["epoch"]),
            "stop": bool(first["stop"]),
            # Each worker's mean over its share of the rows, weighted into the mean over all rows.
            "train_loss": float(sum(m["train_loss"] * m["samples"] for m in metrics) / max(samples, 1)),
            "valid_loss": float(first["valid_loss"]),
            # Throughput of the whole group: every worker's rows over the slowest worker's time.
            "samples": int(samples),
            "seconds": float(max(m["seconds"] for m in metrics)),
            "pids": [int(m["pid"]) for m in metrics],
            "state": _read_state(checkpoint),
        })


def _read_state(checkpoint: Checkpoint | None) -> bytes:
    if checkpoint is None:
        raise TrialError("rank 0 reported an epoch without its checkpoint")
    with checkpoint.as_directory() as directory:
        return (Path(directory) / STATE_FILE).read_bytes()


def train_worker(config: dict[str, Any]) -> None:
    """The loop each Ray Train worker runs (``train_loop_per_worker``)."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(max(1, round(config["cpus"])))
    device = ray.train.torch.get_device()
    s = Settings.model_validate(config["settings"])
    seed = int(config["seed"])
    # The same seed on every rank: each builds the single-process trial's initial weights.
    seed_everything(seed)
    net = build_model(
        s, n_features=config["train"].X.shape[1], n_outputs=config["n_outputs"],
        mean=config["mean"], std=config["std"], target=config["target"],
    )
    fitter = Fitter(
        net, s, task=config["task"], train=config["train"], valid=config["valid"], n_classes=config["n_outputs"],
        device=device, seed=seed, rank=rank, world=world, target_std=config["target"][1] if config["target"] else 1.0,
    )
    if config["resume"] is not None:
        fitter.load_state_dict(config["resume"])
    # Dropout masks must differ between ranks (rank 0 keeps the single-process stream).
    if rank > 0:
        torch.manual_seed(seed + 1_000_003 * rank + fitter.epoch)
    control: Queue = config["control"]
    for epoch in range(int(config["start"]), s.epochs + 1):
        if _agree(rank == 0 and not control.empty(), device):
            break  # the trial was stopped (ASHA, time-out): end at this epoch boundary
        stats = fitter.train_epoch(epoch)
        stop = _agree(stats.stop, device)
        metrics = {
            "epoch": epoch, "stop": stop, "train_loss": stats.train_loss, "valid_loss": stats.valid_loss,
            "samples": stats.samples, "seconds": stats.seconds, "pid": os.getpid(),
        }
        if rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save(fitter.state_dict(), Path(tmp) / STATE_FILE)
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)
        if stop:
            break


def _agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag``, on every rank (so all workers leave the loop together)."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return bool(flag)
    tensor = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def _check_resources(s: Settings, cpus: float, gpus: float) -> None:
    """Refuse a worker group the Ray cluster can never hold (Ray would wait for it forever)."""
    d = s.distributed
    assert d is not None
    total = ray.cluster_resources()
    need_cpu = d.workers * d.cpus_per_worker + cpus
    if need_cpu > total.get("CPU", 0) + 1e-9:
        raise TrialError(
            f"distributed: {d.workers} workers x {d.cpus_per_worker:g} CPU plus the trial's own {cpus:g} CPU "
            f"need {need_cpu:g} CPUs, and this Ray cluster has {total.get('CPU', 0):g}: lower "
            f"distributed.cpus_per_worker, lower resources.cpu (the trial's process only coordinates: 0.1 is "
            f"enough), or use fewer workers"
        )
    need_gpu = d.workers * d.gpus_per_worker + gpus
    if need_gpu > total.get("GPU", 0) + 1e-9:
        raise TrialError(
            f"distributed: {d.workers} workers x {d.gpus_per_worker:g} GPU plus the trial's {gpus:g} need "
            f"{need_gpu:g} GPUs, and this Ray cluster has {total.get('GPU', 0):g}"
        )


def _wait_for_room(s: Settings, cpus: float, deadline: float) -> None:
    """Wait until the cluster has free resources for the worker group, or fail the trial at ``deadline``.

    Other trials' groups free their resources when they end, so waiting is normal; but
    when every running trial holds its own small reservation and waits for a group that
    no longer fits beside them, nothing ever frees: that case ends here with the fix.
    """
    d = s.distributed
    assert d is not None
    while True:
        free = ray.available_resources()
        if free.get("CPU", 0) + 1e-9 >= d.workers * d.cpus_per_worker and (
            not d.gpus_per_worker or free.get("GPU", 0) + 1e-9 >= d.workers * d.gpus_per_worker
        ):
            return
        if time.monotonic() > deadline:
            raise TrialError(_starved(s, cpus))
        time.sleep(1.0)


def _starved(s: Settings, cpus: float) -> str:
    d = s.distributed
    assert d is not None
    total = ray.cluster_resources().get("CPU", 0)
    fit = max(1, int(total / (cpus + d.workers * d.cpus_per_worker) + 1e-9))
    return (
        f"the {d.workers} DDP workers ({d.cpus_per_worker:g} CPU each) found no room on the cluster for "
        f"{d.start_timeout:g} s: other trials hold its CPUs. Run fewer trials at once so that each one's workers "
        f"fit beside the others: resources.max_concurrent: {fit} on this {total:g}-CPU cluster (or raise "
        f"distributed.start_timeout when trials only wait for each other)"
    )


def _failure(exc: BaseException) -> str:
    """The workers' own error message, without Ray's wrapping."""
    failures = getattr(exc, "worker_failures", None)
    if failures:
        rank, error = sorted(failures.items())[0]
        cause = error
        # Ray wraps the worker's exception; its message is the original one's.
        text = str(getattr(cause, "cause", None) or cause).strip().splitlines()
        last = next((line for line in reversed(text) if line.strip()), type(cause).__name__)
        return f"distributed training failed on worker {rank}: {last.strip()}"
    return f"distributed training failed: {type(exc).__name__}: {exc}"


def run_distributed(trainer: NeuralNetTrainer, start: int) -> Iterator[int]:
    """Run epochs ``start``.. on the trial's worker group, yielding each epoch as rank 0 reports it.

    Raises:
        TrialError: When the workers fail (their reason), or the cluster cannot hold them.
    """
    from ray.train.torch import TorchTrainer

    s = trainer.settings
    d = s.distributed
    assert d is not None
    ctx = trainer.context
    _check_resources(s, ctx.cpus, ctx.gpus)
    deadline = time.monotonic() + d.start_timeout
    _wait_for_room(s, ctx.cpus, deadline)
    reports = Queue(actor_options={"num_cpus": 0})
    control = Queue(actor_options={"num_cpus": 0})
    storage = Path(ctx.trial_dir) / "ray_train"
    shutil.rmtree(storage, ignore_errors=True)  # left by a process that was killed mid-run
    target = trainer.target_
    config = {
        "settings": s.model_dump(mode="json"),
        "task": ctx.task,
        "train": trainer.arrays("train"),
        "valid": trainer.arrays("valid"),
        "n_outputs": len(trainer.classes_) if trainer.classes_ else 1,
        "mean": trainer.stats_[0],
        "std": trainer.stats_[1],
        "target": target,
        "seed": ctx.seed,
        "start": start,
        "resume": _to_cpu(trainer._resume_state),
        "control": control,
        "cpus": d.cpus_per_worker,
    }
    # Ray Train's controller collects the workers' reports every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S
    # (2 s by default) and a worker's next report waits for that: on epochs of a fraction
    # of a second the default would dominate. Read from the environment when the
    # controller starts (there is no argument for it); a user's own setting wins.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    resources = {"CPU": d.cpus_per_worker}
    if d.gpus_per_worker:
        resources["GPU"] = d.gpus_per_worker
    run = TorchTrainer(
        train_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=d.workers, use_gpu=d.gpus_per_worker > 0, resources_per_worker=resources
        ),
        run_config=RunConfig(
            # A fresh name per launch: Ray Train resumes a run whose name it finds in storage,
            # and restarts here are driven by the engine's checkpoints instead.
            name=f"run-{uuid.uuid4().hex[:8]}",
            storage_path=str(storage),
            # ray.train's RunConfig is Train v2's at run time (on by default) but v1's to a type
            # checker, whose callbacks are Tune callbacks.
            callbacks=[cast(Any, EpochRelay(reports))],
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    outcome: dict[str, BaseException] = {}

    def fit() -> None:
        try:
            run.fit()
        except BaseException as exc:  # handed to the trial's thread, which reports it
            outcome["error"] = exc
        finally:
            reports.put(_DONE)

    thread = threading.Thread(target=fit, name="automl-torch-ddp", daemon=True)
    thread.start()
    received = 0
    try:
        while True:
            try:
                item = reports.get(timeout=5.0)
            except Empty:
                if not thread.is_alive():
                    break
                if not received and time.monotonic() > deadline:
                    # Another trial took the room between the wait above and Ray Train's request.
                    raise TrialError(_starved(s, ctx.cpus)) from None
                continue
            if item == _DONE:
                break
            # weights_only: tensors and plain containers, written by our own workers.
            state = torch.load(io.BytesIO(item["state"]), map_location="cpu", weights_only=True)
            trainer.adopt_worker_state(state, {
                "epoch": item["epoch"], "train_loss": item["train_loss"], "valid_loss": item["valid_loss"],
                "samples_per_s": item["samples"] / max(item["seconds"], 1e-9), "seconds": item["seconds"],
                "workers": len(set(item["pids"])),
            })
            received += 1
            yield item["epoch"]
            if item["stop"]:
                break
        thread.join()
        if "error" in outcome:
            raise TrialError(_failure(outcome["error"]))
    finally:
        if thread.is_alive():
            # The trial ended before the workers (stopped by the scheduler, or failed here).
            control.put(_STOP)
            # Running workers finish their epoch and stop; a group that never started is
            # ended by removing its queues below (the controller's next report fails).
            thread.join(timeout=300 if received else 5)
        for queue in (reports, control):
            queue.shutdown()
        shutil.rmtree(storage, ignore_errors=True)


def _to_cpu(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint state with every tensor on the CPU (it travels to the workers by pickle)."""
    if state is None:
        return None

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.cpu()
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(move(v) for v in value)
        return value

    return move(state)

