"""The commands of automl-bench: ``automl bench`` and ``automl leaderboard``, and ``python -m automl_bench``.

``bench`` and ``leaderboard`` are added to ``automl`` through the ``automl.commands`` entry points
(pyproject.toml). ``python -m automl_bench`` (``list``, ``run``, ``report``: the suite runner and its
Markdown tables) is the same machinery without the plans; the repository's
``python -m benchmarks.hpo`` runs it.

Only click is imported with this module: ``automl --help`` imports it to show each command's help
line, so the benchmark modules (numpy, scipy, pandas, SQLAlchemy, the searchers) are imported in
the command that needs them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["bench", "int_list", "leaderboard", "main", "name_list"]

STORE_HELP = ("SQLAlchemy URL of the results store (default: $AUTOML_BENCH_STORE, else "
              "sqlite:///benchmarks/results/hpo.db in an automl checkout, else sqlite:///automl-bench.db in the "
              "working directory; a shared PostgreSQL holds a nightly history).")


def int_list(value: str | None, what: str) -> list[int] | None:
    """``0,1,2`` or ``0-4`` (or a mix) as a list of integers."""
    if value is None:
        return None
    out: list[int] = []
    try:
        for part in value.split(","):
            lo, dash, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi) + 1) if dash and lo else [int(part)])
    except ValueError:
        raise click.BadParameter(f"give integers like 0,1,2 or a range 0-4, got {value!r}", param_hint=what) from None
    return out


def name_list(value: str | None) -> list[str] | None:
    """``a, b,c`` as ``["a", "b", "c"]`` (None when not given)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@click.command()
