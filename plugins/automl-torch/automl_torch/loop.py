"""The training loop shared by the in-process trainer and every DDP worker.

One epoch is one budget step. The loop is the same for one process and for N: batches
come from a :class:`~torch.utils.data.DistributedSampler` in both cases (with one replica
it is a seeded shuffle), so the N workers' batches at a step are exactly the rows one
process would take at that step, split N ways, and averaging their gradients (DDP)
reproduces the single-process update.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from automl.plugin import TrialError
from automl_torch.augment import Augment, Batches, loader_workers
from automl_torch.config import Settings

__all__ = ["Arrays", "EpochStats", "Fitter", "autocast_dtype", "eval_loss", "predict", "seed_everything"]

#: Version of the checkpoint layout written by :meth:`Fitter.state_dict`.
STATE_FORMAT = 1


@dataclass
class Arrays:
    """Rows as numpy: ``X`` float32 (NaN kept: the model imputes), ``y`` class index or target value."""

    X: np.ndarray
    y: np.ndarray


@dataclass
class EpochStats:
    """What one epoch did on one worker."""

    epoch: int
    train_loss: float
    samples: int
    seconds: float
    valid_loss: float
    stop: bool = False


def _one_thread(worker: int) -> None:
    # A DataLoader worker gathers and augments one batch at a time: torch's intra-op threads in every worker
    # would compete with the training process for the trial's CPUs.
    torch.set_num_threads(1)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy; Python's ``random`` is not used by the loop."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None trains in fp32.

    ``auto`` picks bf16 on a GPU that supports it (else fp16) and, on CPU, bf16 only when
    the CPU computes bf16 natively (AVX512-BF16 or AMX), where it measured up to 2x faster
    on wide layers; elsewhere CPU bf16 is emulated and slower, so ``auto`` keeps fp32.
    ``fp16`` on a CPU falls back to bf16: CPU fp16 autocast is emulated and has no
    gradient scaler.
    """
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if precision == "fp16" else torch.bfloat16
    if precision == "auto":
        return torch.bfloat16 if _cpu_has_native_bf16() else None
    return torch.bfloat16


def _cpu_has_native_bf16() -> bool:
    # torch has no public query for this; the oneDNN op it uses in its own tests is the
    # most reliable answer available, so it is asked defensively.
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def eval_loss(outputs: torch.Tensor, y: torch.Tensor, task: str, target_std: float) -> torch.Tensor:
    """The validation loss: plain cross-entropy, or MSE in standard units (so trials compare)."""
    if task == "classification":
        return nn.functional.cross_entropy(outputs.float(), y)
    return nn.functional.mse_loss(outputs.float() / target_std, y / target_std)


@torch.inference_mode()
def predict(net: nn.Module, X: np.ndarray, device: torch.device, batch: int = 4096) -> torch.Tensor:
    """Outputs of ``net`` (eval mode) for all rows of ``X``, on the CPU."""
    was_training = net.training
    net.eval()
    try:
        chunks = [net(torch.as_tensor(X[i : i + batch], device=device)).float().cpu() for i in range(0, len(X), batch)]
    finally:
        net.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)


