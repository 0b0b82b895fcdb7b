"""The ``automl`` command line (click + rich).

Every :class:`~automl.errors.AutoMLError` becomes one message on stderr and exit code
2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from automl.commands import PluginCommands
from automl.errors import AutoMLError

if TYPE_CHECKING:
    from automl.run import Run

console = Console()
err_console = Console(stderr=True)


class _Group(click.Group):
    """Turns engine errors into a clear message and exit code 2; adds the installed packages' commands.

    A command of the ``automl.commands`` entry points (:mod:`automl.commands`) is imported only when it
    runs or when the commands are listed (``automl --help``): ``automl search`` never imports one.
    """

    def _plugin_commands(self, ctx: click.Context) -> PluginCommands:
        root = ctx.find_root()  # one lookup per invocation: tests and a shell may change what is installed
        if "automl.commands" not in root.meta:
            root.meta["automl.commands"] = PluginCommands(self.commands, root.params.get("disabled") or ())
        found: PluginCommands = root.meta["automl.commands"]
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        commands = self._plugin_commands(ctx)
        loaded = commands.load_all()
        for problem in commands.problems.values():
            err_console.print(f"[yellow]warning:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        return sorted([*super().list_commands(ctx), *loaded])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        core = super().get_command(ctx, cmd_name)
        if core is not None:
            return core
        commands = self._plugin_commands(ctx)
        command = commands.load(cmd_name)
        if command is None and cmd_name in commands.problems:
            err_console.print(f"[red]error:[/] {escape(commands.problems[cmd_name])}", highlight=False, soft_wrap=True)
            ctx.exit(2)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AutoMLError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            # Messages quote user input (`[channels, height, width]`): never read them as rich markup.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
@click.option(
    "--disable-plugin", "disabled", multiple=True, metavar="NAME",
    help="Do not load plugin NAME (repeatable; AUTOML_DISABLE_PLUGINS=a,b does the same).",
)
@click.version_option(package_name="automl")
@click.pass_context
def main(ctx: click.Context, debug: bool, disabled: tuple[str, ...]) -> None:
    """A plugin-based AutoML engine: a YAML spec in, the Pareto front of models out.

    \b
    Start with:  automl search searchspaces/quickstart.yaml
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["disabled"] = disabled


DEBUG_HELP = ("Also show Ray Tune's log (a traceback per failed trial) on the console, and tracebacks of errors; "
              "it always goes to RUN_DIR/search.log.")
STRICT_HELP = ("Stop the search (exit 2, completed trials kept) when a plugin's observer hook raises; "
               "by default it is recorded in the run's summary and the search goes on.")
ENQUEUE_HELP = ("Evaluate the configs in FILE first (a YAML or JSON list of `parameter: value` mappings), after the "
                "spec's own `start:`; checked against the space like `start:`.")
TRUST_HELP = ("Read the run even when its signatures do not verify with your key (another user's run, or one "
              "changed since it was written): it may run code the run directory holds. See docs: Trust.")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default runs/NAME-TIMESTAMP).")
@click.option("--trials", type=int, help="Number of trials (overrides budget.trials).")
@click.option("--seed", type=int, help="Seed (overrides seed).")
@click.option("--address", help="Join the Ray cluster at ADDRESS (host:port or ray://...) instead of starting a local Ray.")
@click.option("--resume", is_flag=True, help="Continue the run in --out (after a crash or kill, or to add trials).")
@click.option("--warm-start", type=click.Path(file_okay=False), help="Let the searcher learn first from this run's trials.")
@click.option("--enqueue", type=click.Path(dir_okay=False), help=ENQUEUE_HELP)
@click.option("--strict-plugins", is_flag=True, help=STRICT_HELP)
@click.option("--trust", is_flag=True, help="With --resume: " + TRUST_HELP)
@click.option("--debug", "debug_here", is_flag=True, help=DEBUG_HELP)
@click.option("--dashboard", is_flag=True,
              help="Serve the live dashboard of this run on 127.0.0.1 while the search runs (it stops with the "
                   "search; `automl dashboard RUN_DIR` serves it again).")
