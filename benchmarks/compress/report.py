"""``RESULTS.md`` of the compression benchmark, rebuilt from every JSON result under ``benchmarks/results/compress``."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import Any

from benchmarks.compress.run import NETWORKS, RAW, RESULTS, TECHNIQUES


def _load(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(RAW.glob("*.json")) if RAW.is_dir() else []:
        doc = json.loads(path.read_text())
        if doc.get("kind") == kind and not path.stem.endswith("-partial"):
            out.append(doc)
    return out


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(_med(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def _env(docs: list[dict[str, Any]]) -> str:
    lines = []
    for d in docs:
        e = d["environment"]
        load = ", ".join(f"{x:.1f}" for x in e["load_average"])
        lines.append(f"{e['date']}, commit {e['commit']}, {e['cpus']} CPUs, torch {e['torch']}, onnxruntime "
                     f"{e['onnxruntime']}, load average ({load})")
    return "; ".join(sorted(set(lines)))


def technique_stats(docs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per technique: size and latency ratios against the uncompressed model, accuracy change in points."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        for r in d["rows"]:
            rows[r["technique"]].append(r)
    base = rows.get("uncompressed (ONNX fp32)")
    if not base:
        return {}
    b_size = _med([r["size_bytes"] for r in base])
    b_1 = _med([v for r in base for v in r["latency_b1"]])
    b_256 = _med([v for r in base for v in r["latency_b256"]])
    b_acc = _med([r["accuracy"] for r in base])
    return {
        name: {
            "smaller": b_size / _med([r["size_bytes"] for r in rs]),
            "faster_b1": b_1 / _med([v for r in rs for v in r["latency_b1"]]),
            "faster_b256": b_256 / _med([v for r in rs for v in r["latency_b256"]]),
            "points": 100 * (_med([r["accuracy"] for r in rs]) - b_acc),
        }
        for name, rs in rows.items()
    }


def _summary_lines(techniques: list[dict[str, Any]], fronts: list[dict[str, Any]], sk: list[dict[str, Any]]) -> list[str]:
    out = ["## Summary", ""]
    for network in NETWORKS:
        stats = technique_stats([d for d in techniques if d["network"] == network])
        if not stats:
            continue
        kept = {n: v for n, v in stats.items() if v["points"] >= -1.0 and n != "uncompressed (ONNX fp32)"}
        small = sorted(kept.items(), key=lambda kv: -kv[1]["smaller"])[:3]
        fast = max(kept.items(), key=lambda kv: kv[1]["faster_b1"]) if kept else None
        text = "; ".join(f"{n}: {v['smaller']:.1f}x smaller, {v['faster_b1']:.2f}x faster at batch 1, "
                         f"{v['faster_b256']:.2f}x at 256, {v['points']:+.1f} points" for n, v in small)
        out.append(f"- **{network.upper()} techniques** (within 1 point of the uncompressed validation accuracy), "
                   f"smallest: {text}.")
        if fast:
            out.append(f"  Fastest at batch 1 within 1 point: {fast[0]} ({fast[1]['faster_b1']:.2f}x).")
    for doc in fronts:
        goal = doc.get("goal") or {}
        hv = doc["compressed"]["hypervolume"] / doc["plain"]["hypervolume"] if doc["plain"]["hypervolume"] else float("nan")
        verdict = ""
        if goal.get("best"):
            r = goal["ratios"]
            verdict = (f"goal {'met' if goal['met'] else 'not met'}: best compressed member within 1 point is "
                       f"{r['smaller']:.1f}x smaller and {r['faster_b1']:.2f}x faster at batch 1 ({r['faster_b256']:.1f}x at "
                       f"256), {r['accuracy_points']:+.1f} points, against the most accurate uncompressed member")
        elif goal:
            verdict = "goal not met: no compressed member within 1 point of the most accurate uncompressed one"
        out.append(f"- **{doc['network'].upper()} search, seed {doc['seed']}**: hypervolume with compression / without = "
                   f"{hv:.2f}; {verdict}.")
    if sk:
        gains = [r for r in sk[-1]["rows"] if r["onnx"]]
        both = [r["model"] for r in gains if _med(r["skops_b1"]) > _med(r["onnx_b1"]) and _med(r["skops_b256"]) > _med(r["onnx_b256"])]
        one = [r["model"] for r in gains if _med(r["skops_b1"]) > _med(r["onnx_b1"]) and r["model"] not in both]
        none = [r["model"] for r in sk[-1]["rows"] if not r["onnx"]]
        out.append(f"- **scikit-learn on ONNX Runtime**: faster at batch 1 and 256: {', '.join(both)}; faster at batch 1 "
                   f"only: {', '.join(one) or 'none'}; does not convert: {', '.join(none) or 'none'}.")
    return out + [""]


def _techniques(network: str, docs: list[dict[str, Any]]) -> list[str]:
    config, params = NETWORKS[network]
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        for r in d["rows"]:
            rows[r["technique"]].append(r)
    base = rows.get("uncompressed (ONNX fp32)")
    if not base:
        return []
    b_size = _med([r["size_bytes"] for r in base])
    b_1 = _med([v for r in base for v in r["latency_b1"]])
    b_256 = _med([v for r in base for v in r["latency_b256"]])
    b_acc = _med([r["accuracy"] for r in base])
    b_test = _med([r["test_accuracy"] for r in base])
    seeds = sorted(d["seed"] for d in docs)
    rounds = docs[0]["rounds"]
    out = [
        f"### {network.upper()}: {config} {params}",
        "",
        f"Seeds {seeds} (one reference network trained per seed, each technique applied to a copy), latency over "
        f"{len(seeds)} seeds x {rounds} rounds (each a median of 200 calls at batch 1, 50 at batch 256, one thread). "
        "Medians with (min-max); x = the uncompressed model's median over the technique's median; accuracy "
        "change in points against the uncompressed model's median.",
        "",
        "| technique | file | size bytes | x smaller | batch 1 ms | x faster | batch 256 ms | x faster | validation accuracy "
        "| points | test accuracy | points |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in TECHNIQUES[network]:
        rs = rows.get(name)
        if not rs:
            continue
        size = _med([r["size_bytes"] for r in rs])
        l1 = [v for r in rs for v in r["latency_b1"]]
        l256 = [v for r in rs for v in r["latency_b256"]]
        acc = [r["accuracy"] for r in rs]
        test = [r["test_accuracy"] for r in rs]
        out.append(
            f"| {name} | {rs[0]['file']} | {size:,.0f} | {b_size / size:.2f} | {_spread(l1, '.4f')} | {b_1 / _med(l1):.2f} "
            f"| {_spread(l256, '.3f')} | {b_256 / _med(l256):.2f} | {_spread(acc, '.4f')} | {100 * (_med(acc) - b_acc):+.1f} "
            f"| {_spread(test, '.4f')} | {100 * (_med(test) - b_test):+.1f} |"
        )
    out += ["", f"Environment: {_env(docs)}.", ""]
    return out


def _summary(config: dict[str, Any], network: str) -> str:
    if network == "mlp":
        net = f"{config.get('layers')}x{config.get('units')}"
    else:
        net = f"{config.get('conv_layers')} conv x {config.get('channels')} ch, {config.get('units')} units"
    parts = [net]
    if config.get("prune.amount"):
        parts.append(f"prune {config['prune.amount']:.2f} (ft {config.get('prune.finetune_epochs', 0)})")
    if config.get("distill.enabled"):
        parts.append(f"distill width {config['distill.width']:.2f}")
    if config.get("quantize.mode") not in (None, "none"):
        parts.append(str(config["quantize.mode"]))
    return ", ".join(parts)


def _fronts(doc: dict[str, Any], searches: dict[str, dict[str, Any]]) -> list[str]:
    network = doc["network"]
    ref = doc["reference"]
    out = [f"### {network.upper()}, seed {doc['seed']}", ""]
    for variant in ("plain", "compressed"):
        s = searches.get(variant)
        if s:
            failures = len(s["failures"])
            out.append(f"- `{variant}`: {s['trials']} trials in {s['wall_s'] / 60:.1f} min, statuses {s['statuses']}"
                       + (f"; failure reasons e.g. \"{s['failures'][0][:160]}\"" if failures else ""))
    hv_plain, hv_comp = doc["plain"]["hypervolume"], doc["compressed"]["hypervolume"]
    union = doc["union_front"]
    out += [
        "",
        f"Hypervolume (reference accuracy {ref['accuracy']}, batch-1 latency {ref['latency_ms']} ms, size "
        f"{ref['size_bytes']:,.0f} bytes; accuracy x ms x bytes): without compression **{hv_plain:.4g}**, with "
        f"compression **{hv_comp:.4g}** ({hv_comp / hv_plain:.2f}x). The front of both runs together has "
        f"{sum(k.startswith('compressed') for k in union)} compressed and {sum(k.startswith('plain') for k in union)} "
        f"uncompressed members. Reference workload {doc['drift']['before_ms']:.4f} ms before, "
        f"{doc['drift']['after_ms']:.4f} ms after the measurement.",
        "",
    ]
    goal = doc.get("goal") or {}
    if goal.get("best"):
        r = goal["ratios"]
        verdict = "met" if goal["met"] else "not met"
        out += [
            f"Goal (>= 4x smaller and >= 2x faster at batch 1, <= 1 point of validation accuracy lost, against the most "
            f"accurate uncompressed member `{goal['reference']}`): **{verdict}** by `{goal['best']}` of "
            f"{goal['candidates']} compressed members within 1 point: {r['smaller']:.2f}x smaller, {r['faster_b1']:.2f}x "
            f"faster at batch 1 ({r['faster_b256']:.2f}x at 256), {r['accuracy_points']:+.1f} points.",
            "",
        ]
    elif goal:
        out += [f"Goal: no compressed member within 1 point of `{goal.get('reference')}`.", ""]
    out += ["| run | trial | network and compression | file | validation accuracy | before compression | test accuracy "
            "| size bytes | batch 1 ms (min-max) | batch 256 ms | on the front |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant in ("plain", "compressed"):
        for m in sorted(doc[variant]["members"], key=lambda m: -m["accuracy"]):
            before = m.get("accuracy_uncompressed")
            out.append(
                f"| {variant} | {m['number']} | {_summary(m['config'], network)} | {m['file']} | {m['accuracy']:.4f} | "
                f"{'' if before is None else f'{before:.4f}'} | {m['test_accuracy']:.4f} | {m['size_bytes']:,} | "
                f"{m['latency_b1']:.4f} ({m['latency_b1_range'][0]:.4f}-{m['latency_b1_range'][1]:.4f}) | "
                f"{m['latency_b256']:.3f} | {'yes' if m['key'] in doc[variant]['front'] else 'no'} |"
            )
    out += ["", f"Environment: {_env([doc])}.", ""]
    return out


def _sklearn(doc: dict[str, Any]) -> list[str]:
    out = [
        "| model | skops bytes | ONNX bytes | skops batch 1 ms | ONNX batch 1 ms | x faster | skops batch 256 ms "
        "| ONNX batch 256 ms | x faster | accuracy skops | accuracy ONNX |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        s1, s256 = r["skops_b1"], r["skops_b256"]
        if r["onnx"]:
            o1, o256 = r["onnx_b1"], r["onnx_b256"]
            out.append(
                f"| {r['model']} | {r['skops_bytes']:,} | {r['onnx_bytes']:,} | {_spread(s1, '.4f')} | {_spread(o1, '.4f')} "
                f"| {_med(s1) / _med(o1):.1f} | {_spread(s256, '.3f')} | {_spread(o256, '.3f')} | {_med(s256) / _med(o256):.1f} "
                f"| {r['skops_accuracy']:.4f} | {r['onnx_accuracy']:.4f} |"
            )
        else:
            out.append(f"| {r['model']} | {r['skops_bytes']:,} | does not convert | {_spread(s1, '.4f')} | | | "
                       f"{_spread(s256, '.3f')} | | | {r['skops_accuracy']:.4f} | |")
    out += ["", f"Environment: {_env([doc])}.", ""]
    return out


NOTES = [
    "## Reading these tables",
    "",
    "- **Batch 1 is overhead-bound.** ONNX Runtime's call and per-operator overhead is most of a digits MLP's batch-1 "
    "latency: the smallest networks of the searches (one layer of 16 units) take about 7 microseconds, so no model "
    "can be 2x faster at batch 1 than a reference that takes less than about 15. Compression cuts the arithmetic, "
    "which shows at batch 256. int8 adds a DynamicQuantizeLinear per layer: at batch 1 a small int8 model is slower "
    "than the same model in float32.",
    "- **Unstructured pruning** is stored as ONNX sparse tensors (values and int64 positions): smaller only below about "
    "1/3 density, and never faster (ONNX Runtime densifies the weights when it loads the file); the latency columns "
    "confirm it.",
    "- **fp16 on ONNX Runtime** halves the weights; the CPU provider computes most operators in float32 behind casts "
    "it inserts, so it is not faster. **torchao** int8 and **bf16** programs run on torch (`torch.export`), which is "
    "several times slower than ONNX Runtime at these sizes even in float32 (the `torch.export fp32` row): compare them "
    "with that row, not only with ONNX Runtime. They are offered for deployments that run torch; `targets` keeps them "
    "out of a search for one that does not.",
    "- **Distillation** is compared with the same student trained on the labels alone (`labels only`): whether the "
    "teacher adds anything is read from those two rows, not from the uncompressed one.",
    "- **skops sizes** include skops' own `schema.json` (about 300 KB for a pipeline on digits, stored uncompressed), "
    "so the size ratios of the scikit-learn table overstate what the model itself loses in ONNX; a tree ensemble's "
    "ONNX file is 2-3x smaller than its skops file for the model itself.",
    "",
]


def write_report() -> None:
    lines = [
        "# Compression searched with training (automl-compress)",
        "",
        "Written by `python -m benchmarks.compress report` from `benchmarks/results/compress/*.json`; the protocol is in "
        "the docstring of `benchmarks/compress/run.py`. Every size is the bytes of the exported file, every latency "
        "the engine's protocol on that file loaded back (one thread, warm-up, median of timed calls), every accuracy "
        "the file's own predictions on digits' validation rows (test rows in their own column). This machine has 2 "
        "cores shared with other work (load averages in the environment lines): compare rows of one table, measured "
        "interleaved, not absolute numbers across tables.",
        "",
    ]
    techniques = _load("techniques")
    lines += _summary_lines(techniques, _load("fronts"), _load("sklearn"))
    lines += ["## Per technique, against the uncompressed model", ""]
    for network in NETWORKS:
        lines += _techniques(network, [d for d in techniques if d["network"] == network])
    searches = {(d["network"], d["seed"], d["variant"]): d for d in _load("search")}
    fronts = _load("fronts")
    if fronts:
        lines += ["## Searched fronts with and without compression", "",
                  "Two `automl.search` runs per network and seed over the same training space, searcher (MOTPE), "
                  "trials and seed; `compressed` adds the compression entries to the space. Both runs' front members "
                  "were then measured again side by side (3 interleaved rounds) and the fronts and hypervolumes "
                  "recomputed from those measurements with one fixed reference point.", ""]
        for doc in fronts:
            lines += _fronts(doc, {v: searches[(doc["network"], doc["seed"], v)] for v in ("plain", "compressed")
                                   if (doc["network"], doc["seed"], v) in searches})
    lines += NOTES
    sk = _load("sklearn")
    if sk:
        lines += ["## scikit-learn pipelines: skops (scikit-learn predicts) against ONNX Runtime (skl2onnx)", "",
                  "Each model fitted once on digits with the trainer's preprocessing; both files timed interleaved "
                  "(3 rounds).", ""]
        lines += _sklearn(sk[-1])
    RESULTS.write_text("\n".join(lines).rstrip() + "\n")
