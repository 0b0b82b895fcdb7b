"""Suite files: versioned YAML (``yaml.safe_load``) naming tasks, methods, seeds and the budget.

.. code-block:: yaml

    version: 1                     # bump when a change makes old figures incomparable
    description: single-objective synthetic functions
    budget: {iterations: 10, batch: 5}
    seeds: 10                      # or a list: [0, 1, 2]
    tasks:
      - branin
      - {name: zdt1, options: {dims: 10}, label: zdt1-10d}
    methods:
      - random
      - automl:tpe
      - {name: optuna:tpe, options: {constant_liar: true}, label: optuna:tpe+liar, peer_of: automl:tpe}
      - {name: automl:ngopt, options: {budget: $evaluations, num_workers: $batch}}
      - {name: hyperopt:tpe, tasks: [branin]}   # only these tasks

Option values ``$evaluations``, ``$iterations`` and ``$batch`` become the run's budget.
``peer_of`` marks a peer as the direct-library twin of one of our searchers: the report
tests that pair for parity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from automl_bench.base import BenchmarkError, Method, Problem
from automl_bench.methods import make_method
from automl_bench.problems import make_problem

__all__ = ["SUITES_DIR", "Suite", "load_suite", "resolve_suite_path", "suite_names"]

SUITES_DIR = Path(__file__).resolve().parent / "suites"
PLACEHOLDERS = ("$evaluations", "$iterations", "$batch")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetModel(_Strict):
    iterations: PositiveInt = Field(description="rounds of suggestions")
    batch: PositiveInt = Field(1, description="configs suggested per round before any is told")


class TaskModel(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class MethodModel(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    tasks: list[str] | None = Field(None, description="labels of the tasks it runs (default: all)")
    peer_of: str | None = Field(None, description="the automl:NAME method this peer is the direct twin of")


class SuiteModel(_Strict):
    version: PositiveInt
    description: str = ""
    budget: BudgetModel
    # Checked entry by entry below, so that an error names the entry rather than a union branch.
    seeds: Any
    tasks: list[Any] = Field(min_length=1)
    methods: list[Any] = Field(min_length=1)


@dataclass
class TaskEntry:
    label: str
    name: str
    options: dict[str, Any]
    problem: Problem


@dataclass
class MethodEntry:
    label: str
    name: str
    options: dict[str, Any]
    method: Method
    tasks: frozenset[str] | None = None
    peer_of: str | None = None


@dataclass
class Suite:
    """A loaded, checked suite: every method can run every task it is given."""

    name: str
    path: Path
    version: int
    description: str
    iterations: int
    batch: int
    seeds: list[int]
    tasks: list[TaskEntry]
    methods: list[MethodEntry]
    #: ``automl:`` methods left out because their plugin is not installed (``skip_missing``).
    missing: list[str] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        return self.iterations * self.batch

    def runs(self) -> Iterator[tuple[TaskEntry, MethodEntry, int]]:
        """Every (task, method, seed) to run, task by task, seed by seed (methods side by side)."""
        for task in self.tasks:
            for seed in self.seeds:
                for method in self.methods:
                    if method.tasks is None or task.label in method.tasks:
                        yield task, method, seed


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def resolve_suite_path(suite: str) -> Path:
    """A suite name (``s1``, from ``automl_bench/suites/``) or a path to a suite file."""
    path = Path(suite)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise BenchmarkError(f"suite file {suite!r} does not exist")
        return path
    candidate = SUITES_DIR / f"{suite}.yaml"
    if not candidate.is_file():
        raise BenchmarkError(f"unknown suite {suite!r}: give a suite file or one of {', '.join(suite_names())}")
    return candidate


def _error(path: Path, where: str, message: str) -> BenchmarkError:
    return BenchmarkError(f"{path}: {where + ': ' if where else ''}{message}")


def _substitute(options: Mapping[str, Any], values: Mapping[str, int]) -> dict[str, Any]:
    return {k: values[v] if isinstance(v, str) and v in values else v for k, v in options.items()}


def load_suite(
    suite: str | Path,
    *,
    iterations: int | None = None,
    batch: int | None = None,
    seeds: Sequence[int] | None = None,
    tasks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    skip_missing: bool = False,
) -> Suite:
    """Read and check a suite file; the keyword arguments narrow or override it.

    Args:
        suite: A suite name or file.
        iterations: Overrides ``budget.iterations``.
        batch: Overrides ``budget.batch``.
        seeds: Overrides ``seeds``.
        tasks: Keep only these task labels.
        methods: Keep only these method labels.
        skip_missing: Leave out ``automl:`` methods whose plugin is not installed
            (listed in :attr:`Suite.missing`) instead of failing.

    Raises:
        BenchmarkError: For a file that is not valid YAML, a field of the wrong shape, an
            unknown task, method or option, or a method that cannot run a task it is given;
            the message names the file, the field and the valid choices.
    """
    path = resolve_suite_path(str(suite))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _error(path, "", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise _error(path, "", "a suite file is a mapping with version, budget, seeds, tasks and methods")
    try:
        model = SuiteModel.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        extra = ""
        if first["type"] == "extra_forbidden":
            extra = f"; valid fields here: {', '.join(_fields_at(first['loc']))}"
        raise _error(path, where, f"{first['msg']}{extra}") from exc

    task_specs = [_entry(path, TaskModel, t, f"tasks.{i}") for i, t in enumerate(model.tasks)]
    method_specs = [_entry(path, MethodModel, m, f"methods.{i}") for i, m in enumerate(model.methods)]
    if isinstance(model.seeds, int) and not isinstance(model.seeds, bool) and model.seeds > 0:
        suite_seeds = list(range(model.seeds))
    elif (isinstance(model.seeds, list) and model.seeds
          and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in model.seeds)):
        suite_seeds = list(model.seeds)
    else:
        raise _error(path, "seeds", f"give a count (10) or a list of non-negative integers ([0, 1, 2]), "
                                    f"got {model.seeds!r}")

    n_iter = iterations or model.budget.iterations
    n_batch = batch or model.budget.batch
    placeholders = {"$evaluations": n_iter * n_batch, "$iterations": n_iter, "$batch": n_batch}
    seed_list = list(seeds) if seeds is not None else suite_seeds

    task_entries: list[TaskEntry] = []
    for i, spec in enumerate(task_specs):
        label = spec.label or spec.name
        try:
            problem = make_problem(spec.name, spec.options)
        except BenchmarkError as exc:
            raise _error(path, f"tasks.{i}", str(exc)) from exc
        problem.name = label
        task_entries.append(TaskEntry(label, spec.name, dict(spec.options), problem))
    labels = [t.label for t in task_entries]
    duplicate = sorted({x for x in labels if labels.count(x) > 1})
    if duplicate:
        raise _error(path, "tasks", f"task {duplicate[0]!r} appears twice: give one of them a `label:`")
    if tasks:
        unknown = [t for t in tasks if t not in labels]
        if unknown:
            raise BenchmarkError(f"--tasks: {unknown[0]!r} is not a task of {path.name}; its tasks: {', '.join(labels)}")
        task_entries = [t for t in task_entries if t.label in tasks]

    method_entries: list[MethodEntry] = []
    missing: list[str] = []
    for i, spec_m in enumerate(method_specs):
        label = spec_m.label or spec_m.name
        if methods and label not in methods:
            continue
        options = _substitute(spec_m.options, placeholders)
        try:
            method = make_method(spec_m.name, options)
        except BenchmarkError as exc:
            if skip_missing and spec_m.name.startswith("automl:") and "unknown searcher" in str(exc):
                missing.append(label)
                continue
            raise _error(path, f"methods.{i}", str(exc)) from exc
        restrict = None
        if spec_m.tasks is not None:
            unknown = [t for t in spec_m.tasks if t not in labels]
            if unknown:
                raise _error(path, f"methods.{i}.tasks", f"{unknown[0]!r} is not a task of this suite; "
                                                          f"tasks: {', '.join(labels)}")
            restrict = frozenset(spec_m.tasks)
        for task in task_entries:
            if restrict is None or task.label in restrict:
                try:
                    method.check(task.problem)
                except BenchmarkError as exc:
                    raise _error(path, f"methods.{i}", str(exc)) from exc
        method_entries.append(MethodEntry(label, spec_m.name, options, method, restrict, spec_m.peer_of))
    method_labels = [m.label for m in method_entries]
    duplicate = sorted({x for x in method_labels if method_labels.count(x) > 1})
    if duplicate:
        raise _error(path, "methods", f"method {duplicate[0]!r} appears twice: give one of them a `label:`")
    if methods:
        every = [m.label or m.name for m in method_specs]
        unknown = [m for m in methods if m not in every]
        if unknown:
            raise BenchmarkError(f"--methods: {unknown[0]!r} is not a method of {path.name}; "
                                 f"its methods: {', '.join(every)}")
    return Suite(path.stem, path, model.version, model.description, n_iter, n_batch, seed_list,
                 task_entries, method_entries, missing)


M = TypeVar("M", TaskModel, MethodModel)


def _entry(path: Path, model: type[M], raw: Any, where: str) -> M:
    """A task or method entry: a bare name or a mapping with ``name`` and its other fields."""
    if isinstance(raw, str):
        return model(name=raw)
    if not isinstance(raw, dict):
        raise _error(path, where, f"give a name or a mapping with name: and {', '.join(list(model.model_fields)[1:])}; "
                                  f"got {raw!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        sub = ".".join(str(p) for p in first["loc"])
        extra = f"; valid fields: {', '.join(model.model_fields)}" if first["type"] == "extra_forbidden" else ""
        raise _error(path, f"{where}.{sub}", f"{first['msg']}{extra}") from exc


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names valid where an unknown key was found (top level or budget)."""
    model: type[BaseModel] = BudgetModel if loc[:1] == ("budget",) else SuiteModel
    return list(model.model_fields)
