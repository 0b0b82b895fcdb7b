"""The ``torch`` trainer: a network from the search space, trained epoch by epoch, exported to ONNX.

One epoch is one budget step, so a scheduler (ASHA) can stop a trial after any epoch.
With ``trainer.params.distributed`` the epochs run on N Ray Train workers with DDP
(:mod:`automl_torch.distributed`) and this object, in the trial's process, follows them:
it loads each epoch's checkpoint to evaluate, checkpoint and export.

torch is imported when a trial first needs it, not when the plugin is loaded: every
``automl`` command loads every plugin.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from automl.plugin import Trainer, TrialContext, TrialError
from automl_torch.config import Settings, settings_from

if TYPE_CHECKING:
    import torch

    from automl_torch.loop import Arrays, Fitter
    from automl_torch.networks import Model

__all__ = ["STATE_FILE", "NeuralNetTrainer"]

#: The checkpoint file :meth:`NeuralNetTrainer.save_checkpoint` writes (the last epoch only).
STATE_FILE = "torch_state.pt"


class NeuralNetTrainer(Trainer):
    """Trains an MLP, a CNN or the user's ``nn.Module`` on the trial's data.

    Args:
        config: The searched settings of this trial.
        params: The spec's fixed ``trainer.params``.
        context: Task, data, seed, directory and resources of the trial.

    Raises:
        ValueError: When the settings are invalid (the trial fails with the reason).
    """

    def __init__(self, config: Mapping[str, Any], params: Mapping[str, Any], context: TrialContext) -> None:
        super().__init__(config, params, context)
        # Image data carries its shape (Splits.image_shape): input_shape when the params give none. Without data
        # (the plan asking for the budget steps) an image network's shape is left for the data to give.
        data = context.data
        self.settings: Settings = settings_from(self.config, self.params, data.image_shape if data else None,
                                                shape_later=data is None)
        self.history_: list[dict[str, float]] = []
        self.epoch_ = 0
        self.stopped_ = False
        self._ready = False
        # Set by load_checkpoint for a distributed trial: handed to the workers.
        self._resume_state: dict[str, Any] | None = None
        # The last state the distributed workers reported (what save_checkpoint writes).
        self._worker_state: dict[str, Any] | None = None

    @property
    def budget_steps(self) -> int:
        return self.settings.epochs

    # -- set-up ---------------------------------------------------------------------------

    def _setup(self) -> None:
        """Arrays, device, threads, seed, network and (in-process) the training loop; once."""
        if self._ready:
            return
        import torch

        from automl_torch.loop import Fitter, seed_everything
        from automl_torch.networks import build_model

        data = self.context.data
        if data is None:
            raise TrialError("the torch trainer needs data: give the spec a `data:` section")
        self.classes_: list[Any] | None = list(data.classes) if self.context.task == "classification" else None
        self.arrays_: dict[str, Arrays] = {"train": self._arrays(data.train, "train")}
        train = self.arrays_["train"]
        self.device_ = self._device()
        torch.set_num_threads(max(1, round(self.context.cpus)))
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(train.X, axis=0))
            std = np.nan_to_num(np.nanstd(train.X, axis=0), nan=1.0)
        self.target_: tuple[float, float] | None = None
        if self.classes_ is None:
            self.target_ = (float(np.mean(train.y)), float(np.std(train.y)))
        self.stats_ = (mean, std)
        seed_everything(self.context.seed)
        try:
            self.net_: Model = build_model(
                self.settings, n_features=train.X.shape[1], n_outputs=len(self.classes_) if self.classes_ else 1,
                mean=mean, std=std, target=self.target_,
            )
        except ValueError as exc:
            raise TrialError(f"cannot build the network: {exc}") from None
        self.net_.to(self.device_)
        self.fitter_: Fitter | None = None
        if self.settings.distributed is None:
            self.fitter_ = Fitter(
                self.net_, self.settings, task=self.context.task, train=train, valid=self.arrays("valid"),
                n_classes=len(self.classes_ or ()), device=self.device_, seed=self.context.seed,
                target_std=self.target_[1] if self.target_ else 1.0, cpus=self.context.cpus,
            )
        self._ready = True

    def _device(self) -> torch.device:
        import torch

        wanted = self.settings.device
        if wanted == "cpu":
            return torch.device("cpu")
        if wanted == "cuda":
            if not torch.cuda.is_available():
                raise TrialError(
                    f"device: cuda, but this trial sees no GPU (resources.gpu: {self.context.gpus:g}); "
                    f"give trials a GPU with resources.gpu: 1, or use device: auto to train on the CPU"
                )
            return torch.device("cuda", 0)
        # Ray sets CUDA_VISIBLE_DEVICES to the trial's GPU, so it is device 0 of this process.
        if self.context.gpus > 0 and torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("cpu")

    def _arrays(self, part: Any, name: str) -> Arrays:
        from automl_torch.loop import Arrays

        X: pd.DataFrame = part.X
        bad = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
        if bad:
            raise TrialError(
                f"the torch trainer takes numeric features only; column(s) {bad[:5]} of the {name} split are "
                f"{X[bad[0]].dtype}: encode them as numbers before the search"
            )
        # A writable copy: pandas may hand out read-only views, which torch warns about.
        rows = np.require(X.to_numpy(dtype=np.float32, na_value=np.nan), requirements=["C", "W"])
        if self.classes_ is not None:
            # Index of each label in the training classes; -1 for a label training never saw.
            y = pd.Categorical(part.y, categories=self.classes_).codes.astype(np.int64)
        else:
            y = np.require(part.y.to_numpy(dtype=np.float32), requirements=["C", "W"])
        return Arrays(rows, y)

    def arrays(self, split: str) -> Arrays:
        """The rows of ``split`` as numpy, converted once."""
        if split not in self.arrays_:
            self.arrays_[split] = self._arrays(getattr(self.context.data, split), split)
        return self.arrays_[split]

    # -- training -------------------------------------------------------------------------

    def fit_step(self, step: int) -> None:
        """Train epoch ``step`` in this process.

        Raises:
            TrialError: For a non-finite training loss, or when the trial is distributed
                (its epochs run on the workers, through :meth:`run_steps`).
        """
        self._setup()
        if self.fitter_ is None:
            raise TrialError("a distributed trial trains through run_steps, not fit_step")
        stats = self.fitter_.train_epoch(step)
        self.epoch_, self.stopped_ = step, stats.stop
        self.history_.append({
            "epoch": step, "train_loss": stats.train_loss, "valid_loss": stats.valid_loss,
            "samples_per_s": stats.samples / max(stats.seconds, 1e-9), "seconds": stats.seconds, "workers": 1,
        })

    def run_steps(self, start: int = 1) -> Iterator[int]:
        """Train epochs ``start``..``epochs``, yielding each; stops early after ``patience`` epochs without progress.

        After an early stop the best epoch's weights are back in place, and that epoch is
        yielded as the last, so what the engine evaluates and exports is the best model.
        """
        self._setup()
        if self.stopped_:  # resumed from the checkpoint of a trial that had stopped early
            yield self.epoch_
            return
        if self.settings.distributed is not None:
            from automl_torch.distributed import run_distributed

            yield from run_distributed(self, start)
            return
        for step in range(start, self.budget_steps + 1):
            self.fit_step(step)
            yield step
            if self.stopped_:
                return

    def adopt_worker_state(self, state: dict[str, Any], record: Mapping[str, float]) -> None:
        """Take the state a distributed run's rank 0 checkpointed after an epoch (weights for evaluation)."""
        self.net_.load_state_dict(state["model"])
        self._worker_state = state
        self.epoch_ = int(state["epoch"])
        self.stopped_ = bool(state["early"]["stopped"])
        self.history_.append(dict(record))

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        from automl_torch.loop import predict

        self._setup()
        return self._scores(predict(self.net_, self.arrays(split).X, self.device_), split)

    def evaluate_artifact(self, path: Path, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        """The metrics of :meth:`evaluate`, from the outputs of the exported file at ``path`` (ONNX Runtime,
        TorchScript or a ``torch.export`` program), e.g. after a compressor quantized it."""
        import torch

        from automl_torch.export import load_runner

        self._setup()
        run = load_runner(path)
        X = self.arrays(split).X
        outputs = [torch.from_numpy(np.asarray(run(X[i : i + 4096]), dtype=np.float32)) for i in range(0, len(X), 4096)]
        return self._scores(torch.cat(outputs) if outputs else torch.empty(0), split)

    def _scores(self, outputs: torch.Tensor, split: str) -> dict[str, float]:
        """Every metric from a model's raw outputs (logits, or values) for the rows of ``split``."""
        import torch
        from sklearn import metrics as skm

        from automl_torch.loop import eval_loss

        part = self.arrays(split)
        std = self.target_[1] if self.target_ else 1.0
        if self.classes_ is None:
            values = outputs.numpy().reshape(-1)
            return {
                "r2": float(skm.r2_score(part.y, values)),
                "rmse": float(np.sqrt(skm.mean_squared_error(part.y, values))),
                "mae": float(skm.mean_absolute_error(part.y, values)),
                "loss": float(eval_loss(outputs.reshape(-1), torch.as_tensor(part.y), "regression", std)),
            }
        truth = getattr(self.context.data, split).y.to_numpy()
        labels = np.asarray(self.classes_)[outputs.argmax(dim=1).numpy()]
        known = part.y >= 0  # the loss is defined on labels the network has an output for
        loss = eval_loss(outputs[known], torch.as_tensor(part.y[known]), "classification", 1.0) if known.any() else 0.0
        return {
            "accuracy": float(skm.accuracy_score(truth, labels)),
            "balanced_accuracy": float(skm.balanced_accuracy_score(truth, labels)),
            "f1_macro": float(skm.f1_score(truth, labels, average="macro")),
            "loss": float(loss),
        }

    # -- export and prediction ------------------------------------------------------------

    def export(self, directory: Path) -> Path:
        """Write ``model.onnx`` and ``model.torchscript.pt`` under ``directory``.

        Returns:
            The file ``latency_ms`` and ``size_bytes`` are measured on: the ONNX file (run
            by ONNX Runtime), or the TorchScript file with ``runtime: torchscript``.
        """
        import torch

        from automl_torch.export import ONNX_FILE, TORCHSCRIPT_FILE, export_onnx, export_torchscript

        self._setup()
        directory.mkdir(parents=True, exist_ok=True)
        rows = self.arrays("valid").X[:2]
        example = torch.as_tensor(rows if len(rows) else np.zeros((1, self.arrays("train").X.shape[1]), np.float32))
        onnx_path = export_onnx(self.net_, example, directory / ONNX_FILE)
        script_path = export_torchscript(self.net_, example, directory / TORCHSCRIPT_FILE)
        self.net_.to(self.device_)  # the exporters work on the CPU copy
        return script_path if self.settings.runtime == "torchscript" else onnx_path

    def rung_estimates(self, which: Sequence[str]) -> dict[str, float]:
        """MO-ASHA's rung values without exporting: an ONNX or TorchScript export per rung costs
        more than an epoch of a small network.

        ``size_bytes``: the bytes of the parameters and buffers (what the float32 export holds,
        less its graph, a few kB). ``latency_ms``: the network itself in torch at the latency
        batch size, one thread, median of 10 calls after 2, so every trial at a rung is timed
        the same way (the final figure is ONNX Runtime's, and lower). Not for DDP trials (the
        network trains in the workers) or GPU devices: there the engine exports and measures.
        """
        import torch

        from automl.plugin import measure_latency

        self._setup()
        if self.settings.distributed is not None or self.device_.type != "cpu":
            return {}
        out: dict[str, float] = {}
        tensors = [*self.net_.parameters(), *self.net_.buffers()]
        if "size_bytes" in which:
            out["size_bytes"] = float(sum(t.numel() * t.element_size() for t in tensors))
        if "latency_ms" in which:
            rows = torch.as_tensor(self.arrays("valid").X[:1] if len(self.arrays("valid").X) else
                                   self.arrays("train").X[:1])
            was_training = self.net_.training
            self.net_.eval()
            try:
                with torch.inference_mode():
                    out["latency_ms"] = measure_latency(self.net_, rows, warmup=2, repeats=10)
            finally:
                self.net_.train(was_training)
        return out

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        """Predict labels (or values) with the exported file: ONNX Runtime for ``.onnx``, torch for ``.pt``."""
        from automl_torch.export import decode, load_runner, to_rows

        run = load_runner(path)
        classes = list(self.context.data.classes) if self.context.task == "classification" else None

        def predict(batch: Any) -> np.ndarray:
            return decode(run(to_rows(batch)), classes)

        return predict

    #: What ``automl export --format`` accepts: the ONNX and TorchScript files this trainer writes, a
    #: ``torch.export`` program (what automl-compress writes for torchao and bf16 models), and the
    #: network's ``state_dict`` (tensors only: load it with ``torch.load(weights_only=True)`` into the
    #: network built from the trial's config).
    formats = {"onnx": (".onnx",), "torchscript": (".torchscript.pt",), "pt2": (".pt2",),
               "state_dict": (".state_dict.pt",)}
    #: ``automl export`` of a trial from its TorchScript file: ONNX, or the weights as a state_dict.
    conversions = {"onnx": ("torchscript",), "state_dict": ("torchscript",)}

    def convert(self, source: Path, fmt: str, directory: Path) -> Path:
        """TorchScript to ONNX: the traced model (this trainer's own export) through torch's
        TorchScript-based ONNX exporter, checked against the TorchScript outputs on validation rows.

        ONNX to TorchScript is not offered: it would need the trained weights, and a finished
        trial keeps only its exports (its checkpoint is removed).

        Raises:
            ValueError: For another conversion, or an ONNX file whose outputs differ.
        """
        from automl_torch.export import (
            ONNX_FILE,
            STATE_DICT_FILE,
            convert_torchscript_to_onnx,
            convert_torchscript_to_state_dict,
        )

        if fmt not in self.conversions or not Path(source).name.endswith(".torchscript.pt"):
            raise ValueError(f"the torch trainer converts torchscript to onnx or state_dict only, not "
                             f"{Path(source).name} to {fmt}")
        if fmt == "state_dict":
            # The network built from the trial's config must take the weights and compute what the
            # TorchScript file computes: then the state_dict is the measured model's.
            self._setup()
            rows = self.arrays("valid").X if len(self.arrays("valid").X) else self.arrays("train").X
            directory.mkdir(parents=True, exist_ok=True)
            return convert_torchscript_to_state_dict(Path(source), self.net_, rows, directory / STATE_DICT_FILE)
        self._setup_arrays_only()
        rows = self.arrays("valid").X
        if not len(rows):
            rows = self.arrays("train").X
        directory.mkdir(parents=True, exist_ok=True)
        return convert_torchscript_to_onnx(Path(source), rows, directory / ONNX_FILE)

    def _setup_arrays_only(self) -> None:
        """The classes and the validation rows, without building a network or touching torch threads."""
        if not hasattr(self, "arrays_"):
            data = self.context.data
            if data is None:
                raise ValueError("the torch trainer needs the run's data to check a conversion")
            self.classes_ = list(data.classes) if self.context.task == "classification" else None
            self.arrays_ = {}

    def sample_input(self, batch_size: int) -> np.ndarray:
        """Validation rows as float32, the form the exported model takes (no DataFrame cost in the timing)."""
        from automl_torch.export import to_rows

        return to_rows(self.context.data.valid.X.iloc[:batch_size])

    # -- checkpoints ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any] | None:
        if self.fitter_ is not None:
            return self.fitter_.state_dict() if self.fitter_.epoch > 0 else None
        return self._worker_state

    def save_checkpoint(self, directory: Path, step: int | None = None) -> bool:
        """Write the state after the last epoch to ``directory/torch_state.pt``, replacing the previous one.

        Written to a temporary file and renamed, so a crash mid-write leaves the previous
        checkpoint intact. Returns False before the first epoch.

        Raises:
            ValueError: The engine says it saves after budget step ``step`` but the state is of
                another epoch (a restart would repeat or skip epochs).
        """
        import torch

        if not self._ready:
            return False
        state = self._state()
        if state is None:
            return False
        if step is not None and step != int(state["epoch"]):
            raise ValueError(f"asked to checkpoint after step {step}, but the network's state is of epoch {state['epoch']}")
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{STATE_FILE}.{os.getpid()}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, directory / STATE_FILE)
        return True

    def load_checkpoint(self, directory: Path) -> int:
        """Restore :meth:`save_checkpoint`'s state; return the last completed epoch.

        Raises:
            FileNotFoundError: When ``directory`` holds no checkpoint of this trainer.
            ValueError: When the checkpoint does not fit this trial's network.
        """
        import torch

        path = directory / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no torch trainer checkpoint at {path}")
        self._setup()
        # weights_only: tensors and plain containers only, never arbitrary pickled objects.
        state = torch.load(path, map_location=self.device_, weights_only=True)
        try:
            if self.fitter_ is not None:
                self.fitter_.load_state_dict(state)
            else:
                self.net_.load_state_dict(state["model"])
                self._resume_state = self._worker_state = state
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"checkpoint {path} does not fit this trial's network: {exc}") from None
        self.epoch_ = int(state["epoch"])
        self.stopped_ = bool(state["early"]["stopped"])
        return self.epoch_
