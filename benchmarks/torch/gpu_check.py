"""GPU check of the torch trainer (issue 18), run by ``scripts/gpu-check.sh`` on a machine with a CUDA GPU.

    scripts/gpu-check.sh                       # about 3-5 minutes on one H100-class GPU
    .venv/bin/python -m benchmarks.torch.gpu_check --trials 8 --epochs 3

Three figures, printed as small tables:

- **AMP speed-up**: one trial of ResNet-18 (small-input stem) on mnist5k trained by the trainer itself
  (:class:`automl_torch.NeuralNetTrainer`) on the GPU in fp32 and in fp16 (autocast + ``GradScaler``), the
  same seed; seconds per epoch (the first epoch, which holds cuDNN's autotuning, left out), the ratio, and
  both validation accuracies (AMP must not cost accuracy).
- **Trials per GPU**: ``automl.search`` of the same network with ``resources.gpu`` 1, 0.5 and 0.25 (so 1, 2
  and 4 trials share the one GPU), the same trials and seed; wall seconds from the search's start and trials
  per minute.
- **GPU utilisation**: ``nvidia-smi`` sampled every 0.5 s during each of those searches: mean and peak
  utilisation (%) and peak memory (MiB).

On a machine without a CUDA GPU it prints one line saying so and exits 0 (the script checks first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

NETWORK = {"network": "resnet18", "width_mult": 0.5, "lr": 0.003, "batch_size": 128}
PARAMS = {"optimizer": "adamw", "schedule": "cosine", "input_shape": [1, 28, 28]}


def no_gpu_reason() -> str | None:
    """Why there is nothing to measure here (no nvidia-smi, or torch sees no CUDA device); None on a GPU machine."""
    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi on PATH"
    import torch

    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


class Sampler:
    """``nvidia-smi`` utilisation (%) and memory used (MiB) of GPU 0, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--id=0", "--query-gpu=utilization.gpu,memory.used",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, check=False)
            try:
                util, mem = (float(v) for v in out.stdout.strip().split(","))
                self.samples.append((util, mem))
            except ValueError:  # a sample nvidia-smi could not give (e.g. busy): skipped, not guessed
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {"util_mean": float("nan"), "util_peak": float("nan"), "mem_peak": float("nan")}
        return {"util_mean": statistics.fmean(u for u, _ in self.samples),
                "util_peak": max(u for u, _ in self.samples), "mem_peak": max(m for _, m in self.samples)}


def amp_speedup(epochs: int) -> list[dict[str, Any]]:
    """One trial trained in fp32 and in fp16 on the GPU: seconds per epoch after the first, validation accuracy."""
    import torch
    from automl_torch import NeuralNetTrainer

    from automl.plugin import TrialContext, get_plugin_manager, split

    data = split(get_plugin_manager().datasets.get("mnist5k").load({}), "classification", valid=0.2, test=0.2, seed=0)
    rows = []
    for precision in ("fp32", "fp16"):
        with tempfile.TemporaryDirectory() as tmp:
            params = {**PARAMS, "epochs": epochs, "precision": precision, "device": "cuda"}
            trainer = NeuralNetTrainer(NETWORK, params, TrialContext("classification", 0, data, Path(tmp), 4.0, 1.0))
            times = []
            start = time.perf_counter()
            for _ in trainer.run_steps(1):  # yields after each epoch
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
                start = time.perf_counter()
            rows.append({"precision": precision, "epoch_s": statistics.median(times[1:] or times),
                         "accuracy": trainer.evaluate("valid")["accuracy"]})
    return rows


def trials_per_gpu(fractions: Sequence[float], trials: int, epochs: int, out: Path) -> list[dict[str, Any]]:
    """One search per GPU fraction (the same trials and seed), timed, with nvidia-smi sampled meanwhile."""
    import automl

    rows = []
    for gpu in fractions:
        path = out / f"spec-{gpu:g}.yaml"
        path.write_text(yaml.safe_dump(search_spec(gpu, trials, epochs), sort_keys=False))
        with Sampler() as sampler:
            start = time.perf_counter()
            run = automl.search(path, out=out / f"run-{gpu:g}")
            wall = time.perf_counter() - start
        done = [t for t in run.trials() if t["status"] == "completed"]
        rows.append({"gpu": gpu, "concurrent": int(round(1 / gpu)), "trials": len(done), "wall_s": wall,
                     "per_min": 60 * len(done) / wall, **sampler.summary()})
    return rows


def search_spec(gpu: float, trials: int, epochs: int) -> dict[str, Any]:
    """The search of one GPU fraction: ResNet-18 on mnist5k, random lr and width, ``gpu`` GPUs per trial."""
    return {
        "name": f"gpu-check-{gpu:g}", "task": "classification",
        "data": {"dataset": "mnist5k", "validation": 0.2, "test": 0.2},
        "trainer": {"name": "torch", "params": {**PARAMS, "epochs": epochs, "precision": "auto",
                                                "network": NETWORK["network"]}},
        "searcher": {"name": "random"},
        "space": {"lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
                  "width_mult": {"type": "float", "low": 0.25, "high": 1.0}},
        "objectives": [{"metric": "accuracy", "mode": "max"}],
        "budget": {"trials": trials},
        "resources": {"cpu": 2, "gpu": gpu},
        "seed": 0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torch.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per search (default 8)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    args = parser.parse_args(argv)
    reason = no_gpu_reason()
    if reason:
        print(f"gpu-check: no GPU on this machine ({reason}); nothing measured.")
        return 0
    import torch

    print(f"gpu-check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
    amp = amp_speedup(max(args.epochs, 2))
    print("\n| precision | s per epoch (after the first) | validation accuracy |\n|---|---|---|")
    for r in amp:
        print(f"| {r['precision']} | {r['epoch_s']:.2f} | {r['accuracy']:.4f} |")
    print(f"\nAMP speed-up (fp32 / fp16 s per epoch): {amp[0]['epoch_s'] / amp[1]['epoch_s']:.2f}x", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = trials_per_gpu(args.fractions, args.trials, args.epochs, Path(tmp))
    print("\n| GPU per trial | trials at once | completed | wall s | trials/min | GPU util mean % | peak % | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['gpu']:g} | {r['concurrent']} | {r['trials']} | {r['wall_s']:.0f} | {r['per_min']:.1f} | "
              f"{r['util_mean']:.0f} | {r['util_peak']:.0f} | {r['mem_peak']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
