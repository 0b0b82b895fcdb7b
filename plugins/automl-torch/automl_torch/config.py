"""The torch trainer's settings: what a search space may tune, what only ``trainer.params`` may fix.

Settings are read from the trial's config first, then from ``trainer.params``, then from
the defaults below, and validated by one pydantic model, so a bad value is refused with
the same message before the run (:func:`check`) and inside a trial. This module does not
import torch: the plugin manager loads it for every command, torch costs seconds to import.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from automl.plugin import Choice, Float, Int, Mode, SearchSpace, Task, import_callable

__all__ = [
    "CLASSIFICATION_METRICS",
    "FIXED_ONLY",
    "REGRESSION_METRICS",
    "Distributed",
    "Settings",
    "check",
    "import_factory",
    "settings_from",
    "trainer_metrics",
]

CLASSIFICATION_METRICS: dict[str, Mode] = {
    "accuracy": "max",
    "balanced_accuracy": "max",
    "f1_macro": "max",
    "loss": "min",
}
REGRESSION_METRICS: dict[str, Mode] = {"r2": "max", "rmse": "min", "mae": "min", "loss": "min"}

#: Built-in networks: the MLP, the CNN, and torchvision's image families written in plain torch (automl_torch.vision).
BUILTIN_NETWORKS = ("mlp", "cnn", "resnet18", "mobilenet_v3_small")
#: The built-in networks that take images (``input_shape``, or data that carries its image shape, required).
IMAGE_NETWORKS = ("cnn", "resnet18", "mobilenet_v3_small")
Activation = Literal["relu", "gelu", "silu", "tanh", "leaky_relu", "elu"]


class Distributed(BaseModel):
    """``trainer.params.distributed``: one trial trained by several processes with DDP."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(ge=1, description="training processes (Ray Train workers) per trial")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker reserves; its torch thread count")
    gpus_per_worker: float = Field(0.0, ge=0, description="GPUs each worker reserves (> 0 trains on GPU with nccl)")
    start_timeout: float = Field(
        600.0, gt=0, description="seconds a trial may wait for room for its workers before it fails"
    )


