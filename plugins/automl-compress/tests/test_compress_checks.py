"""Bad compression specs are refused before any trial, with the field and what to do; the shipped specs plan."""

from __future__ import annotations

from pathlib import Path

import pytest

import automl
from automl import parse_spec
from automl.plugin import PluginManager, SpecError, build_plan

ROOT = Path(__file__).resolve().parents[3]

TORCH = """
task: classification
data: {{dataset: digits}}
trainer: {{name: torch, params: {{epochs: 2{params}}}}}
compression: {compression}
space:
  units: {{type: int, low: 16, high: 64}}
{space}
objectives:
  - {{metric: accuracy, mode: max}}
  - {{metric: size_bytes, mode: min}}
"""

SKLEARN = """
task: classification
data: {{dataset: digits}}
trainer: {{name: sklearn, params: {{{params}}}}}
compression: {compression}
space:
  model: {{type: choice, values: [forest, tree]}}
{space}
objectives:
  - {{metric: accuracy, mode: max}}
  - {{metric: latency_ms, mode: min}}
"""


@pytest.fixture(scope="module")
def pm() -> PluginManager:
    return PluginManager()


def plan(pm: PluginManager, template: str, compression: str, space: str = "", params: str = "") -> object:
    text = template.format(compression=compression, space="\n".join(f"  {line}" for line in space.splitlines()),
                           params=params)
    return build_plan(parse_spec(text, "spec.yaml"), pm)


@pytest.mark.parametrize(("template", "compression", "space", "params", "field", "words"), [
    (TORCH, "[{name: prune}]", "prune.amount: {type: float, low: 0.2, high: 1.0}", "", "space.prune.amount",
     ["the space lets 'amount' take 1.0", "leaves no unit in any layer"]),
    (TORCH, "[{name: prune}]", "prune.amout: {type: float, low: 0.2, high: 0.5}", "", "space.prune.amout",
     ["no such parameter", "did you mean 'amount'"]),
    (TORCH, "[{name: prune}]", "prune.finetune_epochs: {type: float, low: 0, high: 3}", "",
     "space.prune.finetune_epochs", ["'finetune_epochs' is an integer: use `type: int`"]),
    (TORCH, "[{name: quantize}]", "quantize.mode: {type: choice, values: [none, int8_dynamic, fp16]}", "",
     "space.quantize.mode", ["'fp16'", "targets", "lacks fp16"]),
    (TORCH, "[{name: quantize, params: {mode: int8_dynamic}}]", "", ", runtime: torchscript", "compression[0].params",
     ["runtime is 'torchscript'", "torchao_int8_weight_only"]),
    (TORCH, "[{name: distill}]", "", ", network: 'tests.nets:build'", "compression[0].params",
     ["needs network mlp or cnn"]),
    (TORCH, "[{name: lowrank, params: {ratio: 0}}]", "", "", "compression[0].params", ["ratio", "greater than 0"]),
    (TORCH, "[{name: prune}]", "quantize.mode: {type: choice, values: [none, int8_dynamic]}", "", "space.quantize.mode",
     ["belongs to compressor 'quantize', which is not in `compression:`"]),
    # Quantizing a scikit-learn tree: the error names what quantize supports and what fits sklearn.
    (SKLEARN, "[{name: quantize}]", "", "", "compression[0].name",
     ["cannot compress models of trainer 'sklearn': it supports torch", "Compressors for 'sklearn': onnx"]),
    (SKLEARN, "[{name: onnx}]", "", "export: onnx", "compression[0].params", ["leave export at skops"]),
    (SKLEARN, "[{name: onnx}]", "onnx.trees: {type: float, low: 0.0, high: 1.0}", "", "space.onnx.trees",
     ["'trees' take 0.0", "greater than 0"]),
])
def test_bad_compression_is_a_spec_error_at_the_field(
    pm: PluginManager, template: str, compression: str, space: str, params: str, field: str, words: list[str]
) -> None:
    with pytest.raises(SpecError) as err:
        plan(pm, template, compression, space, params)
    assert err.value.field == field, str(err.value)
    for word in words:
        assert word in str(err.value)


def test_fp16_is_allowed_where_the_targets_say_the_deployment_runs_it(pm: PluginManager) -> None:
    built = plan(pm, TORCH, "[{name: quantize, params: {targets: [onnxruntime, int8, fp16]}}]",
                 "quantize.mode: {type: choice, values: [none, int8_dynamic, fp16]}")
    assert [r.name for r, _ in built.compressors] == ["quantize"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["torch-mlp-digits-compress.yaml", "torch-cnn-digits-compress.yaml",
                                  "sklearn-digits-onnx.yaml"])
def test_the_shipped_compression_specs_plan(name: str) -> None:
    built = automl.validate(ROOT / "searchspaces" / name, data=False)
    assert built.compressors
    assert any(key.startswith(f"{built.compressor_names[0]}.") for key in built.space)