@click.option("--dashboard-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="The dashboard's port (default 8750, or a free one when 8750 is taken).")
@click.pass_context
def search(
    ctx: click.Context, spec: str, out: str | None, trials: int | None, seed: int | None, address: str | None,
    resume: bool, warm_start: str | None, strict_plugins: bool, trust: bool, debug_here: bool, dashboard: bool,
    dashboard_port: int | None, enqueue: str | None,
) -> None:
    """Run the search described by SPEC and print the Pareto front.

    \b
    Exit codes: 0 with at least one completed trial; 1 when no trial is
    usable (one line counts the reasons); 2 for a refusal (bad spec, data
    or plugin; another driver running in --out).
    """
    from automl.engine import search as run_search

    ctx.obj["debug"] = ctx.obj["debug"] or debug_here
    live = None
    if dashboard or dashboard_port is not None:
        out, live = _dashboard_beside(spec, out, dashboard_port)
    try:
        _run(ctx, lambda progress: run_search(
            _with_enqueued(spec, enqueue), out=out, trials=trials, seed=seed, address=address, resume=resume, warm_start=warm_start,
            disabled_plugins=ctx.obj["disabled"], on_progress=progress.update, strict_plugins=strict_plugins,
            trust=trust, debug=ctx.obj["debug"]))
    finally:
        _stop_dashboard(live, out)


def _with_enqueued(spec: str, enqueue: str | None) -> Any:
    """SPEC, with the start points of ``--enqueue FILE`` after its own when given."""
    if enqueue is None:
        return spec
    from automl.spec import load_spec
    from automl.start_points import read_start_file, with_enqueued

    return with_enqueued(load_spec(spec), read_start_file(enqueue))


def _dashboard_beside(spec: str, out: str | None, port: int | None) -> tuple[str, Any]:
    """The run directory (chosen here when --out is not given, so the dashboard knows it) and the dashboard
    serving it on a thread."""
    if out is None:
        from automl.spec import load_spec

        loaded = load_spec(spec)  # the engine's default name: the spec's name, else its file's
        name = loaded.name or click.format_filename(spec).rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")
        out = f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return out, _serve_beside(out, port)


def _serve_beside(out: str, port: int | None) -> Any:
    """The dashboard serving the run directory ``out`` (made or not yet) on a thread, on 127.0.0.1."""
    from automl.dashboard.server import DEFAULT_PORT, BackgroundDashboard, bind, check_installed

    check_installed()
    try:
        bound = bind("127.0.0.1", DEFAULT_PORT if port is None else port)
    except AutoMLError:
        if port is not None:
            raise
        bound = bind("127.0.0.1", 0)  # 8750 is taken (another dashboard): any free port will do
    live = BackgroundDashboard(bound, pending=[out]).start()
    console.print(f"dashboard: {bound.url} (run {out})", highlight=False, soft_wrap=True)
    return live


def _stop_dashboard(live: Any, out: str | None) -> None:
    """Stop the dashboard :func:`_serve_beside` started (None: none was), saying how to serve the run again."""
    if live is not None:
        live.stop()
        console.print(f"dashboard stopped with the search; serve the run again: automl dashboard {out}",
                      highlight=False, soft_wrap=True)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--trials", type=int, help="Raise the number of trials (extends a finished run).")
@click.option("--address", help="Join the Ray cluster at ADDRESS instead of starting a local Ray.")
@click.option("--strict-plugins", is_flag=True, help=STRICT_HELP)
@click.option("--trust", is_flag=True, help=TRUST_HELP + " The run is then signed with your key.")
@click.option("--debug", "debug_here", is_flag=True, help=DEBUG_HELP)
@click.option("--dashboard", is_flag=True, help="Serve the live dashboard of this run on 127.0.0.1 while the search "
                                                "runs (it stops with the search).")
@click.option("--dashboard-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="The dashboard's port (default 8750, or a free one when 8750 is taken).")
@click.pass_context
def resume(ctx: click.Context, run_dir: str, trials: int | None, address: str | None, strict_plugins: bool,
           trust: bool, debug_here: bool, dashboard: bool, dashboard_port: int | None) -> None:
    """Continue the search in RUN_DIR with the spec it started with (after a crash or kill, or to add trials).

    \b
    Only a run signed with your key is resumed (it unpickles the searcher's
    state and loads the trials' models); --trust resumes another's.
    """
    from automl.engine import resume as run_resume

    ctx.obj["debug"] = ctx.obj["debug"] or debug_here
    live = _serve_beside(run_dir, dashboard_port) if dashboard or dashboard_port is not None else None
    try:
        _run(ctx, lambda progress: run_resume(run_dir, trials=trials, address=address,
                                              disabled_plugins=ctx.obj["disabled"], on_progress=progress.update,
                                              strict_plugins=strict_plugins, trust=trust, debug=ctx.obj["debug"]))
    finally:
        _stop_dashboard(live, run_dir)


def _run(ctx: click.Context, start: Any) -> None:
    progress = _Progress()
    try:
        with progress:
            run = start(progress)
    finally:
        progress.close()
    if not _print_summary(run):
        ctx.exit(1)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--show-space", is_flag=True, help="Print the space even when the spec gave it.")
@click.option("--import", "import_code", is_flag=True,
              help="Also import the user code SPEC names (the function trainer's module: its top-level code runs) "
                   "and check the function in it.")
@click.option("--enqueue", type=click.Path(dir_okay=False), help=ENQUEUE_HELP)
@click.pass_context
def validate(ctx: click.Context, spec: str, show_space: bool, import_code: bool, enqueue: str | None) -> None:
    """Check SPEC (shape, ranges, plugins, data, objectives) without running anything.

    User code SPEC names by import path (the function trainer's `function`) is not
    imported: its module must exist (found without running it); --import imports it too.
    Prints the space (one line per parameter) when it is the trainer's default (no `space:`
    in SPEC), with the number of starting points, and what reading the data changed.
    """
    from automl import validate as check

    plan = check(_with_enqueued(spec, enqueue), disabled_plugins=ctx.obj["disabled"], import_code=import_code)
    objectives = ", ".join(f"{o.metric} ({o.mode})" for o in plan.objectives)
    source = f"{len(plan.space)} parameters (the trainer's default space)" if plan.space_source == "trainer" \
        else f"{len(plan.space)} parameters"
    console.print(f"[green]ok[/] {spec}: trainer {plan.trainer.name}, searcher {plan.searcher.name}, "
                  f"{source}, {plan.trial_count} trials; objectives {objectives}",
                  highlight=False)
    for note in plan.notes:
        console.print(f"  note: {note}", highlight=False, markup=False, soft_wrap=True)
    if plan.space_source == "trainer" or show_space:
        console.print(f"space ({'trainer ' + plan.trainer.name if plan.space_source == 'trainer' else 'spec'}):",
                      highlight=False)
        for name, param in plan.space.items():
            console.print(f"  {_param_text(name, param)}", highlight=False, markup=False, soft_wrap=True)
    if plan.space_source == "trainer":
        console.print(f"starting points: {len(plan.start)} (evaluated first, cheapest first)", highlight=False)
    if plan.spec.start:  # the spec's own (and --enqueue's), completed: what trials 0, 1, ... run
        console.print(f"start points: {len(plan.spec.start)} (evaluated first; parameters left out drawn at random)",
                      highlight=False)
        for i, config in enumerate(plan.start[:len(plan.spec.start)]):
            console.print(f"  {i}: {config}", highlight=False, markup=False, soft_wrap=True)


def _param_text(name: str, param: Any) -> str:
    """One line for a space parameter: ``name: int 4..2048 log  (when model=lgbm)``."""
    from automl.space import Choice, Int

    if isinstance(param, Choice):
        text = f"{name}: choice [{', '.join(_fmt(v) for v in param.values)}]"
    else:
        kind = "int" if isinstance(param, Int) else "float"
        text = f"{name}: {kind} {_fmt(param.low)}..{_fmt(param.high)}" + (" log" if param.log else "")
    if param.when:
        text += "  (when " + ", ".join(f"{k}={'|'.join(_fmt(v) for v in vs)}" for k, vs in param.when.items()) + ")"
    return text


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, their packages and versions, what they provide, and their problems.

    \b
    Always runs: a plugin that fails to import, implements a misspelled hook
    (with a did-you-mean) or registers a name another plugin registers too is
    listed with the reason, and the rest of the plugins work.
    """
    from automl.plugins import get_plugin_manager

    pm = get_plugin_manager(ctx.obj["disabled"])
    infos = pm.plugins()
    if as_json:
        click.echo(json.dumps([vars(i) for i in infos], indent=2))
        return
    table = Table(title="automl plugins")
    for col in ("plugin", "package", "version", "provides"):
        table.add_column(col)
    for info in infos:
        provides = "; ".join(f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(info.provides.items()))
        if info.error:
            provides = f"[red]{escape(info.error)}[/]" + (f" (provides {escape(provides)})" if provides else "")
        table.add_row(info.name, info.package, info.version, provides or "-")
    console.print(table)
    # Each trainer's own line: what it trains and which of its models lack their library (and what to install).
    for name in pm.trainers.names():
        description = pm.trainers.get(name).description
        if description:
            console.print(f"trainer {escape(name)}: {escape(description)}", highlight=False, soft_wrap=True)
    # Problems again as plain lines: a table cell folds them, and a reader (or grep) wants them whole.
    for info in infos:
        if info.error:
            err_console.print(f"[red]broken:[/] {escape(info.label)}: {escape(info.error)}", highlight=False,
                              soft_wrap=True)
    for message in pm.clash_messages():
        err_console.print(f"[yellow]clash:[/] {escape(message)}; specs using another name are not affected",
                          highlight=False, soft_wrap=True)
    # The subcommands packages add (automl.commands entry points), loaded here so that a broken one is listed.
    commands = PluginCommands(main.commands, ctx.obj["disabled"])
    for name in commands.load_all():
        console.print(f"command {escape(name)}: from {escape(commands.package(name))}", highlight=False,
                      soft_wrap=True)
    for problem in commands.problems.values():
        err_console.print(f"[red]broken:[/] {escape(problem)}", highlight=False, soft_wrap=True)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--all", "show_all", is_flag=True, help="List every trial (default: the last 30).")
@click.option("--json", "as_json", is_flag=True, help="Print trials and front as JSON.")
@click.option("--store", metavar="URL", help="Read the run from this store instead of the one run.json names.")
def show(run_dir: str, show_all: bool, as_json: bool, store: str | None) -> None:
    """Show the trials and the Pareto front of a finished or running search in RUN_DIR.

    \b
    Reads JSON and SQL only (nothing is imported or unpickled), so it works on
    any run directory; a store run.json names outside the directory is read
    only when run.json is signed with your key, or with --store.
    """
    from automl.run import Run

    run = Run.open(run_dir, store=store)
    trials = run.trials()
    if as_json:
        click.echo(json.dumps({"run": _jsonable(run.info().to_dict()), "trials": [t.to_dict() for t in trials],
                               "front": run.front().to_dict()}, indent=2, default=str))
        return
    info = run.info()
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    console.print(f"[bold]{info.name}[/] ({info.status}) in {run.dir}: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), highlight=False)
    objectives = run.objectives()
    nodes = _node_labels([t.node for t in trials])
    table = Table(title="trials")
    for col in ("#", "status", "budget", *[o.metric for o in objectives], "seconds", "overhead",
                *(["node"] if nodes else []), "config / error"):
        table.add_column(col, overflow="fold")
    for t in trials if show_all else trials[-30:]:
        detail = t.error if t.status in ("failed", "stopped") and t.error else _config_text(t.config)
        table.add_row(str(t.number), str(t.status), f"{t.budget or 0}/{t.max_budget or '?'}",
                      *[_objective_cell(t.metrics, o.metric) for o in objectives], _fmt(t.duration),
                      _overhead(t.timings), *([nodes.get(t.node, "-")] if nodes else []), detail)
    console.print(table)
    _print_front(run)


def _node_labels(nodes: list[str | None]) -> dict[str | None, str]:
    """Each Ray node id of a run's trials -> its shortest prefix (8 characters at least) that no other node id
    shares; empty when the trials ran on fewer than two nodes (the column would say nothing)."""
    distinct = sorted({n for n in nodes if n})
    if len(distinct) < 2:
        return {}
    width = 8
    while len({n[:width] for n in distinct}) < len(distinct):
        width += 1
    return {n: n[:width] for n in distinct}


def _overhead(timings: Any) -> str:
    """The share of a trial's time not spent fitting (export, measurement, the rest), with its largest part."""
    if not isinstance(timings, dict) or not timings.get("total_s"):
        return "-"
    total = float(timings["total_s"])
    parts = {k.removesuffix("_s"): float(v or 0.0) for k, v in timings.items() if k not in ("fit_s", "total_s")}
    biggest = max(parts, key=lambda k: parts[k]) if parts else ""
    share = max(0.0, total - float(timings.get("fit_s") or 0.0)) / total
    return f"{share:.0%}" + (f" ({biggest})" if biggest and parts[biggest] > 0 else "")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(), help="The HTML file to write (default RUN_DIR/report.html).")
def report(run_dir: str, out: str | None) -> None:
    """Write one self-contained HTML report of the run in RUN_DIR.

    \b
    Optimisation history, the Pareto front (2-D and 3-D, hover shows the config),
    parallel coordinates, parameter importance (permutation importance of a
    random-forest surrogate, scikit-learn), early-stopping rungs, the trial table
    and the failures with their reasons. Opens offline: plotly.js is inside the file.
    """
    from automl.html_report import write_report

    path = write_report(run_dir, out)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)