class Fitter:
    """Optimiser, schedule, precision, clipping, loss and early stopping around one network.

    Args:
        net: The network (not wrapped).
        settings: The trial's settings.
        task: ``classification`` or ``regression``.
        train: Training rows (this worker holds them all; the sampler picks its share).
        valid: Validation rows, for the early-stopping loss.
        n_classes: Classes of a classification task (for class weights).
        device: Where to train.
        seed: The trial's seed (shuffling; the caller seeds initialisation).
        rank: This worker's rank.
        world: Number of workers; above 1 ``net`` is wrapped in DistributedDataParallel.
        target_std: Standard deviation of a regression target (losses in standard units).
        cpus: The trial's CPUs (``loader_workers: auto`` sizes the DataLoader's workers from them).
    """

    def __init__(
        self,
        net: nn.Module,
        settings: Settings,
        *,
        task: str,
        train: Arrays,
        valid: Arrays,
        n_classes: int,
        device: torch.device,
        seed: int,
        rank: int = 0,
        world: int = 1,
        target_std: float = 1.0,
        cpus: float = 1.0,
    ) -> None:
        self.s = settings
        self.task = task
        self.device = device
        self.rank = rank
        self.world = world
        self.target_std = float(target_std) if target_std > 1e-12 else 1.0
        self.net = net.to(device)
        self.model: nn.Module = self.net
        if world > 1:
            on_gpu = device.type == "cuda" and device.index is not None
            self.model = DistributedDataParallel(self.net, device_ids=[device.index] if on_gpu else None)
        y_dtype = torch.long if task == "classification" else torch.float32
        augment = None
        if settings.input_shape is not None and (settings.augment_flip or settings.augment_crop):
            augment = Augment(settings.input_shape, settings.augment_flip, settings.augment_crop)  # type: ignore[arg-type]
        self.train_set = Batches(
            torch.as_tensor(train.X, dtype=torch.float32, device=device),
            torch.as_tensor(train.y, dtype=y_dtype, device=device), augment, seed,
        )
        if task == "classification":
            # A label training never saw (-1) has no output to score: left out of the loss.
            known = valid.y >= 0
            valid = Arrays(valid.X[known], valid.y[known])
        self.valid = valid
        self.valid_y = torch.as_tensor(valid.y, dtype=y_dtype)
        # One seeded permutation per epoch (seed + epoch), cut into `world` interleaved shares.
        self.sampler: DistributedSampler[int] = DistributedSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed
        )
        self.per_worker_batch = max(1, math.ceil(settings.batch_size / world))
        # Batches are drawn as index lists and gathered in one indexing operation: a
        # per-row Dataset fetch plus collate costs more than the step itself on small nets.
        workers = loader_workers(settings.loader_workers, cpus, augment is not None, device) if device.type == "cpu" else 0
        self.loader = DataLoader(
            self.train_set, sampler=BatchSampler(self.sampler, self.per_worker_batch, drop_last=False), batch_size=None,
            num_workers=workers, worker_init_fn=_one_thread if workers else None,
        )
        self.criterion = self._criterion(train.y, n_classes)
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        self.dtype = autocast_dtype(settings.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype is torch.float16 and device.type == "cuda")
        self.epoch = 0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped = False

    # -- parts ----------------------------------------------------------------------------

    def _criterion(self, y: np.ndarray, n_classes: int) -> nn.Module:
        if self.task != "classification":
            return nn.MSELoss()
        weight = None
        if self.s.class_weight == "balanced":
            # scikit-learn's "balanced": n_samples / (n_classes * count); absent classes get 0.
            counts = np.bincount(y.astype(np.int64), minlength=n_classes).astype(np.float64)
            w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
            weight = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=self.s.label_smoothing)

    def _optimizer(self) -> torch.optim.Optimizer:
        s, params = self.s, self.net.parameters()
        if s.optimizer == "sgd":
            return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
        if s.optimizer == "adam":
            return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        """Per-epoch schedule: optional linear warm-up, then constant, step or cosine."""
        s, opt = self.s, self.optimizer
        warmup = min(s.warmup_epochs, max(s.epochs - 1, 0))
        rest = max(s.epochs - warmup, 1)
        main: torch.optim.lr_scheduler.LRScheduler
        if s.schedule == "step":
            main = torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.lr_decay)
        elif s.schedule == "cosine":
            main = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=rest)
        else:
            main = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
        if warmup == 0:
            return main
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / (warmup + 1), total_iters=warmup)
        return torch.optim.lr_scheduler.SequentialLR(opt, [warm, main], milestones=[warmup])

    # -- training -------------------------------------------------------------------------

    def train_epoch(self, epoch: int) -> EpochStats:
        """Train epoch ``epoch`` (1-based) and decide on early stopping.

        Raises:
            TrialError: When the training loss is not finite (NaN or inf).
        """
        start = time.perf_counter()
        self.model.train()
        self.sampler.set_epoch(epoch)
        self.train_set.epoch = epoch  # before the iterator starts: its workers copy the dataset then
        total = torch.zeros((), device=self.device)
        seen = 0
        for xb, yb in self.loader:
            with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
                out = self.model(xb)
                loss = self._loss(out, yb)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.s.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.net.parameters(), self.s.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach().float() * len(yb)
            seen += len(yb)
        self.scheduler.step()
        # Checked once per epoch: a check per batch would synchronise a GPU at every step.
        train_loss = float(total) / max(seen, 1)
        if not math.isfinite(train_loss):
            fixes = "lower lr or set grad_clip" + (", or train in fp32" if self.dtype is not None else "")
            raise TrialError(
                f"the training loss became {train_loss} in epoch {epoch} (lr={self.s.lr:g}, "
                f"optimizer={self.s.optimizer}, precision={self.s.precision}): {fixes}"
            )
        self.epoch = epoch
        valid_loss = self.valid_loss()
        stop = self._early_stop(epoch, valid_loss)
        self.stopped = stop
        return EpochStats(epoch, train_loss, seen, time.perf_counter() - start, valid_loss, stop)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "classification":
            return self.criterion(out.float(), y)
        return self.criterion(out.float() / self.target_std, y / self.target_std)

    def valid_loss(self) -> float:
        if len(self.valid.y) == 0:
            return math.nan
        out = predict(self.net, self.valid.X, self.device)
        return float(eval_loss(out, self.valid_y, self.task, self.target_std))

    def _early_stop(self, epoch: int, valid_loss: float) -> bool:
        """Track the best validation loss; True when ``patience`` epochs brought no improvement.

        On stopping, the best epoch's weights are put back, so what is evaluated and
        exported is the best model seen, not the last.
        """
        if self.s.patience <= 0:
            return False
        if valid_loss < self.best_loss - self.s.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = valid_loss, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.s.patience:
            if self.best_state is not None:
                self.net.load_state_dict(self.best_state)
            return True
        return False

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after :attr:`epoch`; tensors and plain values only,
        so it loads with ``torch.load(weights_only=True)``."""
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "early": {
                "best_loss": self.best_loss, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "stopped": self.stopped,
            },
            "best_model": self.best_state,
            # What the optimiser and schedule were built from: a trial that goes on from another's checkpoint with
            # other values (PBT's explore) takes the state and then its own values (load_state_dict).
            "hparams": self._hparams(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def _hparams(self) -> dict[str, Any]:
        """The settings a training state may go on under with other values (the optimiser's, the schedule's)."""
        s = self.s
        return {"lr": s.lr, "weight_decay": s.weight_decay, "momentum": s.momentum, "schedule": s.schedule,
                "step_size": s.step_size, "lr_decay": s.lr_decay, "warmup_epochs": s.warmup_epochs}

    def _retune(self, epoch: int) -> None:
        """Go on after ``epoch`` with this trial's own optimiser and schedule values over a loaded state (PBT):
        the moments of the optimiser are kept; the learning rate is the one this trial's schedule has after
        ``epoch`` epochs, as if it had trained with these values from the start."""
        import warnings

        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = self.s.lr
            group["weight_decay"] = self.s.weight_decay
            if "momentum" in group and self.s.optimizer == "sgd":
                group["momentum"] = self.s.momentum
            group.pop("initial_lr")  # the new schedule sets it from lr
        self.scheduler = self._scheduler()
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": replaying the schedule only
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(epoch):
                self.scheduler.step()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output.

        Raises:
            ValueError: When the state was written by another layout version.
        """
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {STATE_FORMAT}: start the trial over")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("hparams", self._hparams()) == self._hparams():
            self.scheduler.load_state_dict(state["scheduler"])
        else:
            self._retune(int(state["epoch"]))
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        early = state["early"]
        self.best_loss, self.best_epoch, self.bad_epochs = early["best_loss"], early["best_epoch"], early["bad_epochs"]
        self.stopped = bool(early["stopped"])
        self.best_state = state.get("best_model")
        self.epoch = int(state["epoch"])
