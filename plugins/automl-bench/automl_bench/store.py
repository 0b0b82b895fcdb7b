"""The append-only results store of the searcher benchmarks (SQLAlchemy Core, any URL).

One row per (date, commit, suite, suite version, task, seed, method, budget). A run that
was already stored today skips it, whatever the commit then (so an interrupted suite resumes
although others commit meanwhile); ``run --rerun`` stores a fresh row when the commit moved. Rows are only ever inserted: the class has no update or
delete, which is what a nightly leaderboard needs (every night's figures stay). Each
invocation of ``run`` also records its environment (CPU, threads, package versions).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

import automl
from automl.plugin import clean
from automl_bench.base import BenchmarkError

__all__ = ["STORE_ENV", "HpoStore", "RESULT_KEY", "default_store", "environment_record", "git_commit"]

#: The environment variable naming the store ``automl bench`` and ``automl leaderboard`` use without ``--store``.
STORE_ENV = "AUTOML_BENCH_STORE"


def default_store(cwd: Path | None = None) -> str:
    """The store used when none is given, found from the working directory, never from where this package lies.

    ``$AUTOML_BENCH_STORE`` when set; else, in an automl repository checkout (a ``benchmarks/hpo/``
    directory here), ``sqlite:///benchmarks/results/hpo.db`` (a directory the repository ignores,
    where its recorded nights are); else ``sqlite:///automl-bench.db`` in the working directory.
    """
    if os.environ.get(STORE_ENV):
        return os.environ[STORE_ENV]
    here = (cwd or Path.cwd()).resolve()
    if (here / "benchmarks" / "hpo").is_dir():
        return f"sqlite:///{here / 'benchmarks' / 'results' / 'hpo.db'}"
    return f"sqlite:///{here / 'automl-bench.db'}"

metadata = sa.MetaData()

environments = sa.Table(
    "hpo_environments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("dirty", sa.Boolean, nullable=False),
    sa.Column("python", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(200), nullable=False),
    sa.Column("cpu", sa.String(200), nullable=False),
    sa.Column("cpus", sa.Integer, nullable=False),
    sa.Column("threads", sa.JSON, nullable=False),
    sa.Column("packages", sa.JSON, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
)

results = sa.Table(
    "hpo_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("date", sa.String(10), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("suite", sa.String(100), nullable=False),
    sa.Column("suite_version", sa.Integer, nullable=False),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("method", sa.String(200), nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("env_id", sa.Integer, sa.ForeignKey("hpo_environments.id"), nullable=False),
    #: What the label runs: the method name, its options, the package version, and the
    #: method it is the direct-library twin of (for the parity table).
    sa.Column("method_name", sa.String(200), nullable=False),
    sa.Column("method_options", sa.JSON, nullable=False),
    sa.Column("method_version", sa.String(200), nullable=False),
    sa.Column("peer_of", sa.String(200)),
    sa.Column("task_info", sa.JSON, nullable=False),
    sa.Column("n_objectives", sa.Integer, nullable=False),
    sa.Column("evaluations", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    #: Best loss (single objective) or hypervolume (several) at the end of the run.
    sa.Column("final_value", sa.Float),
    sa.Column("regret", sa.Float),
    sa.Column("hv_regret", sa.Float),
    #: {"evals": [...], "best": [...]}: best loss or hypervolume after each batch.
    sa.Column("curve", sa.JSON, nullable=False),
    #: Every evaluation's losses in order (None for a failure): Bayesmark's clip needs them.
    sa.Column("losses", sa.JSON, nullable=False),
    sa.Column("overhead_s", sa.Float),
    sa.Column("wall_s", sa.Float, nullable=False),
    sa.Column("eval_s", sa.Float, nullable=False),
    #: A library error that ended the run early (its figures are those reached before).
    sa.Column("error", sa.Text),
    #: The first few evaluation errors (failed configs), when any.
    sa.Column("eval_errors", sa.JSON),
    #: Figures of the engine suites (S2, R2, R3): cost spent, trials completed and stopped, time to target.
    sa.Column("extra", sa.JSON),
    sa.UniqueConstraint("date", "commit", "suite", "suite_version", "task", "seed", "method", "budget",
                        name="uq_hpo_result"),
)

#: The columns that identify a result row.
RESULT_KEY = ("date", "commit", "suite", "suite_version", "task", "seed", "method", "budget")


class HpoStore:
    """Append-only benchmark results over a SQLAlchemy URL.

    Args:
        url: ``sqlite:///path.db`` (the default store's directory is created), or any
            SQLAlchemy URL whose driver is installed.

    Raises:
        BenchmarkError: When the URL is malformed or the database cannot be opened.
    """

    def __init__(self, url: str | None = None) -> None:
        url = url or default_store()
        self.url = url
        if url == default_store():  # benchmarks/results/ of a fresh checkout does not exist yet
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url)
            metadata.create_all(self.engine)
            self._add_missing_columns()
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            hint = ""
            if url.startswith("sqlite:///"):
                hint = f" (does the directory {str(Path(url.removeprefix('sqlite:///')).parent)!r} exist?)"
            raise BenchmarkError(
                f"cannot open the results store {url!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}{hint}. "
                f"Give --store a SQLAlchemy URL such as sqlite:///bench.db"
            ) from exc

    def _add_missing_columns(self) -> None:
        """Add nullable columns a newer version of this module defines to an older store.

        The only schema change so far is new nullable columns, so an ``ALTER TABLE ... ADD
        COLUMN`` per missing one keeps old rows and old stores usable; a change beyond that
        would call for a migration tool (Alembic).
        """
        inspector = sa.inspect(self.engine)
        for table in (environments, results):
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))

    def close(self) -> None:
        self.engine.dispose()

    def add_environment(self, record: Mapping[str, Any]) -> int:
        with self.engine.begin() as conn:
            key = conn.execute(environments.insert().values(**clean(dict(record)))).inserted_primary_key
            assert key is not None  # a one-row INSERT returns its key; typed Optional
            return int(key[0])

    def has_result(self, key: Mapping[str, Any], ignore: Sequence[str] = ()) -> bool:
        """Whether a row matching ``key`` (the :data:`RESULT_KEY` columns but ``ignore``) is stored."""
        columns = [k for k in RESULT_KEY if k not in ignore]
        query = sa.select(results.c.id).where(*(results.c[k] == key[k] for k in columns)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def add_result(self, row: Mapping[str, Any]) -> int:
        """Insert one result row (never replaces one)."""
        values = {k: clean(v) if isinstance(v, (dict, list, tuple)) else v for k, v in row.items()}
        with self.engine.begin() as conn:
            key = conn.execute(results.insert().values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def results(self, suites: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Every stored row (of ``suites`` when given), oldest first."""
        query = results.select().order_by(results.c.id)
        if suites:
            query = query.where(results.c.suite.in_(list(suites)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def environments(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(environments.select().order_by(environments.c.id)).mappings()]


def today() -> str:
    return dt.date.today().isoformat()


def git_commit(root: Path | None = None) -> tuple[str, bool]:
    """``(git rev-parse HEAD, whether tracked files differ from it)`` of the checkout at ``root``; ("unknown", False)
    when ``root`` is no checkout's root.

    ``root`` defaults to the checkout the automl core being measured is installed from (an editable install);
    an installed wheel has none (a site-packages directory inside some other repository is not its checkout).
    """
    root = root or Path(automl.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return "unknown", False
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return head.stdout.strip(), bool(status.stdout.strip())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: Packages whose versions go into the environment record (plus every installed automl plugin).
PACKAGES = ("automl", "optuna", "hyperopt", "nevergrad", "ray", "scikit-learn", "numpy", "scipy", "torch",
            "sqlalchemy", "cmaes", "pandas")


def environment_record(command: str) -> dict[str, Any]:
    """CPU, thread settings and package versions of this process, for the store."""
    from threadpoolctl import threadpool_info

    commit, dirty = git_commit()
    packages: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name and (name.lower() in PACKAGES or name.lower().startswith("automl")):
            packages[name] = dist.version
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    threads: dict[str, Any] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "AUTOML_NUM_CPUS") if k in os.environ}
    threads["threadpools"] = [{"api": p.get("internal_api"), "threads": p.get("num_threads")}
                              for p in threadpool_info()]
    return {
        "created_at": time.time(),
        "commit": commit,
        "dirty": dirty,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": cpus,
        "threads": threads,
        "packages": dict(sorted(packages.items())),
        "command": command,
    }