@main.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False), metavar="[RUN_DIR]...")
@click.option("--store", "stores", multiple=True, metavar="URL",
              help="Show every run of this store (any SQLAlchemy URL; repeatable).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; any other than loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8750, show_default=True, help="0 picks a free one.")
@click.option("--token", metavar="T", envvar="AUTOML_DASHBOARD_TOKEN",
              help="Every request must carry it (?token=T, or the header X-Automl-Token); env AUTOML_DASHBOARD_TOKEN.")
def dashboard(run_dirs: tuple[str, ...], stores: tuple[str, ...], host: str, port: int, token: str | None) -> None:
    """Serve a live view of the runs in RUN_DIR... and/or every run of --store URL, until Ctrl-C.

    \b
    The runs list with progress; each run's trials (sortable, filterable),
    optimisation history, Pareto front (2-D, 3-D), learning curves with the
    rungs, parameter importance and failures; runs compared. The pages update
    while a search writes. The stores are only read, never written.
    Needs the extra: pip install 'automl[dashboard]'.
    """
    from automl.dashboard.server import bind, check_installed, serve

    check_installed()
    from automl.dashboard.data import Catalog

    bound = bind(host, port, token)  # a refused host or a port in use first: nothing read yet
    try:
        catalog = Catalog(run_dirs=run_dirs, store_urls=stores)
    except BaseException:
        bound.sock.close()
        raise
    shown = len(catalog.refs())
    console.print(f"automl dashboard on {bound.url} ({shown} run{'s' if shown != 1 else ''}); Ctrl-C stops it",
                  highlight=False, soft_wrap=True)
    try:
        serve(bound, catalog)
    finally:
        catalog.close()


@main.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--trial", "number", type=int, required=True, help="A completed trial (front member or not).")
@click.option("--format", "fmt", required=True, metavar="FORMAT",
              help="A format of the run's trainer: one the trial's measured model has a file in, or one the "
                   "trainer converts to (a bad name lists them).")
@click.option("--out", type=click.Path(), help="File or directory to write (default RUN_DIR/exports/).")
@click.option("--trust", is_flag=True, help=TRUST_HELP)
def export_command(run_dir: str, number: int, fmt: str, out: str | None, trust: bool) -> None:
    """Write the model a completed trial of RUN_DIR measured, in the format asked for.

    \b
    An export is the model that was measured, or it is refused with the reason.
    The formats are the trainer's own (sklearn: skops, onnx; torch: onnx,
    torchscript, pt2, state_dict). The measured file's format is copied byte for
    byte; so is a file the trainer wrote beside it in the same export (torch:
    ONNX and TorchScript), unless a compressor may have rewritten the export.
    Another format is converted by the trial's trainer from such a file and
    checked to predict the same (sklearn skops -> ONNX; torch TorchScript ->
    ONNX or state_dict); nothing is unpickled. A trial
    whose model was not kept (models.export: top), or that stopped or failed,
    has nothing to export: it is never fitted again. Only a run signed with
    your key is exported (--trust exports another's); a file outside RUN_DIR
    or behind a symbolic link never is.
    """
    from automl.export import export_trial

    done = export_trial(run_dir, number, fmt, out, trust=trust)
    how = f"converted from {done.converted_from} " if done.converted_from else ""
    console.print(f"trial {done.number} as {done.format}: {done.path} ({done.size_bytes} bytes, "
                  f"sha256 {done.sha256[:16]}...) {how}from {done.source}", highlight=False)


@main.command()
@click.option("--no-plugins", is_flag=True, help="The spec's shape alone, without the installed plugins' names.")
@click.pass_context
def schema(ctx: click.Context, no_plugins: bool) -> None:
    """Print the JSON Schema of a spec (for editor completion).

    \b
    The names of the installed searchers, trainers, schedulers, compressors and
    data sets are enums of their fields (each with its description and package),
    and a searcher's or scheduler's options are listed under `options` for its
    name. Point your editor's YAML support at the file, e.g. for VS Code's YAML
    extension: automl schema > automl-spec.schema.json and a first spec line
    # yaml-language-server: $schema=automl-spec.schema.json
    """
    if no_plugins:
        from automl.spec import spec_json_schema

        click.echo(json.dumps(spec_json_schema(), indent=2))
        return
    from automl.schema import plugin_schema

    click.echo(json.dumps(plugin_schema(ctx.obj["disabled"]), indent=2))


# -- output helpers -------------------------------------------------------------------


def _objective_cell(metrics: dict[str, Any], metric: str) -> str:
    """A trial's value of ``metric``; a stopped trial's rung estimate (of latency, size) marked as one, never as measured."""
    from automl.records import estimate_key

    if metric not in metrics and estimate_key(metric) in metrics:
        return f"~{_fmt(metrics[estimate_key(metric)])} (estimate)"
    return _fmt(metrics.get(metric))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def _config_text(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in config.items())


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "spec_text"}


