"""Tabular comparison (issue 14): automl vs FLAML vs the previous engine behaviour, at equal wall time.

    .venv/bin/python -m benchmarks.tabular.run list
    .venv/bin/python -m benchmarks.tabular.run compare --tables default --seeds 0,1,2 --budget 60 \\
        --systems automl,flaml,previous --out benchmarks/tabular/results/b60.jsonl [--resume] [--dry-run]
    .venv/bin/python -m benchmarks.tabular.run report benchmarks/tabular/results/b60.jsonl [--md FILE]

Protocol: per table and seed, 25% of the rows are held out (stratified for classification, seeded) and
never shown to any system; the other rows are written once to a CSV file that every system reads. Each
system then runs alone, in its own process, on the 2 cores, for the same wall-time budget; the order of
the systems rotates with the seed. The held-out rows are scored here from each system's predictions:
accuracy (classification) or R2 (regression). ``compare`` appends one JSON row per (table, seed, system,
budget) to ``--out`` as it goes (JSON lines), so an interrupted call keeps its rows and ``--resume`` skips
them. Systems: see :mod:`benchmarks.tabular.peers`; report: :mod:`benchmarks.tabular.report`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.tabular import datasets, peers, report

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a run takes beyond its budget, per system (the end of the search past the deadline, the final
#: ensemble, loading the model and predicting): estimates from single 60 s runs on german at load average
#: 5-11 (2026-12-05: automl +38 s, previous +22 s, FLAML +5 s), rounded down for a quiet machine; AutoGluon
#: a guess. Plus the split, per table and seed.
OVERHEAD_S = {"automl": 30.0, "previous": 20.0, "flaml": 6.0, "autogluon": 30.0}
SPLIT_S = 2.0


def _csv_list(text: str, kind: type = str, option: str = "") -> list[Any]:
    try:
        values = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:
        raise ValueError(f"{option} {text!r} is not a comma list of {'numbers' if kind is not str else 'names'}")
    return values


def plan(tables: list[str], seeds: list[int], systems: list[str], budgets: list[float]) -> list[tuple[Any, ...]]:
    """Every (budget, table, seed, system) in the order they run: the systems rotate with the seed's position."""
    out = []
    for budget in budgets:
        for table in tables:
            for i, seed in enumerate(seeds):
                k = i % len(systems)
                for system in systems[k:] + systems[:k]:
                    out.append((budget, table, seed, system))
    return out


def predicted_seconds(steps: list[tuple[Any, ...]]) -> float:
    splits = len({(b, t, s) for b, t, s, _ in steps})
    return sum(float(b) + OVERHEAD_S.get(sys, 20.0) for b, _, _, sys in steps) + SPLIT_S * splits


def _env() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                                check=False).stdout.strip()
    except OSError:
        commit = "?"
    versions: dict[str, str | None] = {}
    for dist in ("automl", "automl-sklearn", "flaml", "scikit-learn", "lightgbm", "xgboost", "ray"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)), "commit": commit,
            "date": time.strftime("%Y-%m-%d"), "versions": versions}


def _done(out: Path) -> set[tuple[str, int, str, float]]:
    """Keys with a row that need not run again (a failed run is retried)."""
    if not out.is_file():
        return set()
    return {report.key(r) for r in report.load_rows([out]) if r.get("status") != "failed"}


