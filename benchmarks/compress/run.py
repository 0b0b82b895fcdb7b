"""Compression benchmark (issue 7): digits MLP and CNN per technique, searched fronts with and without
compression, scikit-learn models on ONNX Runtime.

    nice -n 10 .venv/bin/python -m benchmarks.compress techniques --network mlp --seeds 0 1 2
    nice -n 10 .venv/bin/python -m benchmarks.compress techniques --network cnn --seeds 0 1 2
    nice -n 10 .venv/bin/python -m benchmarks.compress techniques --network mlp-wide --seeds 0 1 2
    nice -n 10 .venv/bin/python -m benchmarks.compress techniques --network cnn-wide --seeds 0 1 2
    nice -n 10 .venv/bin/python -m benchmarks.compress techniques --network cnn-xl --seeds 0 1 2
    nice -n 10 .venv/bin/python -m benchmarks.compress sklearn
    nice -n 10 .venv/bin/python -m benchmarks.compress search --network mlp --variant plain --seed 0
    nice -n 10 .venv/bin/python -m benchmarks.compress search --network mlp --variant compressed --seed 0
    nice -n 10 .venv/bin/python -m benchmarks.compress fronts --network mlp --seed 0
    (search and fronts also for --network cnn, mlp-wide and cnn-wide: the wide spaces reach compute-bound sizes;
    and cnn-mnist, issue 18's 28x28 task: --trials 30, results and specs versioned in benchmarks/compress/results/;
    cnn-mnist-e10 trains it 10 epochs; cnn-mnist-xl is its compute-bound case, techniques too; cnn-mnist-xl-wall
    is a plain search given each cnn-mnist-xl compressed search's wall time, run after it, then fronts;
    cnn-mnist-big (--trials 24, compressed only) and cnn-mnist-big-wall (plain) the same over a space whose
    smallest network is cnn-mnist-xl's reference network)
    .venv/bin/python -m benchmarks.compress report          # only rewrite RESULTS.md

``techniques``: one reference network per seed (the trial seed; the data split is the engine's
with seed 0), trained as a trial trains it, then each technique applied to a copy through the
trial's own compress step (:func:`automl.plugin.compress`, compressors from the plugin
registry): size = bytes of the final file, accuracy = the file's (validation and test),
latency = the engine's protocol (:func:`automl.measure.measure_latency`: one thread, warm-up,
median of timed calls) on the file loaded back by the trainer, at batch 1 (20 warm-up, 200
calls) and 256 (5 warm-up, 50 calls). Latencies are measured after every file of a seed is
written, in ``--rounds`` interleaved rounds (the order rotated each round), so drift of this
shared 2-core machine hits every technique alike; tables give the median and the min-max over
seeds x rounds. Every table and front also times the per-call floor (:data:`FLOOR`, a 1x16 MLP) in
the same rounds: no model of digits runs at batch 1 in less than that.

``search``: ``automl.search`` over the same training space with or without the compression
entries (prune -> distill -> quantize), MOTPE, the same trials and seed. ``fronts``: the two
runs' front members measured again side by side (interleaved, batch 1 and 256), the front and its
hypervolume recomputed from those measurements with one fixed reference point, and the goal
checked: the most accurate uncompressed member against the compressed members within 1 point of
its validation accuracy (>= 4x smaller and >= 2x faster at batch 1).

``sklearn``: each zoo model fitted on digits, its skops file against its skl2onnx file (through
the ``onnx`` compressor with ``keep: always``), both timed the same way.

Results are kept as JSON under ``benchmarks/results/compress/`` (not versioned); ``RESULTS.md``
is rebuilt from every result found there.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.environment import environment as shared_environment

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "benchmarks" / "results" / "compress"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: Versioned results (the 28x28 tables and fronts of issue 18): RESULTS.md is rebuilt from these and RAW.
KEPT = Path(__file__).resolve().parent / "results"

#: The reference networks of the technique tables (trainer settings, fixed params).
NETWORKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mlp": ({"network": "mlp", "layers": 2, "units": 256, "lr": 0.001, "batch_size": 64},
            {"epochs": 20, "optimizer": "adamw", "schedule": "cosine"}),
    "cnn": ({"network": "cnn", "channels": 16, "conv_layers": 2, "units": 128, "lr": 0.003, "batch_size": 64},
            {"epochs": 15, "optimizer": "adamw", "schedule": "cosine", "input_shape": [1, 8, 8]}),
    # A wide MLP (the top of torch-mlp-digits.yaml's LCBench space): compute-bound at batch 1, unlike the others.
    "mlp-wide": ({"network": "mlp", "layers": 3, "units": 1024, "lr": 0.0005, "batch_size": 64},
                 {"epochs": 20, "optimizer": "adamw", "schedule": "cosine"}),
    # A deep, wide CNN (the top of torch-cnn-digits-asha.yaml's space at kernel 3: 32-64-128 channels, 256 units).
    "cnn-wide": ({"network": "cnn", "channels": 32, "conv_layers": 3, "units": 256, "lr": 0.003, "batch_size": 64},
                 {"epochs": 15, "optimizer": "adamw", "schedule": "cosine", "input_shape": [1, 8, 8]}),
    # Twice as wide (64-128 channels, 512 units), beyond every CNN space of searchspaces/: the cnn-wide reference
    # takes only about 2.5x the per-call floor at batch 1, this one about 5x.
    "cnn-xl": ({"network": "cnn", "channels": 64, "conv_layers": 2, "units": 512, "lr": 0.003, "batch_size": 64},
               {"epochs": 15, "optimizer": "adamw", "schedule": "cosine", "input_shape": [1, 8, 8]}),
    # Issue 18: a CNN on real 28x28 digits (mnist5k), every quantization mode measured where it matters.
    "cnn-mnist": ({"network": "cnn", "channels": 16, "conv_layers": 2, "units": 128, "lr": 0.003, "batch_size": 64},
                  {"epochs": 5, "optimizer": "adamw", "schedule": "cosine", "input_shape": [1, 28, 28]}),
}
# Issue 18's searches again with 10 training epochs instead of 3 (everything else, the reference point included, as
# cnn-mnist's, fixed before the run): after 3 epochs the most accurate plain network was a small one near the
# per-call floor, which left compression nothing to pay for.
NETWORKS["cnn-mnist-e10"] = NETWORKS["cnn-mnist"]
# Issue 18's compute-bound case: the 28x28 space's largest network but one (48-96 channels, 256 units: 5.0 MB, about
# 0.22 ms at batch 1, 18x ONNX Runtime's per-call floor), and a search space that holds only such networks (below).
NETWORKS["cnn-mnist-xl"] = ({**NETWORKS["cnn-mnist"][0], "channels": 48, "units": 256}, NETWORKS["cnn-mnist"][1])
#: The data set of a network's table (digits unless named here).
DATASETS: dict[str, str] = {"cnn-mnist": "mnist5k", "cnn-mnist-e10": "mnist5k", "cnn-mnist-xl": "mnist5k"}
# Issue 18's fourth set (twenty-fourth session, 2026-12-07, fixed before its first run): a space whose smallest network
# is cnn-mnist-xl's reference network itself (below). Its reference network is that one; its technique table is
# cnn-mnist-xl's.
NETWORKS["cnn-mnist-big"] = NETWORKS["cnn-mnist-xl"]
DATASETS["cnn-mnist-big"] = "mnist5k"
#: The per-call floor: the smallest network of the searches (one layer of 16 units), untrained (its weights do not
#: change its latency), timed in the same interleaved rounds as the models of a table or front.
FLOOR = ({"network": "mlp", "layers": 1, "units": 16, "lr": 0.001, "batch_size": 64}, {"epochs": 1})
FLOOR_KEY = "floor: MLP 1x16 (ONNX fp32)"

Step = tuple[str, dict[str, Any]]
#: Not a compressor: the float32 network saved as a torch.export program, the baseline of the torch-runtime rows.
TORCH_FP32 = "torch.export float32"
#: name -> compressors in order (an empty list: the uncompressed reference).
TECHNIQUES: dict[str, dict[str, list[Step] | str]] = {
    "mlp": {
        "uncompressed (ONNX fp32)": [],
        "prune structured 50%": [("prune", {"amount": 0.5, "finetune_epochs": 3})],
        "prune structured 75%": [("prune", {"amount": 0.75, "finetune_epochs": 3})],
        "prune unstructured 80% (sparse ONNX)": [("prune", {"method": "unstructured", "amount": 0.8, "finetune_epochs": 3})],
        "prune unstructured 95% (sparse ONNX)": [("prune", {"method": "unstructured", "amount": 0.95, "finetune_epochs": 3})],
        "lowrank ratio 0.25": [("lowrank", {"ratio": 0.25, "finetune_epochs": 3})],
        "int8 dynamic (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic"})],
        "fp16 (ONNX Runtime)": [("quantize", {"mode": "fp16", "targets": ["onnxruntime", "fp16"]})],
        "torch.export fp32 (torch)": TORCH_FP32,
        "torchao int8 weight-only (torch)": [("quantize", {"mode": "torchao_int8_weight_only"})],
        "torchao int8 dynamic (torch)": [("quantize", {"mode": "torchao_int8_dynamic"})],
        "bf16 (torch)": [("quantize", {"mode": "bf16", "targets": ["torch", "bf16"]})],
        "student 1/4 width, labels only (no teacher)": [("distill", {"width": 0.25, "alpha": 0.0})],
        "distill 1/4 width": [("distill", {"width": 0.25})],
        "distill 1/4 width, label-smoothed teacher": [("distill", {"width": 0.25, "teacher_smoothing": 0.1})],
        "student 1/16 width, labels only (no teacher)": [("distill", {"width": 0.0625, "alpha": 0.0})],
        "distill 1/16 width": [("distill", {"width": 0.0625})],
        "distill 1/16 width, label-smoothed teacher": [("distill", {"width": 0.0625, "teacher_smoothing": 0.1})],
        "prune structured 75% + int8": [("prune", {"amount": 0.75, "finetune_epochs": 3}), ("quantize", {})],
        "distill 1/4 width + int8": [("distill", {"width": 0.25}), ("quantize", {})],
    },
    "mlp-wide": {
        "uncompressed (ONNX fp32)": [],
        "prune structured 75%": [("prune", {"amount": 0.75, "finetune_epochs": 3})],
        "prune structured 90%": [("prune", {"amount": 0.9, "finetune_epochs": 3})],
        "int8 dynamic (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic"})],
        "prune structured 75% + int8": [("prune", {"amount": 0.75, "finetune_epochs": 3}), ("quantize", {})],
        "student 1/16 width, labels only (no teacher)": [("distill", {"width": 0.0625, "alpha": 0.0})],
        "distill 1/16 width": [("distill", {"width": 0.0625})],
        "distill 1/16 width, label-smoothed teacher": [("distill", {"width": 0.0625, "teacher_smoothing": 0.1})],
        "distill 1/16 width + int8": [("distill", {"width": 0.0625}), ("quantize", {})],
        "distill 1/4 width": [("distill", {"width": 0.25})],
    },
    "cnn-wide": {
        "uncompressed (ONNX fp32)": [],
        "prune structured 50%": [("prune", {"amount": 0.5, "finetune_epochs": 3})],
        "prune structured 75%": [("prune", {"amount": 0.75, "finetune_epochs": 3})],
        "int8 dynamic, linear layers (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "linear"})],
        "student 1/4 width, labels only (no teacher)": [("distill", {"width": 0.25, "alpha": 0.0})],
        "distill 1/4 width": [("distill", {"width": 0.25})],
        "distill 1/4 width, label-smoothed teacher": [("distill", {"width": 0.25, "teacher_smoothing": 0.1})],
        "distill 1/2 width": [("distill", {"width": 0.5})],
        "prune structured 50% + int8 linear": [("prune", {"amount": 0.5, "finetune_epochs": 3}), ("quantize", {})],
        "distill 1/4 width + int8 linear": [("distill", {"width": 0.25}), ("quantize", {})],
    },
    "cnn": {
        "uncompressed (ONNX fp32)": [],
        "prune structured 50%": [("prune", {"amount": 0.5, "finetune_epochs": 3})],
        "prune structured 75%": [("prune", {"amount": 0.75, "finetune_epochs": 3})],
        "prune unstructured 80% (sparse ONNX)": [("prune", {"method": "unstructured", "amount": 0.8, "finetune_epochs": 3})],
        "lowrank ratio 0.25 (dense layers)": [("lowrank", {"ratio": 0.25, "finetune_epochs": 3})],
        "int8 dynamic, linear layers (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "linear"})],
        "int8 dynamic, convolutions too (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "all"})],
        "fp16 (ONNX Runtime)": [("quantize", {"mode": "fp16", "targets": ["onnxruntime", "fp16"]})],
        "torch.export fp32 (torch)": TORCH_FP32,
        "torchao int8 weight-only (torch)": [("quantize", {"mode": "torchao_int8_weight_only"})],
        "student 1/2 width, labels only (no teacher)": [("distill", {"width": 0.5, "alpha": 0.0})],
        "distill 1/2 width": [("distill", {"width": 0.5})],
        "distill 1/2 width, label-smoothed teacher": [("distill", {"width": 0.5, "teacher_smoothing": 0.1})],
        "prune structured 50% + int8 linear": [("prune", {"amount": 0.5, "finetune_epochs": 3}), ("quantize", {})],
    },
}
TECHNIQUES["cnn-mnist"] = {
    "uncompressed (ONNX fp32)": [],
    "prune structured 50%": [("prune", {"amount": 0.5, "finetune_epochs": 1})],
    "int8 dynamic, linear layers (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "linear"})],
    "int8 dynamic, convolutions too (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "all"})],
    "fp16 (ONNX Runtime)": [("quantize", {"mode": "fp16", "targets": ["onnxruntime", "fp16"]})],
    "torch.export fp32 (torch)": TORCH_FP32,
    "torchao int8 weight-only (torch)": [("quantize", {"mode": "torchao_int8_weight_only"})],
    "torchao int8 dynamic (torch)": [("quantize", {"mode": "torchao_int8_dynamic"})],
    "bf16 (torch)": [("quantize", {"mode": "bf16", "targets": ["torch", "bf16"]})],
    "prune structured 50% + int8 linear": [("prune", {"amount": 0.5, "finetune_epochs": 1}), ("quantize", {})],
}
# The compute-bound 28x28 network: pruning and the ONNX Runtime modes (the torch-runtime modes were 10-360x slower
# than ONNX Runtime fp32 on cnn-mnist's table, and int8 convolutions 5x slower; kept once here to say so again).
TECHNIQUES["cnn-mnist-xl"] = {
    "uncompressed (ONNX fp32)": [],
    "prune structured 50%": [("prune", {"amount": 0.5, "finetune_epochs": 2})],
    "prune structured 75%": [("prune", {"amount": 0.75, "finetune_epochs": 2})],
    "int8 dynamic, linear layers (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "linear"})],
    "int8 dynamic, convolutions too (ONNX Runtime)": [("quantize", {"mode": "int8_dynamic", "ops": "all"})],
    "fp16 (ONNX Runtime)": [("quantize", {"mode": "fp16", "targets": ["onnxruntime", "fp16"]})],
    "prune structured 50% + int8 linear": [("prune", {"amount": 0.5, "finetune_epochs": 2}), ("quantize", {})],
    "prune structured 75% + int8 linear": [("prune", {"amount": 0.75, "finetune_epochs": 2}), ("quantize", {})],
}
# The widest CNN runs the cnn-wide techniques but pruning + int8 (timed on cnn-wide already).
TECHNIQUES["cnn-xl"] = {k: v for k, v in TECHNIQUES["cnn-wide"].items() if k != "prune structured 50% + int8 linear"}


def environment() -> dict[str, Any]:
    return shared_environment("torch", "onnxruntime")


def _save(name: str, result: dict[str, Any]) -> Path:
    """``RAW/name.json``; a 28x28 network's result also under :data:`KEPT`, which is versioned."""
    RAW.mkdir(parents=True, exist_ok=True)
    path = RAW / f"{name}.json"
    text = json.dumps(result, indent=2, default=str)
    path.write_text(text)
    if result.get("network") in DATASETS:
        KEPT.mkdir(parents=True, exist_ok=True)
        (KEPT / f"{name}.json").write_text(text)
    return path


