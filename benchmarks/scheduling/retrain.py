"""How often a recorded configuration reaches a target again when trained with other trial seeds (issue 20's R3).

    flock /work/notes/bench.lock .venv/bin/python -m benchmarks.scheduling.retrain \\
        benchmarks/scheduling/curves/r3-torch-mlp-digits-27.json --top 24 --repeats 5 --target 0.983

A table of :mod:`benchmarks.scheduling.r3_table` holds one training per configuration (the trial seed of its row
number), and its figures answer a configuration with that one curve, every time. Through the engine a configuration is
trained with the seed of the trial that proposes it, so reaching a target a few validation rows above the rest is a
draw. This trains the table's ``--top`` configurations by recorded final accuracy ``--repeats`` more times each, with
trial numbers the table does not use (row ``i``, repeat ``r``: ``(r + 1) * rows + i``), by the table's own training
(:func:`benchmarks.scheduling.r3_table._train`: the engine's torch trainer, one thread, no Ray), and prints, per
recorded final accuracy, how many of the retrainings reach the target: a diagnostic of the gap between the table's
figures and the engine's, not a benchmark of a method. Epoch-counted; its seconds are not used.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.scheduling.r3_table import _train


def retrain(table: Mapping[str, Any], top: int, repeats: int, processes: int = 2) -> list[dict[str, Any]]:
    """The ``top`` configurations by recorded final value, each trained ``repeats`` more times: one row each."""
    rows = len(table["configs"])
    failed = {int(i) for i in table.get("failed", {})}  # a curve cut short by a failure has no final value
    finals = [values[-1] if values and i not in failed else float("-inf") for i, values in enumerate(table["values"])]
    chosen = sorted(range(rows), key=lambda i: (-finals[i], i))[:top]
    jobs = [(table["spec"], table["source"], (r + 1) * rows + i, table["configs"][i]) for i in chosen
            for r in range(repeats)]
    with ProcessPoolExecutor(processes) as pool:
        curves = list(pool.map(_train, jobs))
    out = []
    for k, i in enumerate(chosen):
        again = curves[k * repeats:(k + 1) * repeats]
        out.append({"row": i, "config": table["configs"][i], "recorded": finals[i],
                    "retrained": [c["values"][-1] if c["values"] and "failed" not in c else None for c in again],
                    # Each retraining's whole curve (cut short where it failed): a table with several seeds per
                    # configuration (r3_table's NoisyTableTask) is built from them.
                    "curves": [c["values"] for c in again],
                    "failed": [c.get("failed") for c in again]})
    return out


def summary(rows: Sequence[Mapping[str, Any]], target: float) -> str:
    """A Markdown table: per recorded final value, configurations, retrainings and the share that reach ``target``."""
    groups: dict[float, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["recorded"]].append(row)
    lines = [f"| recorded final accuracy | configurations | retrainings | reach {target} | share | per configuration |",
             "|---|---|---|---|---|---|"]
    for recorded in sorted(groups, reverse=True):
        members = groups[recorded]
        hits = [sum(v is not None and v >= target for v in m["retrained"]) for m in members]
        sizes = [len(m["retrained"]) for m in members]
        each = ", ".join(f"{h}/{n}" for h, n in zip(hits, sizes))
        lines.append(f"| {recorded:.4f}{' (reaches it)' if recorded >= target else ''} | {len(members)} | {sum(sizes)} | "
                     f"{sum(hits)} | {sum(hits) / sum(sizes):.0%} | {each} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scheduling.retrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("table", type=Path, help="a table written by r3_table record")
    parser.add_argument("--top", type=int, default=24, help="configurations by recorded final value")
    parser.add_argument("--repeats", type=int, default=5, help="trainings per configuration, each with its own seed")
    parser.add_argument("--target", type=float, default=0.983)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every retraining's final value here")
    args = parser.parse_args(argv)
    rows = retrain(json.loads(args.table.read_text()), args.top, args.repeats, args.processes)
    if args.json:
        args.json.write_text(json.dumps({"table": str(args.table), "target": args.target, "rows": rows}, indent=1))
    print(summary(rows, args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