class Settings(BaseModel):
    """Every setting of one trial, searched or fixed (see the plugin's README for each)."""

    model_config = ConfigDict(extra="forbid")

    # -- network ----------------------------------------------------------------------
    network: str = Field("mlp", description="mlp, cnn, resnet18 (ResNet-18 for small images), mobilenet_v3_small, "
                         "or 'package.module:function' building your nn.Module")
    layers: int = Field(2, ge=0, le=32, description="MLP hidden layers (0: a linear model)")
    units: int = Field(128, ge=1, description="MLP hidden units per layer; CNN units of the dense head")
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False
    channels: int = Field(16, ge=1, description="CNN channels of the first block (doubled per block)")
    conv_layers: int = Field(2, ge=1, le=8, description="CNN convolution blocks")
    kernel_size: int = Field(3, ge=1, le=15, description="CNN kernel size (odd keeps the image size)")
    width_mult: float = Field(1.0, ge=0.05, le=4.0, description="resnet18 / mobilenet_v3_small: channels of every "
                              "layer as a multiple of the standard network's (resnet18: 64 x width_mult first)")
    blocks: int | None = Field(None, ge=1, le=8, description="resnet18: blocks per stage (standard 2); "
                               "mobilenet_v3_small: at most this many blocks per stage (standard: all, up to 3)")
    # -- optimisation -------------------------------------------------------------------
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: Literal["constant", "step", "cosine"] = "constant"
    warmup_epochs: int = Field(0, ge=0, description="epochs of linear learning-rate warm-up")
    step_size: int = Field(10, ge=1, description="step schedule: epochs between decays")
    lr_decay: float = Field(0.1, gt=0.0, le=1.0, description="step schedule: factor per decay")
    grad_clip: float = Field(0.0, ge=0.0, description="max gradient norm; 0 turns clipping off")
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    batch_size: int = Field(64, ge=1, description="global batch: split over the workers with distributed")
    class_weight: Literal["none", "balanced"] = "none"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    augment_flip: bool = Field(False, description="images: flip each training image left-right with probability 0.5")
    augment_crop: int = Field(0, ge=0, le=64, description="images: pad each training image by this many zero pixels "
                              "and crop it back at a random place (torchvision's RandomCrop(size, padding)); 0: off")
    patience: int = Field(0, ge=0, description="stop after this many epochs without a better validation loss; 0: off")
    min_delta: float = Field(0.0, ge=0.0, description="smallest validation-loss decrease that counts as better")
    # -- fixed only (trainer.params) ----------------------------------------------------
    epochs: int = Field(20, ge=1, le=10_000, description="the trial budget: epochs of a full trial")
    input_shape: tuple[int, ...] | None = Field(None, description="image shape [channels, height, width] of a row; "
                                                "default: the data's own (image folders, mnist5k)")
    distributed: Distributed | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    loader_workers: int | Literal["auto"] = Field(
        "auto", description="DataLoader worker processes preparing training batches (at most the trial's CPUs); "
        "auto: none, batches gathered and augmented in the training process (measured cheaper per CPU for images "
        "decoded in memory: benchmarks/torch/loading.py)",
    )
    runtime: Literal["onnxruntime", "torchscript"] = Field(
        "onnxruntime", description="which export latency_ms and size_bytes are measured on"
    )

    @field_validator("class_weight", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        # YAML `null` and the word `none` mean the same here.
        return "none" if value is None else value

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if len(value) == 2:
            value = (1, *value)
        if len(value) != 3 or any(v < 1 for v in value):
            raise ValueError(
                f"input_shape must list 3 positive sizes, channels, height and width (or 2: height and "
                f"width), got {list(value)}; digits is [1, 8, 8]"
            )
        return value

    @field_validator("network")
    @classmethod
    def _network(cls, value: str) -> str:
        if value not in BUILTIN_NETWORKS and ":" not in value:
            close = difflib.get_close_matches(value, BUILTIN_NETWORKS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"network {value!r} is neither a built-in ({', '.join(BUILTIN_NETWORKS)}) nor an import path "
                f"'package.module:function'{hint}"
            )
        return value

    @model_validator(mode="after")
    def _cnn_shape(self, info: ValidationInfo) -> Settings:
        # Before the data is loaded (the plan's checks) the shape may still come from it: check_data decides.
        later = bool(info.context and info.context.get(SHAPE_LATER))
        if self.network in IMAGE_NETWORKS and self.input_shape is None and not later:
            raise ValueError(
                f"network {self.network} needs the image shape of a row, and the data gives none (a table, not "
                "images): set trainer.params.input_shape to its channels, height and width, e.g. [1, 8, 8] for "
                "8x8 gray images; image data (data.images, mnist5k, digits) gives its own"
            )
        return self

    @model_validator(mode="after")
    def _augment_shape(self, info: ValidationInfo) -> Settings:
        later = bool(info.context and info.context.get(SHAPE_LATER))
        if (self.augment_flip or self.augment_crop) and self.input_shape is None and not later:
            raise ValueError("augment_flip / augment_crop work on images, and the data gives no image shape: set "
                             "trainer.params.input_shape to the image shape of a row (channels, height, width), "
                             "e.g. [1, 8, 8] for 8x8 gray images")
        if isinstance(self.loader_workers, int) and not 0 <= self.loader_workers <= 64:
            raise ValueError(f"loader_workers is {self.loader_workers}: 0 to 64, or auto")
        return self

    @property
    def workers(self) -> int:
        return self.distributed.workers if self.distributed else 1


#: Settings only ``trainer.params`` may give: the budget, the data's shape, where it runs.
FIXED_ONLY: dict[str, str] = {
    "epochs": "it is the trial budget (the steps ASHA counts), the same for every trial",
    "input_shape": "it describes the data, not the model",
    "distributed": "it sets the trial's processes and resources",
    "device": "it sets where trials run",
    "runtime": "it sets how every trial is measured",
    "loader_workers": "it sets the trial's processes",
}
#: Settings that only mean something for a classification task.
CLASSIFICATION_ONLY = ("class_weight", "label_smoothing")


#: Names users bring from other libraries (scikit-learn's MLP, Keras, timm) -> ours.
ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "learning_rate_init": "lr",
    "hidden_units": "units",
    "hidden_size": "units",
    "hidden_layers": "layers",
    "num_layers": "layers",
    "n_layers": "layers",
    "max_grad_norm": "grad_clip",
    "clip_grad_norm": "grad_clip",
    "gradient_clipping": "grad_clip",
    "wd": "weight_decay",
    "lr_scheduler": "schedule",
    "scheduler": "schedule",
    "warmup": "warmup_epochs",
    "amp": "precision",
    "mixed_precision": "precision",
    "early_stopping_patience": "patience",
    "smoothing": "label_smoothing",
    "max_epochs": "epochs",
}


