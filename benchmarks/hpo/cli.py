"""``python -m benchmarks.hpo``: list, run and report the searcher benchmarks.

Every :class:`~automl.errors.AutoMLError` (a bad suite, method, task or store) becomes one
message on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from automl.plugin import AutoMLError
from benchmarks.hpo.store import DEFAULT_STORE

__all__ = ["main"]


# The same lists `automl bench` reads (automl/cli.py), kept here: the benchmarks use the core's public API only.
def _int_list(value: str | None, what: str) -> list[int] | None:
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


def _name_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
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
    from benchmarks.hpo.methods import method_names
    from benchmarks.hpo.problems import task_names
    from benchmarks.hpo.suite import suite_names

    click.echo("suites:  " + ", ".join(suite_names()))
    click.echo("methods: " + ", ".join(method_names()))
    click.echo("tasks:   " + ", ".join(task_names()))


@main.command()
@click.argument("suite")
@click.option("--store", default=DEFAULT_STORE, show_default=True, help="SQLAlchemy URL of the results store.")
@click.option("--seeds", help="Seeds to run instead of the suite's: 0,1,2 or 0-4.")
@click.option("--tasks", help="Only these task labels (comma-separated).")
@click.option("--methods", help="Only these method labels (comma-separated).")
@click.option("--iterations", type=click.IntRange(min=1), help="Override budget.iterations.")
@click.option("--batch", type=click.IntRange(min=1), help="Override budget.batch.")
@click.option("--skip-missing", is_flag=True, help="Leave out automl: methods whose plugin is not installed.")
@click.option("--rerun", is_flag=True, help="Run again what was stored today at another commit (default: skip it).")
def run(suite: str, store: str, seeds: str | None, tasks: str | None, methods: str | None,
        iterations: int | None, batch: int | None, skip_missing: bool, rerun: bool) -> None:
    """Run SUITE (a name under benchmarks/hpo/suites/ or a file) and append its results to the store."""
    from benchmarks.hpo.runner import run_suite
    from benchmarks.hpo.store import HpoStore
    from benchmarks.hpo.suite import load_suite

    loaded = load_suite(suite, iterations=iterations, batch=batch, seeds=_int_list(seeds, "--seeds"),
                        tasks=_name_list(tasks), methods=_name_list(methods), skip_missing=skip_missing)
    if loaded.missing:
        click.echo(f"skipped (plugin not installed): {', '.join(loaded.missing)}", err=True)
    results = HpoStore(store)
    n_runs = sum(1 for _ in loaded.runs())
    click.echo(f"suite {loaded.name} v{loaded.version}: {len(loaded.tasks)} tasks x {len(loaded.methods)} methods x "
               f"{len(loaded.seeds)} seeds = {n_runs} runs of {loaded.evaluations} evaluations "
               f"({loaded.iterations} x batch {loaded.batch}) -> {store}")
    summary = run_suite(loaded, results, command=" ".join(["python -m benchmarks.hpo", *sys.argv[1:]]),
                        echo=lambda line: click.echo(line), rerun=rerun)
    click.echo(f"stored {summary.stored} rows, skipped {summary.skipped} already stored, "
               f"{summary.crashed} crashed, {summary.wall_s:.0f} s")


@main.command()
@click.option("--store", default=DEFAULT_STORE, show_default=True, help="SQLAlchemy URL of the results store.")
@click.option("--suite", "suites", multiple=True, help="Only this suite (repeatable).")
@click.option("--version", type=int, help="Suite version to report (default: each suite's newest).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the Markdown here instead of printing it.")
def report(store: str, suites: tuple[str, ...], version: int | None, out: str | None) -> None:
    """Render the stored results as Markdown tables (one per suite and budget)."""
    from benchmarks.hpo.report import render_report
    from benchmarks.hpo.store import HpoStore

    results = HpoStore(store)
    text = render_report(results.results(suites), results.environments(), version)
    if out:
        Path(out).write_text(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text)