def compare(args: argparse.Namespace) -> int:
    tables = datasets.resolve(args.tables)
    systems = _csv_list(args.systems, str, "--systems")
    unknown = [s for s in systems if s not in peers.SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; systems: {', '.join(peers.SYSTEMS)}")
    steps = plan(tables, _csv_list(args.seeds, int, "--seeds"), systems, _csv_list(args.budget, float, "--budget"))
    out = Path(args.out)
    done = _done(out) if args.resume else set()
    if out.is_file() and out.stat().st_size and not args.resume and not args.dry_run:
        raise ValueError(f"{out} already holds rows: pass --resume to skip the runs done, or another --out")
    todo = [s for s in steps if (s[1], s[2], s[3], float(s[0])) not in done]
    why = peers.space_auto_supported() if "automl" in systems and args.automl_space == "auto" else None
    if why:
        message = f"this automl cannot plan `space: auto` ({why.splitlines()[0][:300]}): pass --automl-space " \
                  "current (the space of searchspaces/tabular-TASK.yaml)"
        if not args.dry_run:
            raise ValueError(message)
        print(f"note: {message}")
    if args.dry_run:
        for budget, table, seed, system in todo:
            print(f"{budget:g}s {table} seed {seed} {system}")
        total = predicted_seconds(todo)
        print(f"{len(todo)} runs ({len(steps) - len(todo)} already done); predicted {total / 3600:.2f} h "
              f"({total:.0f} s: each run its budget plus {', '.join(f'{k} {v:g} s' for k, v in OVERHEAD_S.items())})")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    # A TERM (kill, a session's end) unwinds like Ctrl-C, so the running system's process group is killed too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = _env()
    loaded: dict[str, datasets.Table] = {}
    with tempfile.TemporaryDirectory(prefix="automl-tabular-") as tmp:
        for budget, table, seed, system in todo:
            if table not in loaded:
                loaded = {table: datasets.load(table)}  # one table in memory at a time
            data = loaded[table]
            split_dir = Path(tmp) / f"{table}-{seed}"
            if not split_dir.is_dir():
                split_dir.mkdir()
                train, test = datasets.split(data, seed)
                train.to_csv(split_dir / "train.csv", index=False)
                test.to_csv(split_dir / "test.csv", index=False)
            n_train = sum(1 for _ in (split_dir / "train.csv").open()) - 1
            job = peers.Job(table=table, task=data.task, seed=seed, budget=budget,
                            train_csv=str(split_dir / "train.csv"), test_csv=str(split_dir / "test.csv"),
                            work=str(Path(tmp) / f"{table}-{seed}-{system}-{budget:g}"), searcher=args.searcher,
                            scheduler=args.scheduler, automl_space=args.automl_space)
            load = os.getloadavg()[0]
            started = time.strftime("%Y-%m-%dT%H:%M:%S")
            try:
                result = peers.run_system(job, system)
            except Exception as exc:  # one broken run must not end a night of runs: recorded, and --resume retries it
                result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1500]}
            row = {"table": table, "task": data.task, "seed": seed, "system": system, "budget": budget,
                   "metric": peers.METRIC[data.task], "n_train": n_train, "started": started,
                   "searcher": {"automl": args.searcher, "previous": "tpe"}.get(system),
                   "scheduler": {"automl": args.scheduler, "previous": "fifo"}.get(system),
                   "automl_space": args.automl_space if system == "automl" else None, **result,
                   # Other users of the 2 cores show here: a budget buys less under load.
                   "load_before_after": [round(load, 1), round(os.getloadavg()[0], 1)], "env": env}
            with out.open("a") as f:
                f.write(json.dumps(row, default=str) + "\n")
            shown = f"{100 * row['score']:.2f}" if row.get("score") is not None else row.get("status")
            print(f"{budget:g}s {table} seed {seed} {system}: {shown} ({row.get('trials', '-')} trials, "
                  f"{row.get('wall_s', 0):.0f} s, {row.get('best_model', '-')})", flush=True)
            if args.keep and Path(job.work).is_dir():
                kept = Path(args.keep) / Path(job.work).name
                # The trials' model files (hundreds of MB on the larger tables) stay behind: the store, the
                # run's summary and front, the spec and the logs say what happened.
                big = shutil.ignore_patterns("trials", "models", "tune", "*.csv")
                shutil.copytree(job.work, kept, dirs_exist_ok=True, ignore=big)
            # Run directories hold every trial's export: gone once the row is written, the disk is small.
            shutil.rmtree(job.work, ignore_errors=True)
    return 0


def list_tables(_args: argparse.Namespace) -> int:
    print("| table | task | rows | cols | nominal cols | classes | smallest class | source |")
    print("|---|---|---|---|---|---|---|---|")
    for name in datasets.TABLES:
        d = datasets.describe(datasets.load(name))
        mark = " (default)" if name in datasets.DEFAULT else ""
        print(f"| {name}{mark} | {d['task']} | {d['rows']} | {d['cols']} | {d['nominal']} | {d['classes'] or '-'} | "
              f"{d['smallest_class'] or '-'} | {d['source']} |")
    return 0


def make_report(args: argparse.Namespace) -> int:
    if len(args.files) > 1 and not args.md:
        # The default, the first file's .md, is that file's own report: a combined one would replace it.
        raise ValueError(f"{len(args.files)} files: name the combined report with --md (the default, "
                         f"{Path(args.files[0]).with_suffix('.md')}, is the first file's own report)")
    rows = report.load_rows(args.files)
    seeds = _csv_list(args.seeds, int, "--seeds") if args.seeds else None
    if seeds is not None:
        rows = [r for r in rows if int(r["seed"]) in seeds]
    text = report.render(rows, sources=args.files, seeds=seeds)
    print(text)
    md = Path(args.md) if args.md else Path(args.files[0]).with_suffix(".md")
    md.write_text(text)
    print(f"wrote {md}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tabular.run", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="run the systems on the tables, appending one JSON row per run")
    c.add_argument("--tables", default="default", help="comma list of tables and groups (default, all, "
                   "classification, regression); the `list` command shows them")
    c.add_argument("--seeds", default="0,1,2")
    c.add_argument("--budget", default="60", help="wall-time budget(s) in seconds, comma separated")
    c.add_argument("--systems", default="automl,flaml,previous", help=f"comma list of {', '.join(peers.SYSTEMS)}")
    c.add_argument("--out", default="benchmarks/tabular/results/compare.jsonl", help="JSON-lines file of rows")
    c.add_argument("--resume", action="store_true", help="skip the runs --out already holds (failed ones run again)")
    c.add_argument("--dry-run", action="store_true", help="print the runs and their predicted time; run nothing")
    c.add_argument("--keep", help="copy each run's specs, logs, store and summary (not its model files) under "
                   "this folder")
    c.add_argument("--searcher", default="auto", help="automl's searcher (default: the spec's auto, what a user gets)")
    c.add_argument("--scheduler", default="fifo", help="automl's scheduler")
    c.add_argument("--automl-space", default="auto", choices=("auto", "current"),
                   help="automl's space: `auto` (the trainer's default) or `current` (searchspaces/tabular-TASK.yaml)")
    c.set_defaults(func=compare)
    r = sub.add_parser("report", help="print and write the Markdown report of result files")
    r.add_argument("files", nargs="+")
    r.add_argument("--md", help="where to write the Markdown (default, for one file: that file with .md; "
                   "required for several)")
    r.add_argument("--seeds", help="only these seeds' rows (comma list): to compare systems run on fewer seeds")
    r.set_defaults(func=make_report)
    sub.add_parser("list", help="the tables with their sizes").set_defaults(func=list_tables)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