def _print_front(run: Run) -> None:
    front = run.front()
    objectives = run.objectives()
    title = f"Pareto front: {len(front.members)} of {front.candidates} completed trials"
    if front.hypervolume is not None:
        title += f", hypervolume {_fmt(front.hypervolume)}"
    if front.provisional:
        title += " (provisional: search still running)"
    table = Table(title=title)
    for col in ("#", *[f"{o.metric} ({o.mode})" for o in objectives], "config", "model"):
        table.add_column(col, overflow="fold")
    for m in front.members:
        table.add_row(str(m.number), *[_fmt(m.metrics.get(o.metric)) for o in objectives],
                      _config_text(m.config), m.model or "-")
    console.print(table)
    drift = front.latency_drift
    if drift and drift.get("drift") is not None and abs(drift["drift"]) > 0.2:
        console.print(f"[yellow]warning:[/] the machine's speed drifted {drift['drift']:+.0%} while the front was "
                      "measured; latencies are less comparable")


def _print_summary(run: Run) -> bool:
    """Print the outcome; False when no trial completed."""
    info = run.info()
    summary = info.summary
    counts = summary.get("trials", {})
    console.print(f"[bold]{info.name}[/]: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                  + f" in {summary.get('wall_s', 0):.1f}s; results in {run.dir}", highlight=False)
    if summary.get("target_reached_by") is not None:
        console.print(f"budget.target reached by trial {summary['target_reached_by']}: the search ended there",
                      highlight=False)
    for failure in summary.get("plugin_errors") or ():  # recorded by the isolating hook caller; the search went on
        err_console.print(f"[yellow]warning:[/] {escape(str(failure.get('message')))}", highlight=False,
                          soft_wrap=True)
    if not counts.get("completed"):
        err_console.print(f"[red]{escape(no_usable_trial(run.trials()))}[/]", highlight=False, soft_wrap=True)
        return False
    _print_front(run)
    return True


def no_usable_trial(trials: Sequence[Any]) -> str:
    """One line for a run without a completed trial: each status counted, with its reasons counted.

    ``no usable trial: 5 failed (3 x 'objective accuracy missing: ...', 2 x 'killed by SIGSEGV ...')``.
    """
    by_status: dict[str, Counter[str]] = {}
    for t in trials:
        why = str(t.error or "no reason recorded").removeprefix("retrying after: ")
        by_status.setdefault(str(t.status), Counter())[why if len(why) <= 120 else why[:117] + "..."] += 1
    if not by_status:
        return "no usable trial: no trial ran"
    parts = []
    for status, reasons in sorted(by_status.items(), key=lambda kv: -sum(kv[1].values())):
        shown = ", ".join(f"{n} x {why!r}" for why, n in reasons.most_common(3))
        more = len(reasons) - 3
        parts.append(f"{sum(reasons.values())} {status} ({shown}{f', {more} other reasons' if more > 0 else ''})")
    return "no usable trial: " + "; ".join(parts)


class _Progress:
    """Live progress: a status line on a terminal, a line every few seconds otherwise."""

    def __init__(self) -> None:
        self.live: Any = None
        self.last_print = 0.0
        self.counts: Any = None
        self.tty = console.is_terminal

    def __enter__(self) -> _Progress:
        if self.tty:
            from rich.live import Live

            self.live = Live("starting...", console=console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        else:
            console.print("starting...")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def text(self) -> str:
        c = self.counts
        best = f"best {_fmt(c.best)} (#{c.best_number})" if c.best is not None else "best -"
        paused = f"{c.paused} paused, " if c.paused else ""
        from automl.plan import UNBOUNDED_TRIALS

        done = f"{c.done}" if c.total >= UNBOUNDED_TRIALS else f"{c.done}/{c.total}"  # the wall time bounds it
        return (f"trials {done} done, {c.running} running, {paused}{c.failed} failed, "
                f"{c.stopped} stopped, {best}, {time.time() - c.started:.0f}s")

    def update(self, counts: Any) -> None:
        self.counts = counts
        if self.live is not None:
            self.live.update(self.text())
        elif time.time() - self.last_print > 5 or counts.done == counts.total:
            self.last_print = time.time()
            console.print(self.text(), highlight=False)


def run(argv: Sequence[str] | None = None) -> int:
    """Call the CLI in-process (tests); returns the exit code."""
    try:
        main.main(args=list(argv or []), prog_name="automl", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
