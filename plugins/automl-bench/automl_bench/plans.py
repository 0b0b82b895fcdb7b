"""``automl bench``: run a suite or a plan of suites with the searcher benchmark runner.

A thin layer over the runner: suites are the files of :mod:`automl_bench.suite` (``automl_bench/suites/``),
methods its ``automl:NAME`` searchers (any installed plugin's, third-party ones included)
and peers, rows go to its append-only store with its environment record. What this module
adds: *plans* (``automl_bench/plans.yaml``: the nightly subset and the weekly set, each a
list of suites narrowed to seeds, tasks or methods), every suite of a plan checked before
anything runs, and progress as ``[k/N]`` lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automl_bench.base import BenchmarkError
from automl_bench.methods import method_names
from automl_bench.runner import RunSummary, run_suite
from automl_bench.store import HpoStore
from automl_bench.suite import Suite, load_suite, suite_names

__all__ = ["PLANS_FILE", "BenchResult", "load_plan", "plan_names", "resolve", "run_bench"]

PLANS_FILE = Path(__file__).resolve().parent / "plans.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanRun(_Strict):
    suite: str
    seeds: list[int] | None = None
    tasks: list[str] | None = None
    methods: list[str] | None = None
    exclude_methods: list[str] = Field(default_factory=list)


class Plan(_Strict):
    description: str = ""
    runs: list[PlanRun] = Field(min_length=1)


class PlansFile(_Strict):
    version: int
    plans: dict[str, Plan]


def _plans(path: Path = PLANS_FILE) -> dict[str, Plan]:
    try:
        raw = yaml.safe_load(path.read_text())
        return PlansFile.model_validate(raw).plans
    except (OSError, yaml.YAMLError) as exc:
        raise BenchmarkError(f"cannot read the benchmark plans {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BenchmarkError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def plan_names() -> list[str]:
    return sorted(_plans())


def load_plan(name: str) -> Plan:
    plans = _plans()
    if name not in plans:
        raise BenchmarkError(f"unknown plan {name!r}; plans: {', '.join(sorted(plans))}")
    return plans[name]


@dataclass
class BenchResult:
    """What a bench invocation ran."""

    suites: list[Suite]
    summaries: list[RunSummary] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.summaries)


def resolve(
    target: str,
    *,
    seeds: Sequence[int] | None = None,
    tasks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    iterations: int | None = None,
    batch: int | None = None,
    skip_missing: bool = False,
) -> list[Suite]:
    """The suites ``target`` (a plan name, a suite name or a suite file) runs, all loaded and checked.

    Options override or narrow each suite. With a plan, ``tasks`` and ``methods`` keep what
    each suite has of them, and a label no suite of the plan has is an error.

    Raises:
        BenchmarkError: For an unknown plan, suite, task or method, or a suite file that does
            not validate (the message names the file and the field).
    """
    plans = _plans()
    if target not in plans:
        return [load_suite(target, iterations=iterations, batch=batch, seeds=seeds, tasks=tasks, methods=methods,
                           skip_missing=skip_missing)]
    out: list[Suite] = []
    seen_tasks: set[str] = set()
    seen_methods: set[str] = set()
    for entry in plans[target].runs:
        full = load_suite(entry.suite, skip_missing=True)  # its labels, before narrowing
        task_labels = [t.label for t in full.tasks]
        method_labels = [m.label for m in full.methods] + full.missing
        unknown = [m for m in entry.exclude_methods + (entry.methods or []) if m not in method_labels]
        if unknown:
            raise BenchmarkError(f"{PLANS_FILE}: plan {target!r}, suite {entry.suite!r}: {unknown[0]!r} is not a "
                                 f"method of the suite; its methods: {', '.join(method_labels)}")
        keep_methods = [m for m in (entry.methods or method_labels) if m not in entry.exclude_methods]
        keep_tasks = list(entry.tasks or task_labels)
        if methods:
            seen_methods |= set(methods) & set(keep_methods)
            keep_methods = [m for m in keep_methods if m in methods]
        if tasks:
            seen_tasks |= set(tasks) & set(keep_tasks)
            keep_tasks = [t for t in keep_tasks if t in tasks]
        if not keep_methods or not keep_tasks:
            continue
        out.append(load_suite(entry.suite, iterations=iterations, batch=batch,
                              seeds=seeds if seeds is not None else entry.seeds,
                              tasks=keep_tasks, methods=keep_methods, skip_missing=skip_missing))
    for given, seen, what in ((methods, seen_methods, "method"), (tasks, seen_tasks, "task")):
        missing = [x for x in (given or []) if x not in seen]
        if missing:
            raise BenchmarkError(f"--{what}s: {missing[0]!r} is not a {what} of any suite in plan {target!r}")
    if not out:
        raise BenchmarkError(f"plan {target!r} has nothing left to run with these --tasks / --methods")
    return out


def run_bench(
    suites: Sequence[Suite],
    store_url: str | None = None,
    *,
    command: str = "",
    echo: Callable[[str], None] = print,
) -> BenchResult:
    """Run ``suites`` one after the other, appending to the store at ``store_url`` (default: :func:`default_store`).

    Rows already stored (same date, commit, suite, version, task, seed, method and budget)
    are skipped, so an interrupted plan continues where it stopped.
    """
    store = HpoStore(store_url)
    total = sum(sum(1 for _ in s.runs()) for s in suites)
    result = BenchResult(list(suites))
    done = 0
    t0 = time.perf_counter()

    def progress(line: str) -> None:
        nonlocal done
        done += 1
        elapsed = time.perf_counter() - t0
        echo(f"[{done}/{total} {elapsed:5.0f}s] {line}")

    try:
        for suite in suites:
            n = sum(1 for _ in suite.runs())
            echo(f"suite {suite.name} v{suite.version}: {len(suite.tasks)} tasks x {len(suite.methods)} methods x "
                 f"{len(suite.seeds)} seeds = {n} runs of {suite.evaluations} evaluations "
                 f"({suite.iterations} x batch {suite.batch})")
            before = done
            summary = run_suite(suite, store, command=command, echo=progress)
            done = before + n  # skipped runs count as done
            result.summaries.append(summary)
    finally:
        result.wall_s = time.perf_counter() - t0
        store.close()
    return result


def describe() -> dict[str, Any]:
    """Suites, plans and methods available now (``automl bench --list``)."""
    plans = _plans()
    return {
        "plans": {n: {"description": p.description, "suites": [r.suite for r in p.runs]} for n, p in sorted(plans.items())},
        "suites": suite_names(),
        "methods": method_names(),
    }