def suggest(name: str) -> str:
    """``; did you mean 'x'?`` for a misspelled or foreign setting name, or nothing."""
    close = ALIASES.get(name) or next(iter(difflib.get_close_matches(name, list(Settings.model_fields), n=1)), None)
    return f"; did you mean {close!r}?" if close else ""


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown setting {err['loc'][-1]!r}" + suggest(str(err["loc"][-1]))
        msg += f". Settings of the torch trainer: {', '.join(Settings.model_fields)}"
        return msg
    if "input" in err and not isinstance(err["input"], (dict, list, tuple)):
        msg += f" (got {err['input']!r})"
    return f"{where}: {msg}" if where else msg


#: Validation context key: the data is not known yet, an image network may get its shape from it.
SHAPE_LATER = "shape_later"


def settings_from(config: Mapping[str, Any], params: Mapping[str, Any],
                  image_shape: tuple[int, int, int] | None = None, *, shape_later: bool = False) -> Settings:
    """The trial's settings: ``config`` over ``params`` over the defaults.

    Args:
        config: The trial's searched values.
        params: The spec's fixed ``trainer.params``.
        image_shape: The data's image shape (:attr:`automl.plugin.Splits.image_shape`): ``input_shape``
            when the params give none.
        shape_later: The data is not known yet (plan-time checks): an image network without
            ``input_shape`` passes, its shape to come from the data (:func:`check_data` decides).

    Raises:
        ValueError: Naming the setting, what was given and what is valid; an ``input_shape`` that
            is not the data's image shape, naming both.
    """
    merged = {**dict(params), **dict(config)}
    if image_shape is not None and merged.get("input_shape") is None:
        merged["input_shape"] = tuple(image_shape)
    try:
        settings = Settings.model_validate(merged, context={SHAPE_LATER: shape_later})
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from None
    if image_shape is not None and settings.input_shape != tuple(image_shape):
        raise ValueError(_shape_mismatch(list(settings.input_shape or ()), list(image_shape)))
    return settings


def _shape_mismatch(given: list[int], image: list[int]) -> str:
    return (f"trainer.params.input_shape {given} does not fit the data: its rows are images of input_shape {image}; "
            f"set input_shape: {image}, or leave it out (the data gives it)")


def import_factory(path: str) -> Callable[..., Any]:
    """Import the custom network factory ``package.module:function`` (user code: it runs in every trial).

    Raises:
        ValueError: When the module or the attribute does not exist or is not callable.
    """
    return import_callable(path, what="network")


def trainer_metrics(task: Task, params: Mapping[str, Any]) -> Mapping[str, Mode]:
    """What a trial reports for ``task`` (``loss`` is the validation loss)."""
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def extra_resources(params: Mapping[str, Any]) -> dict[str, float]:
    """What a trial's DDP workers reserve besides the trial's own resources (none without ``distributed``)."""
    raw = params.get("distributed")
    if not raw:
        return {}
    try:
        d = Distributed.model_validate(raw)
    except ValueError:
        return {}  # the plan's check reports the bad setting with its field
    return {"CPU": d.workers * d.cpus_per_worker, "GPU": d.workers * d.gpus_per_worker}


def _space_values(name: str, param: Any) -> list[Any]:
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, (Float, Int)):
        return [param.low, param.high]
    return []


