"""PBT against ASHA on the torch MLP task (digits) at a small budget: same space, seeds and trial count.

    nice -n 19 .venv/bin/python -m benchmarks.scheduling.pbt_vs_asha --trials 12 --epochs 9 --seeds 0 1

Prints, per scheduler and seed: the best trial's validation and test accuracy, the epochs trained in all, the
PBT exploits, and the wall time (with the load average, which these 2-core machines share).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import automl

SPEC = """
name: pbt-vs-asha
task: classification
data: {{dataset: digits, validation: 0.2, test: 0.2}}
trainer:
  name: torch
  params: {{network: mlp, epochs: {epochs}, optimizer: sgd, schedule: cosine, batch_size: 64, layers: 2, units: 128}}
searcher: {{name: random}}
scheduler: {scheduler}
space:
  lr: {{type: float, low: 0.0001, high: 0.1, log: true}}
  momentum: {{type: float, low: 0.1, high: 0.99}}
  weight_decay: {{type: float, low: 0.00001, high: 0.1, log: true}}
  dropout: {{type: float, low: 0.0, high: 0.5}}
objectives: [{{metric: accuracy, mode: max}}]
budget: {{trials: {trials}}}
resources: {{cpu: 1}}
seed: {seed}
"""

SCHEDULERS = {
    "asha": "{name: asha, options: {grace_period: 1, reduction_factor: 3}}",
    "pbt": "{name: pbt, options: {interval: 3, quantile: 0.25}}",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    print("| scheduler | seed | best valid acc | its test acc | epochs trained | exploits | wall s | load |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, scheduler in SCHEDULERS.items():
                spec = Path(tmp) / f"{name}-{seed}.yaml"
                spec.write_text(SPEC.format(epochs=args.epochs, scheduler=scheduler, trials=args.trials, seed=seed))
                began = time.time()
                run = automl.search(spec, out=Path(tmp) / f"{name}-{seed}")
                wall = time.time() - began
                rows = run.trials()
                done = [r for r in rows if r.status == "completed"]
                best = max(done, key=lambda r: r.metrics["accuracy"])
                epochs = len(run.steps())  # one row per (trial, epoch) reached; a copied trial's restored step once
                exploits = sum(len(r.lineage) for r in rows)
                print(f"| {name} | {seed} | {best.metrics['accuracy']:.4f} | {best.metrics.get('test_accuracy', float('nan')):.4f} "
                      f"| {epochs} | {exploits} | {wall:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