def _digits(name: str = "digits") -> Any:
    """A data set split as the engine splits it with seed 0 (digits, or mnist5k for the 28x28 tables)."""
    from automl.plugin import get_plugin_manager, split

    return split(get_plugin_manager().datasets.get(name).load({}), "classification", valid=0.2, test=0.2, seed=0)


def _floor_entry(data: Any, directory: Path) -> tuple[str, Callable[[Any], Any], Any, Any]:
    """The per-call floor's timing entry (see :data:`FLOOR`)."""
    from automl_torch import NeuralNetTrainer

    from automl.plugin import TrialContext

    directory.mkdir(parents=True, exist_ok=True)
    trainer = NeuralNetTrainer(*FLOOR, TrialContext("classification", 0, data, directory, 1.0, 0.0))
    for _ in trainer.run_steps(1):
        pass
    artifact = trainer.export(directory)
    return FLOOR_KEY, trainer.load_predictor(artifact), trainer.sample_input(1), trainer.sample_input(256)


def _timed(entries: Sequence[tuple[str, Callable[[Any], Any], Any, Any]], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Latency of each predictor at batch 1 and 256, ``rounds`` interleaved rounds, the order rotated each round."""
    from automl.plugin import measure_latency

    out: dict[str, dict[str, list[float]]] = {name: {"b1": [], "b256": []} for name, *_ in entries}
    for r in range(rounds):
        order = list(entries[r % len(entries):]) + list(entries[: r % len(entries)])
        for name, predict, one, many in order:
            out[name]["b1"].append(measure_latency(predict, one, warmup=20, repeats=200))
            out[name]["b256"].append(measure_latency(predict, many, warmup=5, repeats=50))
    return out


# -- techniques ----------------------------------------------------------------------------


def run_techniques(network: str, seeds: Sequence[int], rounds: int, only: Sequence[str] | None) -> None:
    import tempfile

    from automl_compress.quantize import save_program
    from automl_compress.torch_tools import example_rows
    from automl_torch import NeuralNetTrainer

    from automl.plugin import TrialContext, compress, get_plugin_manager

    registry = get_plugin_manager().compressors
    data = _digits(DATASETS.get(network, "digits"))
    config, params = NETWORKS[network]
    techniques = {k: v for k, v in TECHNIQUES[network].items() if not only or k in only or not v}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            reference = NeuralNetTrainer(config, params, TrialContext("classification", seed, data, Path(tmp), 1.0, 0.0))
            for _ in reference.run_steps(1):
                pass
            train_s = time.perf_counter() - start
            rows: list[dict[str, Any]] = []
            timed: list[tuple[str, Callable[[Any], Any], Any, Any]] = []
            for name, steps in techniques.items():
                trainer = copy.deepcopy(reference)
                directory = Path(tmp) / f"t{len(rows):02d}"
                trainer.context = dataclasses.replace(trainer.context, trial_dir=directory)
                begin = time.perf_counter()
                if steps == TORCH_FP32:
                    directory.mkdir(parents=True)
                    artifact = save_program(copy.deepcopy(trainer.net_).cpu().eval(), example_rows(trainer).cpu(),
                                            directory / "model.fp32.pt2")
                    metrics = {**trainer.evaluate_artifact(artifact, "valid"),
                               **{f"test_{k}": v for k, v in trainer.evaluate_artifact(artifact, "test").items()}}
                else:
                    assert isinstance(steps, list)
                    compressors = [(n, registry.get(n).factory(p, trainer.context)) for n, p in steps]
                    artifact, metrics = compress(trainer, compressors, directory, test=True)
                seconds = time.perf_counter() - begin
                rows.append({"technique": name, "steps": steps, "file": artifact.name,
                             "size_bytes": artifact.stat().st_size, "accuracy": metrics["accuracy"],
                             "test_accuracy": metrics["test_accuracy"], "sparsity": metrics.get("sparsity"),
                             "compress_s": seconds})
                timed.append((name, trainer.load_predictor(artifact), trainer.sample_input(1), trainer.sample_input(256)))
                print(f"[{network} seed {seed}] {name}: {artifact.name} {artifact.stat().st_size} B, accuracy "
                      f"{metrics['accuracy']:.4f} / test {metrics['test_accuracy']:.4f} ({seconds:.1f}s)", flush=True)
            timed.append(_floor_entry(data, Path(tmp) / "floor"))
            latencies = _timed(timed, rounds)
            floor = latencies[FLOOR_KEY]
            print(f"[{network} seed {seed}] {FLOOR_KEY}: b1 {statistics.median(floor['b1']):.4f} ms", flush=True)
            for row in rows:
                row.update(latency_b1=latencies[row["technique"]]["b1"], latency_b256=latencies[row["technique"]]["b256"])
                print(f"[{network} seed {seed}] {row['technique']}: b1 {statistics.median(row['latency_b1']):.4f} ms, "
                      f"b256 {statistics.median(row['latency_b256']):.4f} ms", flush=True)
        suffix = "" if not only else "-partial"
        _save(f"techniques-{network}-{seed}{suffix}", {
            "kind": "techniques", "network": network, "seed": seed, "config": config, "params": params,
            "train_s": train_s, "rounds": rounds, "rows": rows, "floor": floor, "environment": environment(),
        })


# -- searches --------------------------------------------------------------------------------

_MLP_SPACE: dict[str, dict[str, Any]] = {
    "lr": {"type": "float", "low": 0.0005, "high": 0.01, "log": True},
    "batch_size": {"type": "int", "low": 32, "high": 256, "log": True},
    "layers": {"type": "int", "low": 1, "high": 3},
    "units": {"type": "int", "low": 16, "high": 512, "log": True},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
}
_CNN_SPACE: dict[str, dict[str, Any]] = {
    "lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
    "batch_size": {"type": "int", "low": 32, "high": 256, "log": True},
    "channels": {"type": "int", "low": 4, "high": 32, "log": True},
    "conv_layers": {"type": "int", "low": 1, "high": 2},
    "units": {"type": "int", "low": 16, "high": 256, "log": True},
}
TRAINING_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": _MLP_SPACE,
    "cnn": _CNN_SPACE,
    # The wide end is compute-bound at batch 1: torch-mlp-digits.yaml's LCBench units (64-1024), up to 3 layers.
    "mlp-wide": {**_MLP_SPACE, "units": {"type": "int", "low": 64, "high": 1024, "log": True}},
    # torch-cnn-digits-asha.yaml's sizes (channels 4-32 doubled per block, 1-3 blocks, 16-256 units).
    "cnn-wide": {**_CNN_SPACE, "conv_layers": {"type": "int", "low": 1, "high": 3}},
    # Issue 18, 28x28 digits: two conv blocks always (conv_layers is fixed in the trainer params, so one conv block's
    # 14x14 feature map never feeds a dense layer of 6 MB), 8-48 channels (16-96 in the second block), 32-256
    # units. The largest network (48 ch, 256 units) is 5.0 MB and takes about 0.33 ms at batch 1; the middle of the
    # space (32 ch, 128 units) 1.7 MB and 0.15 ms, about 18x ONNX Runtime's per-call floor: compute-bound at batch 1.
    "cnn-mnist": {"lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
                  "batch_size": {"type": "int", "low": 32, "high": 256, "log": True},
                  "channels": {"type": "int", "low": 8, "high": 48, "log": True},
                  "units": {"type": "int", "low": 32, "high": 256, "log": True}},
}
#: Trainer params of a search where they differ from the technique table's (epochs: 10 unless named here).
SEARCH_PARAMS: dict[str, dict[str, Any]] = {"cnn-mnist": {"epochs": 3, "conv_layers": 2},
                                             "cnn-mnist-e10": {"epochs": 10, "conv_layers": 2},
                                             "cnn-mnist-xl": {"epochs": 5, "conv_layers": 2}}
COMPRESSION: dict[str, tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]] = {
    "mlp": (
        [{"name": "prune", "params": {"method": "structured"}}, {"name": "distill"}, {"name": "quantize"}],
        {
            "prune.amount": {"type": "float", "low": 0.0, "high": 0.9},
            "prune.finetune_epochs": {"type": "int", "low": 0, "high": 4},
            "distill.enabled": {"type": "choice", "values": [False, True]},
            "distill.width": {"type": "float", "low": 0.05, "high": 0.5, "log": True, "when": {"distill.enabled": True}},
            "quantize.mode": {"type": "choice", "values": ["none", "int8_dynamic"]},
        },
    ),
    "cnn": (
        [{"name": "prune", "params": {"method": "structured"}}, {"name": "quantize", "params": {"ops": "linear"}}],
        {
            "prune.amount": {"type": "float", "low": 0.0, "high": 0.8},
            "prune.finetune_epochs": {"type": "int", "low": 0, "high": 4},
            "quantize.mode": {"type": "choice", "values": ["none", "int8_dynamic"]},
        },
    ),
}
COMPRESSION["mlp-wide"] = COMPRESSION["mlp"]
COMPRESSION["cnn-wide"] = (
    [{"name": "prune", "params": {"method": "structured"}}, {"name": "distill"},
     {"name": "quantize", "params": {"ops": "linear"}}],
    {
        "prune.amount": {"type": "float", "low": 0.0, "high": 0.8},
        "prune.finetune_epochs": {"type": "int", "low": 0, "high": 4},
        "distill.enabled": {"type": "choice", "values": [False, True]},
        "distill.width": {"type": "float", "low": 0.1, "high": 0.5, "log": True, "when": {"distill.enabled": True}},
        "quantize.mode": {"type": "choice", "values": ["none", "int8_dynamic"]},
    },
)
# 28x28: structured pruning (torch-pruning) and ONNX Runtime int8 on the dense layers, the two techniques that paid
# on this CNN in the technique table (int8 convolutions were 5x slower; the torch-runtime modes 10-360x slower).
COMPRESSION["cnn-mnist"] = (
    [{"name": "prune", "params": {"method": "structured"}}, {"name": "quantize", "params": {"ops": "linear"}}],
    {
        "prune.amount": {"type": "float", "low": 0.0, "high": 0.8},
        "prune.finetune_epochs": {"type": "int", "low": 0, "high": 2},
        "quantize.mode": {"type": "choice", "values": ["none", "int8_dynamic"]},
    },
)
#: Hypervolume reference point (the worst values that count), the same for both variants of a network; the wide
#: spaces' largest networks (3x1024 MLP: 8.7 MB, about 0.11 ms) must count. cnn-mnist's was fixed before its first
#: search from its largest network (5.0 MB, 0.33 ms at batch 1), rounded up; accuracy 0.85 as on digits.
REFERENCES: dict[str, dict[str, float]] = {
    "cnn-mnist": {"accuracy": 0.85, "latency_ms": 0.5, "size_bytes": 6.0e6},
    "mlp": {"accuracy": 0.85, "latency_ms": 0.2, "size_bytes": 2.5e6},
    "cnn": {"accuracy": 0.85, "latency_ms": 0.2, "size_bytes": 2.5e6},
    "mlp-wide": {"accuracy": 0.85, "latency_ms": 0.5, "size_bytes": 1.0e7},
    "cnn-wide": {"accuracy": 0.85, "latency_ms": 0.2, "size_bytes": 2.5e6},
}
# The 10-epoch searches: the same space, compression entries and reference point as cnn-mnist's.
TRAINING_SPACE["cnn-mnist-e10"] = TRAINING_SPACE["cnn-mnist"]
COMPRESSION["cnn-mnist-e10"] = COMPRESSION["cnn-mnist"]
REFERENCES["cnn-mnist-e10"] = REFERENCES["cnn-mnist"]
# The compute-bound 28x28 space: 24-64 channels (48-128 in the second block), 128-512 units, so that even its
# smallest network (1.3 MB, about 0.095 ms) takes 8x the per-call floor at batch 1; 5 epochs. Its reference point
# was fixed before its first search from its largest network (64 ch, 512 units: 13.2 MB, 0.55 ms at batch 1 measured
# beside a running search), rounded up with room for a loaded machine's latency.
TRAINING_SPACE["cnn-mnist-xl"] = {**TRAINING_SPACE["cnn-mnist"],
                                  "channels": {"type": "int", "low": 24, "high": 64, "log": True},
                                  "units": {"type": "int", "low": 128, "high": 512, "log": True}}
COMPRESSION["cnn-mnist-xl"] = COMPRESSION["cnn-mnist"]
REFERENCES["cnn-mnist-xl"] = {"accuracy": 0.85, "latency_ms": 1.0, "size_bytes": 1.5e7}
# The fourth set: cnn-mnist-xl's ceilings (1.20-1.24x) showed why compression could not reach 1.2x there: the plain
# search may pick the space's smallest networks (24 channels, 128 units: 1.3 MB, 0.095 ms, under a tenth of the
# reference point's latency and size), so its front already holds most of the box. Here every network is at least
# the compute-bound reference network of the technique table (48 channels, 256 units: 5.0 MB, 0.22 ms): 48-64
# channels (96-128 in the second block), 256-512 units, lr and batch size as before, 5 epochs: the case of a user
# whose accuracy or architecture needs networks of this size, which is what compression is for. The reference point
# is cnn-mnist-xl's (its largest network, 64 ch and 512 units, is this space's too), the searcher MOTPE as before,
# 24 trials for the compressed search (fewer than 30 to fit three seeds in one session); the plain search gets that
# search's wall time (cnn-mnist-big-wall), the same compute; the goal is judged on the linear hypervolume, seeds 0-2.
TRAINING_SPACE["cnn-mnist-big"] = {**TRAINING_SPACE["cnn-mnist"],
                                   "channels": {"type": "int", "low": 48, "high": 64, "log": True},
                                   "units": {"type": "int", "low": 256, "high": 512, "log": True}}
SEARCH_PARAMS["cnn-mnist-big"] = SEARCH_PARAMS["cnn-mnist-xl"]
COMPRESSION["cnn-mnist-big"] = COMPRESSION["cnn-mnist-xl"]
REFERENCES["cnn-mnist-big"] = REFERENCES["cnn-mnist-xl"]
#: Equal compute: a plain search given the wall time that the named network's compressed search took (its trial count
#: unbounded), set against that compressed search in ``fronts``; compression's fine-tuning is not free, and this
#: asks whether the plain search, given that time for more trials, closes the gap.
SAME_WALL: dict[str, str] = {"cnn-mnist-xl-wall": "cnn-mnist-xl", "cnn-mnist-big-wall": "cnn-mnist-big"}
for _wall, _of in SAME_WALL.items():
    NETWORKS[_wall], DATASETS[_wall], TRAINING_SPACE[_wall] = NETWORKS[_of], DATASETS[_of], TRAINING_SPACE[_of]
    COMPRESSION[_wall], REFERENCES[_wall], SEARCH_PARAMS[_wall] = COMPRESSION[_of], REFERENCES[_of], SEARCH_PARAMS[_of]


def _run_key(network: str, variant: str) -> str:
    """The network whose run of ``variant`` a front reads: an equal-compute set's compressed run is its source's."""
    return SAME_WALL.get(network, network) if variant == "compressed" else network


def search_spec(network: str, variant: str, seed: int, trials: int, wall_s: float | None = None) -> dict[str, Any]:
    config, params = NETWORKS[network]
    spec: dict[str, Any] = {
        "name": f"compress-{network}-{variant}",
        "task": "classification",
        "data": {"dataset": DATASETS.get(network, "digits"), "validation": 0.2, "test": 0.2},
        "trainer": {"name": "torch", "params": {**params, "network": config["network"], "epochs": 10,
                                                **SEARCH_PARAMS.get(network, {})}},
        "searcher": {"name": "tpe", "options": {"n_startup_trials": 8}},
        "space": dict(TRAINING_SPACE[network]),
        "objectives": [{"metric": m, "mode": "max" if m == "accuracy" else "min", "reference": r}
                       for m, r in REFERENCES[network].items()],
        "budget": {"trials": trials} if wall_s is None else {"trials": 10 * trials, "wall_time": f"{math.ceil(wall_s)}s"},
        "resources": {"cpu": 1},
        "latency": {"batch_size": 1, "repeats": 50, "final_repeats": 200},
        "seed": seed,
    }
    if variant == "compressed":
        steps, entries = COMPRESSION[network]
        spec["compression"] = steps
        spec["space"].update(entries)
    return spec


def run_search(network: str, variant: str, seed: int, trials: int) -> None:
    import shutil

    import automl

    wall_s = None
    if network in SAME_WALL:
        if variant != "plain":
            raise SystemExit(f"{network}: only a plain search; its compressed search is {SAME_WALL[network]}'s")
        wall_s = json.loads((RAW / f"search-{SAME_WALL[network]}-compressed-{seed}.json").read_text())["wall_s"]
    out = RAW / f"run-{network}-{variant}-{seed}"
    shutil.rmtree(out, ignore_errors=True)
    RAW.mkdir(parents=True, exist_ok=True)
    spec_path = RAW / f"spec-{network}-{variant}-{seed}.yaml"
    spec_path.write_text(yaml.safe_dump(search_spec(network, variant, seed, trials, wall_s), sort_keys=False))
    if network in DATASETS:  # the spec that reproduces a versioned result is versioned with it
        KEPT.mkdir(parents=True, exist_ok=True)
        (KEPT / spec_path.name).write_text(spec_path.read_text())
    start = time.perf_counter()
    run = automl.search(spec_path, out=out)
    wall = time.perf_counter() - start
    trials_rows = run.trials()
    print(f"{network}/{variant} seed {seed}: {len(trials_rows)} trials in {wall:.0f}s", flush=True)
    _save(f"search-{network}-{variant}-{seed}", {
        "kind": "search", "network": network, "variant": variant, "seed": seed, "trials": trials, "wall_s": wall,
        "run_dir": str(out), "spec": str(spec_path),
        "statuses": {s: sum(t["status"] == s for t in trials_rows) for s in {t["status"] for t in trials_rows}},
        "failures": [t["error"] for t in trials_rows if t["status"] == "failed"], "environment": environment(),
    })


def _front_points(members: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[-m["accuracy"], m["latency_b1"], m["size_bytes"]] for m in members], dtype=float)


def run_fronts(network: str, seed: int, rounds: int) -> None:
    """Both runs' front members measured again side by side; fronts, hypervolumes and the goal from those figures."""
    import tempfile

    from automl import load_spec
    from automl.plugin import (
        Run,
        TrialContext,
        build_plan,
        get_plugin_manager,
        hypervolume,
        pareto_front,
        reference_latency,
    )

    members: dict[str, list[dict[str, Any]]] = {}
    timed: list[tuple[str, Callable[[Any], Any], Any, Any]] = []
    floor_dir = Path(tempfile.mkdtemp())
    timed.append(_floor_entry(_digits(DATASETS.get(network, "digits")), floor_dir))
    for variant in ("plain", "compressed"):
        run_dir = RAW / f"run-{_run_key(network, variant)}-{variant}-{seed}"
        plan = build_plan(load_spec(RAW / f"spec-{_run_key(network, variant)}-{variant}-{seed}.yaml"),
                          get_plugin_manager())
        data = plan.load_data()
        assert data is not None, "a search spec with a data set"
        front = json.loads((run_dir / "front.json").read_text())
        rows = {t["number"]: t for t in Run.open(run_dir).trials()}
        members[variant] = []
        for m in front["members"]:
            trainer = plan.trainer.factory(plan.trainer_config(m["config"]), plan.spec.trainer.params,
                                           TrialContext("classification", seed + m["number"], data, run_dir))
            path = run_dir / m["model"]
            key = f"{variant}#{m['number']}"
            timed.append((key, trainer.load_predictor(path), trainer.sample_input(1), trainer.sample_input(256)))
            metrics = rows[m["number"]]["metrics"]
            members[variant].append({
                "key": key, "number": m["number"], "config": m["config"], "file": path.name,
                "size_bytes": path.stat().st_size, "accuracy": metrics["accuracy"],
                "test_accuracy": metrics.get("test_accuracy"), "accuracy_uncompressed": metrics.get("accuracy_uncompressed"),
            })
    before = reference_latency()
    latencies = _timed(timed, rounds)
    after = reference_latency()
    import shutil

    shutil.rmtree(floor_dir, ignore_errors=True)
    reference_point = REFERENCES[network]
    result: dict[str, Any] = {"kind": "fronts", "network": network, "seed": seed, "rounds": rounds,
                              "reference": reference_point, "drift": {"before_ms": before, "after_ms": after},
                              "floor": latencies[FLOOR_KEY]}
    ref = [-reference_point["accuracy"], reference_point["latency_ms"], reference_point["size_bytes"]]
    for variant, rows_ in members.items():
        for m in rows_:
            m["latency_b1"] = statistics.median(latencies[m["key"]]["b1"])
            m["latency_b256"] = statistics.median(latencies[m["key"]]["b256"])
            m["latency_b1_range"] = [min(latencies[m["key"]]["b1"]), max(latencies[m["key"]]["b1"])]
        kept = [rows_[i] for i in pareto_front(_front_points(rows_))] if rows_ else []
        result[variant] = {"members": rows_, "front": [m["key"] for m in kept],
                           "hypervolume": hypervolume(_front_points(kept), ref) if kept else 0.0}
    union = members["plain"] + members["compressed"]
    result["union_front"] = [union[i]["key"] for i in pareto_front(_front_points(union))]
    result["goal"] = _goal(members["plain"], members["compressed"])
    result["environment"] = environment()
    _save(f"fronts-{network}-{seed}", result)
    print(json.dumps({k: result[k] for k in ("goal",)}, indent=2), flush=True)
    for variant in ("plain", "compressed"):
        print(f"{variant}: hypervolume {result[variant]['hypervolume']:.4g}, front {result[variant]['front']}")


def _goal(plain: list[dict[str, Any]], compressed: list[dict[str, Any]]) -> dict[str, Any]:
    """The most accurate uncompressed member against compressed members within 1 point of its accuracy."""
    if not plain or not compressed:
        return {}
    reference = max(plain, key=lambda m: (m["accuracy"], -m["size_bytes"]))
    close = [m for m in compressed if m["accuracy"] >= reference["accuracy"] - 0.01]

    def ratios(m: dict[str, Any]) -> dict[str, float]:
        return {"smaller": reference["size_bytes"] / m["size_bytes"], "faster_b1": reference["latency_b1"] / m["latency_b1"],
                "faster_b256": reference["latency_b256"] / m["latency_b256"],
                "accuracy_points": 100 * (m["accuracy"] - reference["accuracy"])}

    scored = [(min(ratios(m)["smaller"] / 4, ratios(m)["faster_b1"] / 2), m) for m in close]
    best = max(scored, key=lambda s: s[0])[1] if scored else None
    return {
        "reference": reference["key"], "candidates": len(close),
        "best": best["key"] if best else None, **({"ratios": ratios(best)} if best else {}),
        "met": bool(best and ratios(best)["smaller"] >= 4 and ratios(best)["faster_b1"] >= 2),
    }


# -- scikit-learn ------------------------------------------------------------------------------

SKLEARN_MODELS: dict[str, dict[str, Any]] = {
    "linear": {"model": "linear"},
    "knn": {"model": "knn", "n_neighbors": 3},
    "svm": {"model": "svm"},
    "tree": {"model": "tree", "max_depth": 12},
    "forest (100 trees)": {"model": "forest", "n_estimators": 100},
    "forest (100 trees), 25 kept (onnx.trees 0.25)": {"model": "forest", "n_estimators": 100, "onnx.trees": 0.25},
    "extra_trees (100 trees)": {"model": "extra_trees", "n_estimators": 100},
    "mlp": {"model": "mlp", "hidden_units": 128},
    "adaboost": {"model": "adaboost"},
    "hgb": {"model": "hgb", "max_iter": 50},
}


def run_sklearn(rounds: int) -> None:
    import tempfile

    from automl_compress import OnnxCompressor
    from automl_sklearn.trainer import SklearnTrainer

    from automl.plugin import TrialContext, split_config

    data = _digits()
    rows: list[dict[str, Any]] = []
    timed: list[tuple[str, Callable[[Any], Any], Any, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, full) in enumerate(SKLEARN_MODELS.items()):
            config, parts = split_config(full, ["onnx"])
            directory = Path(tmp) / f"m{i:02d}"
            directory.mkdir()
            trainer = SklearnTrainer(config, {}, TrialContext("classification", 0, data, directory))
            start = time.perf_counter()
            trainer.fit_step(1)
            fit_s = time.perf_counter() - start
            skops = trainer.export(directory)
            if parts["onnx"].get("trees", 1.0) < 1:
                # The skops file to compare with holds the same, fewer trees.
                import pandas as pd
                from automl_compress.sklearn_onnx import keep_trees
                from automl_sklearn.export import export_model

                trimmed = copy.deepcopy(trainer.pipeline_)
                keep_trees(trimmed, parts["onnx"]["trees"])
                (directory / "trimmed").mkdir()
                rows_ = pd.concat([data.train.X, data.valid.X], ignore_index=True)
                skops = export_model(trimmed, rows_, directory / "trimmed", "skops")
            compressor = OnnxCompressor({"keep": "always", **parts["onnx"]}, trainer.context)
            onnx_file = compressor.compress_artifact(trainer, skops)
            row: dict[str, Any] = {"model": name, "fit_s": fit_s, "skops_bytes": skops.stat().st_size,
                                   "skops_accuracy": trainer.evaluate_artifact(skops)["accuracy"],
                                   "onnx": onnx_file is not None and onnx_file.suffix == ".onnx"}
            timed.append((f"{name}|skops", trainer.load_predictor(skops), trainer.sample_input(1), trainer.sample_input(256)))
            if row["onnx"]:
                assert onnx_file is not None
                row.update(onnx_bytes=onnx_file.stat().st_size, onnx_accuracy=trainer.evaluate_artifact(onnx_file)["accuracy"])
                timed.append((f"{name}|onnx", trainer.load_predictor(onnx_file), trainer.sample_input(1),
                              trainer.sample_input(256)))
            rows.append(row)
            print(f"{name}: skops {row['skops_bytes']} B, onnx {row.get('onnx_bytes', '-')}", flush=True)
        latencies = _timed(timed, rounds)
    for row in rows:
        for kind in ("skops", "onnx"):
            key = f"{row['model']}|{kind}"
            if key in latencies:
                row[f"{kind}_b1"], row[f"{kind}_b256"] = latencies[key]["b1"], latencies[key]["b256"]
    _save("sklearn", {"kind": "sklearn", "rounds": rounds, "rows": rows, "environment": environment()})


# -- report ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compress", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("techniques", help="one table per network: each technique against the uncompressed model")
    t.add_argument("--network", choices=sorted(TECHNIQUES), required=True)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--only", nargs="*", help="technique names to run (with the uncompressed reference)")
    s = sub.add_parser("search", help="one automl search, with or without compression")
    s.add_argument("--network", choices=sorted(TRAINING_SPACE), required=True)
    s.add_argument("--variant", choices=["plain", "compressed"], required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--trials", type=int, default=40)
    f = sub.add_parser("fronts", help="both searches' front members measured side by side; hypervolumes; the goal")
    f.add_argument("--network", choices=sorted(TRAINING_SPACE), required=True)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--rounds", type=int, default=3)
    k = sub.add_parser("sklearn", help="scikit-learn models: skops against ONNX Runtime")
    k.add_argument("--rounds", type=int, default=3)
    sub.add_parser("report", help="rewrite RESULTS.md from the kept results")
    args = parser.parse_args(argv)
    if args.command == "techniques":
        run_techniques(args.network, args.seeds, args.rounds, args.only)
    elif args.command == "search":
        run_search(args.network, args.variant, args.seed, args.trials)
    elif args.command == "fronts":
        run_fronts(args.network, args.seed, args.rounds)
    elif args.command == "sklearn":
        run_sklearn(args.rounds)
    from benchmarks.compress.report import write_report

    write_report()