def check(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    """Before any trial: every setting exists, every value it can take is valid.

    Raises:
        ValueError: For an unknown setting, a value out of range, a fixed-only setting in
            the space, a custom network that cannot be imported, or a GPU asked for where
            torch sees none. An image network without ``input_shape`` passes here: the data
            may carry its image shape, which :func:`check_data` (the loaded table) checks.
    """
    fields = Settings.model_fields
    for name, param in space.items():
        if name not in fields:
            raise ValueError(
                f"space parameter {name!r} is not a setting of the torch trainer{suggest(name)}"
                f". Settings: {', '.join(n for n in fields if n not in FIXED_ONLY)}"
            )
        if name in FIXED_ONLY:
            raise ValueError(f"{name!r} cannot be searched ({FIXED_ONLY[name]}): set it in trainer.params")
        if isinstance(param, Float) and fields[name].annotation is int:
            raise ValueError(f"space parameter {name!r} is an integer setting: use `type: int`")
    for name in CLASSIFICATION_ONLY:
        if task != "classification" and (name in space or name in params):
            raise ValueError(f"{name!r} applies to classification only; this task is {task}")
    base = settings_from({}, params, shape_later=True)
    # Each value a space parameter can take must validate together with the fixed params
    # (an fp16 choice needs a device that is not cpu).
    networks = {base.network}
    for name, param in space.items():
        for value in _space_values(name, param):
            try:
                settings_from({name: value}, params, shape_later=True)
            except ValueError as exc:
                raise ValueError(f"space parameter {name!r} can take {value!r}, which the torch trainer refuses: {exc}") from None
            if name == "network":
                networks.add(str(value))
    for network in sorted(networks):
        if ":" in network:
            import_factory(network)
    gpu_workers = bool(base.distributed and base.distributed.gpus_per_worker)
    if base.device == "cuda" or gpu_workers:
        import torch

        if not torch.cuda.is_available():
            why = "device: cuda" if base.device == "cuda" else "distributed.gpus_per_worker > 0"
            raise ValueError(
                f"{why} needs a GPU, and torch {torch.__version__} sees none on this machine: use device: auto "
                f"(the trial's GPU when Ray gives it one, else the CPU) or run the search on a GPU machine"
            )


def check_data(task: Task, params: Mapping[str, Any], table: Any, *, space: SearchSpace | None = None) -> None:
    """Refuse a table the network cannot take: columns that are not numbers or booleans (text, dates), a row
    that is not ``input_shape`` values long, an ``input_shape`` other than the data's image shape
    (:attr:`automl.plugin.Table.image_shape`), or, with neither, an image network or augmentation fixed in
    ``trainer.params`` or reachable in ``space`` (the engine passes the search space by keyword: plan-time
    :func:`check` sees the space but not the data). When the shape comes from the data, says so in the table's
    notes (``automl validate`` prints them).

    Raises:
        ValueError: Naming the columns or the shapes and what to do, so ``automl validate`` says it before any
            trial fails.
    """
    import pandas as pd

    X = table.X
    image = list(table.image_shape) if getattr(table, "image_shape", None) else None
    given = settings_from({}, params, shape_later=True).input_shape
    shape = list(given) if given else None
    if shape and image and shape != image:
        raise ValueError(_shape_mismatch(shape, image))
    if shape and math.prod(shape) != X.shape[1]:
        raise ValueError(
            f"trainer.params.input_shape {shape} does not fit the data: {shape} is {math.prod(shape)} values a row "
            f"and the data has {X.shape[1]} feature columns; give the data's [channels, height, width]"
        )
    if shape is None and image is None:
        side = math.isqrt(X.shape[1])
        hint = f" (its {X.shape[1]} columns as {side}x{side} gray images: [1, {side}, {side}])" \
            if side > 1 and side * side == X.shape[1] else ""
        _no_image_needed(params, space, hint)
    bad = [str(c) for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
    if bad:
        shown = ", ".join(repr(c) for c in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(
            f"the torch trainer takes numeric (or boolean) feature columns only; {shown} "
            f"{'is' if len(bad) == 1 else 'are'} {X[bad[0]].dtype}: encode them as numbers (or remove them) "
            f"before the search, or use the sklearn trainer, which encodes categories"
        )
    if shape is None and image is not None:
        note = f"torch: input_shape {image}, the data's image shape (trainer.params.input_shape not given)"
        if note not in table.notes:
            table.notes.append(note)


def _no_image_needed(params: Mapping[str, Any], space: SearchSpace | None, hint: str) -> None:
    """Refuse an image network or augmentation, fixed in ``params`` or a value ``space`` can take, where no image
    shape is known (neither ``input_shape`` nor the data's); ``hint`` follows the shape error.

    Raises:
        ValueError: The shape error, naming the space parameter, its value and its values.
    """
    try:
        settings_from({}, params)
    except ValueError as exc:
        raise ValueError(f"{exc}{hint}") from None
    for name, param in (space or {}).items():
        for value in _space_values(name, param):
            try:
                settings_from({name: value}, params)
            except ValueError as exc:
                try:
                    settings_from({name: value}, params, shape_later=True)
                except ValueError:
                    continue  # refused whatever the shape: check() says why, at plan time
                if isinstance(param, Choice):
                    values = ", ".join(repr(v) for v in param.values)
                    instead = f"or leave {value!r} out of its values"
                else:
                    values, instead = f"{param.low!r} to {param.high!r}", f"or leave {name!r} out of the space"
                raise ValueError(f"space parameter {name!r} can take {value!r} (its values: {values}): {exc}{hint}; "
                                 f"{instead}") from None