@click.argument("target", metavar="SUITE|PLAN", required=False)
@click.option("--store", help=STORE_HELP)
@click.option("--seeds", help="Seeds instead of the suite's: 0,1,2 or 0-4.")
@click.option("--tasks", help="Only these task labels (comma-separated).")
@click.option("--methods", help="Only these method labels (comma-separated).")
@click.option("--iterations", type=click.IntRange(min=1), help="Override the suites' budget.iterations.")
@click.option("--batch", type=click.IntRange(min=1), help="Override the suites' budget.batch.")
@click.option("--skip-missing", is_flag=True, help="Leave out automl: methods whose plugin is not installed.")
@click.option("--dry-run", is_flag=True, help="Check and list what would run, run nothing.")
@click.option("--list", "show_list", is_flag=True, help="List the plans, suites and methods available now.")
def bench(target: str | None, store: str | None, seeds: str | None, tasks: str | None, methods: str | None,
          iterations: int | None, batch: int | None, skip_missing: bool, dry_run: bool, show_list: bool) -> None:
    """Run a benchmark suite or plan and append the results to a store.

    \b
    SUITE is a file or a suite name of automl-bench (s1, s1-gp, s2, s3, r1, r2, r3,
    smoke); PLAN a plan name: `nightly` (S1, S2, S3, R1 and a small R2; under an
    hour on 2 cores) or `weekly` (every suite in full, R3 included).
    Methods are automl:NAME for every installed searcher (third-party plugins too) and
    the peers used directly (optuna:, hyperopt:, nevergrad:, raytune:, random); on the
    engine suites (S2, R2, R3) automl:SEARCHER+SCHEDULER runs a whole automl search
    (automl:tpe+asha), and optuna:SAMPLER+PRUNER is S2's peer. Every row carries the
    date, commit, suite version, seed and budget; each invocation stores its environment (CPU, threads, package
    versions). Rows already stored today at this commit are skipped, so an interrupted
    plan resumes. Then: automl leaderboard STORE --out DIR. (From the automl-bench package.)
    """
    from automl_bench import plans
    from automl_bench.store import default_store

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if show_list or not target:
        if not show_list:
            raise click.UsageError("give a SUITE or PLAN (automl bench --list shows them)")
        info = plans.describe()
        for name, plan in info["plans"].items():
            click.echo(f"plan {name}: {plan['description']} ({', '.join(plan['suites'])})")
        click.echo("suites: " + ", ".join(info["suites"]))
        click.echo("methods: " + ", ".join(info["methods"]))
        return
    suites = plans.resolve(target, seeds=int_list(seeds, "--seeds"), tasks=name_list(tasks),
                           methods=name_list(methods), iterations=iterations, batch=batch, skip_missing=skip_missing)
    for s in suites:
        if s.missing:
            click.echo(f"{s.name}: skipped (plugin not installed): {', '.join(s.missing)}", err=True)
    url = store or default_store()
    if dry_run:
        for s in suites:
            n = sum(1 for _ in s.runs())
            click.echo(f"{s.name} v{s.version}: {n} runs; tasks {', '.join(t.label for t in s.tasks)}; "
                       f"methods {', '.join(m.label for m in s.methods)}; seeds {s.seeds}; "
                       f"{s.iterations} x batch {s.batch}")
        return
    command = " ".join(["automl bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else "automl bench " + target
    result = plans.run_bench(suites, url, command=command, echo=click.echo)
    skipped = sum(s.skipped for s in result.summaries)
    crashed = sum(s.crashed for s in result.summaries)
    click.echo(f"stored {result.stored} rows ({skipped} already stored, {crashed} crashed) in "
               f"{result.wall_s:.0f} s -> {url}")


@click.command()
@click.argument("store")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for index.html and leaderboard.md.")
@click.option("--suite", "suites", multiple=True, help="Only this suite (repeatable).")
def leaderboard(store: str, out: str, suites: tuple[str, ...]) -> None:
    """Write the searcher leaderboard of the benchmark results in STORE.

    \b
    STORE is the SQLAlchemy URL (or SQLite file) automl bench wrote. DIR gets a static
    HTML page (index.html, plotly.js inline) and a Markdown table (leaderboard.md):
    per method the normalised score with 95% intervals, average rank, a critical-
    difference diagram, wins, hypervolume regret, failures and optimizer overhead;
    anytime curves and Pareto fronts per task; trends across nights, flagged where a
    score leaves its previous interval. Suite versions and budgets are kept apart.
    (From the automl-bench package.)
    """
    from automl_bench.leaderboard import write_leaderboard

    page, md = write_leaderboard(store, out, suites)
    click.echo(f"wrote {page} and {md}")


# -- python -m automl_bench ----------------------------------------------------------------------


class _Group(click.Group):
    """Turns a benchmark error into one line and its exit code (2), as ``automl`` does for its commands."""

    def invoke(self, ctx: click.Context) -> Any:
        from automl.plugin import AutoMLError  # not at the top: automl --help imports this module, cheaply

        try:
            return super().invoke(ctx)
        except AutoMLError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Searcher benchmarks: our searchers and their peers side by side on versioned suites."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@main.command("list")
def list_command() -> None:
    """List the suites, tasks and methods available now."""
    from automl_bench.methods import method_names
    from automl_bench.problems import task_names
    from automl_bench.suite import suite_names

    click.echo("suites:  " + ", ".join(suite_names()))
    click.echo("methods: " + ", ".join(method_names()))
    click.echo("tasks:   " + ", ".join(task_names()))


@main.command()
@click.argument("suite")
@click.option("--store", help=STORE_HELP)
@click.option("--seeds", help="Seeds to run instead of the suite's: 0,1,2 or 0-4.")
@click.option("--tasks", help="Only these task labels (comma-separated).")
@click.option("--methods", help="Only these method labels (comma-separated).")
@click.option("--iterations", type=click.IntRange(min=1), help="Override budget.iterations.")
@click.option("--batch", type=click.IntRange(min=1), help="Override budget.batch.")
@click.option("--skip-missing", is_flag=True, help="Leave out automl: methods whose plugin is not installed.")
@click.option("--rerun", is_flag=True, help="Run again what was stored today at another commit (default: skip it).")
def run(suite: str, store: str | None, seeds: str | None, tasks: str | None, methods: str | None,
        iterations: int | None, batch: int | None, skip_missing: bool, rerun: bool) -> None:
    """Run SUITE (a suite name of automl-bench or a file) and append its results to the store."""
    from automl_bench.runner import run_suite
    from automl_bench.store import HpoStore
    from automl_bench.suite import load_suite

    loaded = load_suite(suite, iterations=iterations, batch=batch, seeds=int_list(seeds, "--seeds"),
                        tasks=name_list(tasks), methods=name_list(methods), skip_missing=skip_missing)
    if loaded.missing:
        click.echo(f"skipped (plugin not installed): {', '.join(loaded.missing)}", err=True)
    results = HpoStore(store)
    n_runs = sum(1 for _ in loaded.runs())
    click.echo(f"suite {loaded.name} v{loaded.version}: {len(loaded.tasks)} tasks x {len(loaded.methods)} methods x "
               f"{len(loaded.seeds)} seeds = {n_runs} runs of {loaded.evaluations} evaluations "
               f"({loaded.iterations} x batch {loaded.batch}) -> {results.url}")
    summary = run_suite(loaded, results, command=" ".join(["python -m automl_bench", *sys.argv[1:]]),
                        echo=lambda line: click.echo(line), rerun=rerun)
    click.echo(f"stored {summary.stored} rows, skipped {summary.skipped} already stored, "
               f"{summary.crashed} crashed, {summary.wall_s:.0f} s")


@main.command()
@click.option("--store", help=STORE_HELP)
@click.option("--suite", "suites", multiple=True, help="Only this suite (repeatable).")
@click.option("--version", type=int, help="Suite version to report (default: each suite's newest).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the Markdown here instead of printing it.")
def report(store: str | None, suites: tuple[str, ...], version: int | None, out: str | None) -> None:
    """Render the stored results as Markdown tables (one per suite and budget)."""
    from automl_bench.report import render_report
    from automl_bench.store import HpoStore

    results = HpoStore(store)
    text = render_report(results.results(suites), results.environments(), version)
    if out:
        Path(out).write_text(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text)
