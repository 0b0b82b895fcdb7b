"""Each compressor's parameters as a pydantic model, and the plan-time check built from it.

A compressor's parameters come from its fixed ``params`` and its searched space entries
(``prune.amount``); one model validates both, so a bad value gets the same message before
the run (:func:`check_values`, called by the plan) and inside a trial. This module does not
import torch: the plugin manager loads the plugin for every ``automl`` command.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from automl.plugin import Choice, Float, Int, SearchSpace, lazy_import

__all__ = [
    "DistillParams",
    "LowRankParams",
    "OnnxParams",
    "PruneParams",
    "QuantizeParams",
    "check_distill",
    "check_lowrank",
    "check_onnx",
    "check_prune",
    "check_quantize",
    "parse",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PruneParams(_Params):
    """``prune``: remove units/channels (structured) or single weights (unstructured), then fine-tune."""

    method: Literal["structured", "unstructured"] = Field(
        "structured", description="structured removes whole units/channels (smaller and faster); unstructured "
        "zeroes single weights (smaller only when stored sparse; never faster on dense kernels)",
    )
    amount: float = Field(0.5, ge=0.0, description="fraction of units (structured) or weights (unstructured) removed")
    scope: Literal["layer", "global"] = Field(
        "layer", description="the same fraction in every layer, or the smallest over the whole network"
    )
    finetune_epochs: int = Field(2, ge=0, le=1000, description="epochs of training after pruning")
    finetune_lr: float = Field(1.0, gt=0.0, le=10.0, description="fine-tuning learning rate, as a fraction of the trial's lr")

    @model_validator(mode="after")
    def _amount(self) -> PruneParams:
        if self.amount >= 1.0:
            what = "unit in any layer" if self.method == "structured" else "weight"
            raise ValueError(f"amount {self.amount:g} leaves no {what}: use an amount below 1 (e.g. high: 0.9)")
        return self


#: Quantization modes: (runtime the artifact runs on, number format), for ``targets``.
QUANTIZE_MODES: dict[str, tuple[str | None, str | None]] = {
    "none": (None, None),
    "int8_dynamic": ("onnxruntime", "int8"),
    "fp16": ("onnxruntime", "fp16"),
    "torchao_int8_weight_only": ("torch", "int8"),
    "torchao_int8_dynamic": ("torch", "int8"),
    "bf16": ("torch", "bf16"),
}
Target = Literal["onnxruntime", "torch", "int8", "fp16", "bf16"]


def _default_targets() -> list[Target]:
    # fp16 and bf16 are opt-in: on the CPUs measured they halve the size without running faster.
    return ["onnxruntime", "torch", "int8"]


class QuantizeParams(_Params):
    """``quantize``: int8 through ONNX Runtime or torchao, fp16 / bf16 where the deployment runs them."""

    mode: Literal["none", "int8_dynamic", "fp16", "torchao_int8_weight_only", "torchao_int8_dynamic", "bf16"] = Field(
        "int8_dynamic", description="none; int8_dynamic (ONNX Runtime on the ONNX export: the default, the one mode "
        "measured smaller and faster on x86 CPUs); fp16 (ONNX float16: smaller, not faster on a CPU); "
        "torchao_int8_weight_only / torchao_int8_dynamic (torchao quantize_, saved as a torch.export program: "
        "slower than ONNX Runtime fp32 on a CPU, and torchao_int8_dynamic larger than it on small networks); "
        "bf16 (a torch.export program in bfloat16: slower without native bf16)",
    )
    ops: Literal["linear", "all"] = Field(
        "linear", description="int8_dynamic: quantize linear layers only, or convolutions too (slower on x86 CPUs)"
    )
    per_channel: bool = Field(False, description="int8_dynamic: one scale per output channel instead of per tensor")
    targets: list[Target] = Field(
        default_factory=_default_targets,
        description="what the deployment runs: runtimes (onnxruntime, torch) and number formats (int8, fp16, bf16); "
        "a mode needs its runtime and its format listed",
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        # YAML `null` and the word `none` mean the same here.
        return "none" if value is None else value

    @model_validator(mode="after")
    def _allowed(self) -> QuantizeParams:
        runtime, number = QUANTIZE_MODES[self.mode]
        missing = [t for t in (runtime, number) if t is not None and t not in self.targets]
        if missing:
            raise ValueError(
                f"mode {self.mode!r} runs on {runtime} in {number}, but targets {list(self.targets)} lacks "
                f"{' and '.join(missing)}: add it to quantize.params.targets if the deployment runs it, or drop the mode"
            )
        return self


class DistillParams(_Params):
    """``distill``: train a smaller student on the trial's trained model's soft targets."""

    enabled: bool = Field(True, description="false keeps the trial's model (lets the searcher decide whether to distil)")
    width: float = Field(0.5, gt=0.0, le=1.0, description="student units and channels as a fraction of the teacher's")
    units: int | None = Field(None, ge=1, description="student hidden units (overrides width)")
    layers: int | None = Field(None, ge=0, le=32, description="student MLP hidden layers (default: the teacher's)")
    temperature: float = Field(4.0, gt=0.0, le=100.0, description="softmax temperature of the soft targets")
    alpha: float = Field(0.7, ge=0.0, le=1.0, description="weight of the soft-target (KL) loss; 1 - alpha on the labels")
    epochs: int = Field(20, ge=1, le=1000, description="student training epochs")
    lr: float = Field(0.01, gt=0.0, le=10.0, description="student learning rate (AdamW, cosine schedule)")
    teacher_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="fine-tune the teacher with this label smoothing before distilling (0: off)"
    )
    teacher_epochs: int = Field(2, ge=1, le=1000, description="epochs of that label-smoothed fine-tuning")


class LowRankParams(_Params):
    """``lowrank``: factor each linear layer W (out x in) into two of rank r by truncated SVD."""

    enabled: bool = Field(True, description="false keeps the trial's model (lets the searcher decide whether to factorise)")
    ratio: float = Field(0.25, gt=0.0, le=1.0, description="rank as a fraction of min(in, out) of each layer")
    rank: int | None = Field(None, ge=1, description="the same rank for every layer (overrides ratio)")
    finetune_epochs: int = Field(2, ge=0, le=1000, description="epochs of training after factorising")
    finetune_lr: float = Field(1.0, gt=0.0, le=10.0, description="fine-tuning learning rate, as a fraction of the trial's lr")


class OnnxParams(_Params):
    """``onnx``: a scikit-learn pipeline converted with skl2onnx and run by ONNX Runtime."""

    trees: float = Field(1.0, gt=0.0, le=1.0, description="fraction of a forest's trees kept (forest, extra_trees, bagging)")
    keep: Literal["faster", "always"] = Field(
        "faster", description="keep the ONNX file only when it predicts faster than the skops file, or always"
    )
    batch_size: int = Field(1, ge=1, description="batch size of that comparison (use the spec's latency.batch_size)")


def parse(model: type[_Params], params: Mapping[str, Any]) -> Any:
    """Validate ``params`` with ``model``.

    Raises:
        ValueError: Naming the parameter, what was given and what is valid.
    """
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), list(model.model_fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown parameter {name!r}{hint}. Parameters: {', '.join(model.model_fields)}") from None
        msg = str(err["msg"]).removeprefix("Value error, ")
        if "input" in err and not isinstance(err["input"], (dict, list)):
            msg += f" (got {err['input']!r})"
        raise ValueError(f"{name}: {msg}" if name else msg) from None


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return int in typing.get_args(annotation)
    return False


def _space_values(p: Any) -> list[Any]:
    if isinstance(p, Choice):
        return list(p.values)
    if isinstance(p, (Float, Int)):
        return [p.low, p.high, *(p.grid or ())]
    return []


def check_values(model: type[_Params], params: Mapping[str, Any], space: SearchSpace) -> list[Any]:
    """Every value the compressor can be given, validated with the fixed params; returns each parsed combination.

    Raises:
        ValueError: For an unknown parameter, a float range on an integer parameter, or a value the model refuses.
    """
    fields = model.model_fields
    parsed = [parse(model, params)]
    for name, p in space.items():
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"space entry for parameter {name!r}: no such parameter{hint}. Parameters: {', '.join(fields)}")
        if isinstance(p, Float) and _is_int(fields[name].annotation):
            raise ValueError(f"parameter {name!r} is an integer: use `type: int` in the space")
        for value in _space_values(p):
            try:
                parsed.append(parse(model, {**params, name: value}))
            except ValueError as exc:
                raise ValueError(f"the space lets {name!r} take {value!r}, which is refused: {exc}") from None
    return parsed


def _trainer_setting(trainer_params: Mapping[str, Any], name: str, default: Any) -> Any:
    return trainer_params.get(name, default)


def check_prune(params: Mapping[str, Any], space: SearchSpace, trainer_params: Mapping[str, Any]) -> None:
    parsed = check_values(PruneParams, params, space)
    if any(p.method == "structured" for p in parsed):
        lazy_import("torch_pruning", "torch-pruning")()


def check_quantize(params: Mapping[str, Any], space: SearchSpace, trainer_params: Mapping[str, Any]) -> None:
    parsed = check_values(QuantizeParams, params, space)
    modes = {p.mode for p in parsed}
    runtime = _trainer_setting(trainer_params, "runtime", "onnxruntime")
    onnx_modes = sorted(m for m in modes if QUANTIZE_MODES[m][0] == "onnxruntime")
    if onnx_modes and runtime != "onnxruntime":
        raise ValueError(
            f"mode {onnx_modes[0]!r} quantizes the ONNX export, but trainer.params.runtime is {runtime!r} (the "
            "TorchScript file is measured): use runtime: onnxruntime, or a torch mode (torchao_int8_weight_only...)"
        )
    if any(m.startswith("torchao") for m in modes):
        lazy_import("torchao.quantization", "torchao")()


def check_distill(params: Mapping[str, Any], space: SearchSpace, trainer_params: Mapping[str, Any]) -> None:
    check_values(DistillParams, params, space)
    network = str(_trainer_setting(trainer_params, "network", "mlp"))
    if network not in ("mlp", "cnn"):
        raise ValueError(
            f"the student is built like the teacher with fewer units, which needs network mlp or cnn; trainer.params "
            f"network is {network!r}: distil a custom network in its own code, or use prune / lowrank"
        )


def check_lowrank(params: Mapping[str, Any], space: SearchSpace, trainer_params: Mapping[str, Any]) -> None:
    check_values(LowRankParams, params, space)


def check_onnx(params: Mapping[str, Any], space: SearchSpace, trainer_params: Mapping[str, Any]) -> None:
    check_values(OnnxParams, params, space)
    lazy_import("skl2onnx", "skl2onnx")()
    if str(trainer_params.get("export", "skops")) != "skops":
        raise ValueError(
            f"trainer.params.export is {trainer_params.get('export')!r}: the onnx compressor converts the skops export "
            "itself (and keeps it where ONNX is not faster); leave export at skops"
        )
