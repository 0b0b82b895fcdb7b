"""The search loop: plan -> Ray Tune trials -> store -> front -> final measurement -> export."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.ensemble import build_ensemble_trial, is_ensemble_trial, wants_ensemble
from automl.errors import AutoMLError, PluginError
from automl.front import compute_front
from automl.interfaces import ENGINE_METRICS
from automl.measure import measure_latency, reference_latency
from automl.plan import Plan, build_plan, recorded_folds, recorded_repeats, run_spec
from automl.plugins import get_plugin_manager
from automl.records import FrontMember, StepRecord, TrialRecord, estimate_key
from automl.run import FRONT_FILE, RUN_FILE, Run
from automl.runlock import RunLock
from automl.spec import Spec, load_spec, parse_spec

if TYPE_CHECKING:
    from automl.recorder import Recorder
    from automl.searcher_adapter import SearcherAdapter

__all__ = ["search", "resume", "default_run_dir", "local_cpus"]

SEARCHER_STATE = "searcher.pkl"

log = logging.getLogger("automl")

# Ray Tune settings that keep per-trial overhead small (see docs/architecture.md):
# no automatic result loggers (the store is the record) and no usage reporting.
_RAY_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100",
    "RAY_DEDUP_LOGS": "0",
    # The old reporter honours verbose=0; the new one prints an experiment table regardless.
    "RAY_AIR_NEW_OUTPUT": "0",
}


def local_cpus() -> int:
    """CPUs this process may use (``AUTOML_NUM_CPUS`` overrides; containers misreport ``cpu_count``)."""
    if os.environ.get("AUTOML_NUM_CPUS"):
        return max(1, int(os.environ["AUTOML_NUM_CPUS"]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_ray(address: str | None, run_dir: Path | None = None) -> bool:
    """Start a local Ray (or join ``address``); True when this call started it.

    A local Ray started for the run in ``run_dir`` is recorded there (:mod:`automl.ray_session`), so that the next
    driver of the run stops what is left of it if this one is killed."""
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # address="local" never attaches silently to RAY_ADDRESS or a cluster started earlier.
            context = ray.init(address="local", num_cpus=local_cpus(), **kwargs)
            session_dir = getattr(context, "address_info", {}).get("session_dir")  # a RayContext for a local start
            if run_dir is not None and session_dir:
                from automl.ray_session import record_session

                record_session(run_dir, str(session_dir))
    except Exception as exc:  # Ray raises a bare Exception for a node that timed out starting, among others
        with contextlib.suppress(Exception):
            ray.shutdown()  # what a failed start left running
        hint = ""
        if address and os.environ.get("RAY_AUTH_MODE") is None:
            # Ray never sends a token to an address named explicitly unless told to.
            hint = (" If the cluster uses token authentication (the default for clusters started by Ray 2.59+), "
                    "set RAY_AUTH_MODE=token with its token in ~/.ray/auth_token or RAY_AUTH_TOKEN.")
        raise AutoMLError(
            f"cannot {'join the Ray cluster at ' + repr(address) if address else 'start Ray'}: {exc}.{hint}"
        ) from exc
    return True


def _prepare_dir(out: Path) -> None:
    if (out / RUN_FILE).exists():
        raise AutoMLError(
            f"{str(out)!r} already holds a run: continue it with --resume (or `automl resume {out}`), "
            "or choose another --out directory"
        )
    out.mkdir(parents=True, exist_ok=True)


def default_run_dir(plan: Plan) -> Path:
    return Path("runs") / f"{plan.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_address(address: str) -> None:
    """Refuse an unreachable ``host:port`` at once (Ray itself retries for a minute)."""
    if "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise AutoMLError(f"--address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        raise AutoMLError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from exc


def _concurrency(plan: Plan) -> int:
    """Trials that fit on the cluster at once; refuses per-trial resources it cannot give, saying what it has.

    Tune admits one pending trial at a time for a custom searcher unless a concurrency
    limit is set, which would run trials one by one; the limit also lets searchers batch.
    """
    import ray

    have = ray.cluster_resources()
    extra = plan.trainer_resources()
    fits = []
    for kind, own in (("CPU", plan.trial_resources["cpu"]), ("GPU", plan.trial_resources["gpu"])):
        total = float(have.get(kind, 0.0))
        want = own + float(extra.get(kind, 0.0))
        if want > total:
            besides = f" ({own:g} for the trial, {want - own:g} for its trainer's workers)" if want != own else ""
            raise plan.error(
                f"each trial asks for {want:g} {kind}(s){besides} but the Ray cluster has {total:g} "
                f"(CPU {have.get('CPU', 0):g}, GPU {have.get('GPU', 0):g})", "resources", kind.lower())
        if want > 0:
            fits.append(int(total / want + 1e-9))
    n = max(1, min(fits)) if fits else 1
    return min(n, plan.max_concurrent) if plan.max_concurrent else n


def _override(loaded: Spec, trials: int | None, seed: int | None) -> Spec:
    if trials is None and seed is None:
        return loaded
    source, lines, text = loaded._source, loaded._lines, loaded._text
    update: dict[str, Any] = {}
    if trials is not None:
        if trials < 1:
            raise AutoMLError(f"--trials must be positive, got {trials}")
        update["budget"] = loaded.budget.model_copy(update={"trials": trials})
    if seed is not None:
        from automl.spec import SEED_LIMIT

        if not 0 <= seed < SEED_LIMIT:  # the spec's own seed is checked by its model; this one bypasses it
            raise AutoMLError(f"--seed must be in [0, 2**32), got {seed}")
        update["seed"] = seed
    out = loaded.model_copy(update=update)
    out._source, out._lines, out._text = source, lines, text
    return out


def search(
    spec: str | Path | Spec,
    *,
    out: str | Path | None = None,
    trials: int | None = None,
    seed: int | None = None,
    address: str | None = None,
    resume: bool = False,
    warm_start: str | Path | None = None,
    disabled_plugins: Iterable[str] = (),
    on_progress: Callable[[Any], None] | None = None,
    strict_plugins: bool = False,
    trust: bool = False,
    debug: bool = False,
) -> Run:
    """Run a search (or resume one) and return its :class:`Run`.

    Args:
        spec: A spec file path or an already loaded :class:`Spec`.
        out: The run directory (default ``runs/NAME-TIMESTAMP``).
        trials: Overrides ``budget.trials`` (on resume: extends a finished run).
        seed: Overrides ``seed``.
        address: A Ray cluster to join; by default a local Ray is started.
        resume: Continue the run in ``out`` (after a crash, a kill, or to add trials):
            completed trials are kept, interrupted ones run again from their checkpoints.
        warm_start: Another run directory whose finished trials the searcher learns from first.
        disabled_plugins: Plugin names not to load.
        on_progress: Called with the progress counts after each trial event.
        strict_plugins: A plugin's observer hook that raises ends the search with a
            :class:`~automl.errors.PluginError` (completed trials kept; resume continues it).
            By default the failure is logged once per plugin and hook, recorded in the run's
            summary (``plugin_errors``), and the search goes on.
        trust: On resume, continue a run whose signatures do not verify with this user's key (another
            user's run, or one changed since): its files are then signed with this key (:mod:`automl.trust`).
        debug: Show Ray Tune's log (a traceback per failed trial) on the console too; it always goes to
            ``RUN_DIR/search.log``, and each failed trial gets one warning line with its reason.

    Raises:
        AutoMLError: For a bad spec, missing plugin, unreadable data or store, or a resume
            that does not match; :class:`~automl.runlock.RunLocked` while another driver runs in the
            run directory.
    """
    t0 = time.time()
    loaded = _override(spec if isinstance(spec, Spec) else load_spec(spec), trials, seed)
    pm = get_plugin_manager(disabled_plugins)
    hooks = pm.observe(strict=strict_plugins)
    plan = _plan(loaded, pm, Path(out) if out is not None else None, resume, trust)
    # Data and warm-start rows first: bad data or a bad --warm-start leaves no half-made run directory.
    data = plan.load_data()
    warm = _warm_rows(plan, Path(warm_start)) if warm_start else []
    run_dir = Path(out) if out else default_run_dir(plan)
    # One run directory, one live driver (a resume of a missing directory is _reopen's to refuse, creating nothing).
    lock = RunLock(run_dir, "resume" if resume else "search")
    if not (resume and not run_dir.is_dir()):
        lock.acquire()
    try:
        return _locked(plan, run_dir, bool(resume and out is not None), data, pm, hooks, t0,
                       lambda run: _tune(plan, run, data, address, pm, on_progress, t0, warm, debug=debug))
    finally:
        lock.release()


def _locked(plan: Plan, run_dir: Path, reopen: bool, data: Any, pm: Any, hooks: Any, t0: float,
            trial_phase: Callable[[Run], dict[str, Any]]) -> Run:
    """With the run directory's lock held: the run made (or reopened), its trials, its end."""
    if reopen:
        run = _reopen(plan, run_dir)
    else:
        _prepare_dir(run_dir)
        run = _create(plan, run_dir.resolve(), pm)
    try:
        summary = trial_phase(run)
    except KeyboardInterrupt:
        run.store.finish_run(run.run_id, "interrupted")
        raise
    except BaseException:
        run.store.finish_run(run.run_id, "failed", hooks.summary())
        hooks.reraise()  # --strict-plugins: our one-line error, not the wrapper Ray Tune raised around it
        raise
    _end(plan, run, data, summary, pm, hooks, t0)
    return run


def _plan(spec: Spec, pm: Any, out: Path | None, resume: bool, trust: bool = False) -> Plan:
    """The search's plan; on resume, checked against the plugins the run recorded, with the run's folds."""
    existing = out if resume and out is not None and (out / RUN_FILE).is_file() else None
    if existing is not None:
        # A plugin the run used is gone: name the package==version the store recorded, not just "unknown".
        pm.check_recorded(Run.open(existing).info().versions, f"resume {existing}")
        # A resume unpickles the searcher's state and loads the trials' models: only from a run signed with this
        # user's key (or trusted by --trust, which signs it), checked before anything of it is imported or loaded.
        from automl.trust import check_run

        check_run(Run.open(existing), "resume", trust=trust, searcher=True, trials=True, adopt=True)
        from automl.start_points import with_recorded

        # `--resume` without `--enqueue`: the points the run started with (in its signed run.json), numbered as then.
        spec = with_recorded(spec, json.loads((existing / RUN_FILE).read_text()))
    plan = build_plan(spec, pm)
    if resume and out is None:
        raise AutoMLError("--resume needs --out: the directory of the run to continue")
    if existing is not None:
        # `data.folds: auto` depends on the wall time, which a resume may change: keep the run's choice (a run
        # from before `auto` has none recorded and used the validation split).
        plan.keep_folds(recorded_folds(existing) or 0, recorded_repeats(existing))
    return plan


def _end(plan: Plan, run: Run, data: Any, summary: dict[str, Any], pm: Any, hooks: Any, t0: float) -> None:
    """After the trials: the ensemble trial, the front, the run's summary; plugins told the search ended."""
    try:
        _ensemble(plan, run, data, summary, pm)
    except PluginError:  # --strict-plugins: an observer raised when told of the ensemble trial
        run.store.finish_run(run.run_id, "failed", {**summary, **hooks.summary()})
        raise
    summary["wall_s"] = time.time() - t0
    _finish(plan, run, data, summary)
    try:
        pm.notify("automl_search_end", run=run)
    finally:
        if hooks.failures:  # the summary was written before search_end: add the hooks' failures to it
            summary.update(hooks.summary())
            run.store.finish_run(run.run_id, run.status, summary)


def resume(run_dir: str | Path, *, trials: int | None = None, trust: bool = False, **kwargs: Any) -> Run:
    """Continue the run in ``run_dir`` with the spec it was started with (``trust``: see :func:`search`).

    The stored spec is only parsed here (nothing imported): :func:`search` checks the run's signatures
    before its plan is built.
    """
    return search(run_spec(Run.open(run_dir)), out=run_dir, trials=trials, resume=True, trust=trust, **kwargs)


def _create(plan: Plan, run_dir: Path, pm: Any) -> Run:
    url = plan.store_url(run_dir)
    store = pm.open_store(url)
    objectives = {
        "objectives": [asdict(o) for o in plan.objectives],
        "constraints": [asdict(c) for c in plan.constraints],
    }
    run_id = store.create_run(
        name=plan.name, directory=str(run_dir), spec_text=plan.text, spec_hash=plan.spec_hash,
        seed=plan.seed, objectives=objectives, versions=plan.versions,
    )
    from automl.start_points import RUN_KEY, recorded

    meta = {"store": url, "run_id": run_id, "spec": plan.source, "folds": plan.folds, "repeats": plan.repeats}
    if (enqueued := recorded(plan.spec)) is not None:  # the stored spec is the file's text: the points go beside it
        meta[RUN_KEY] = enqueued
    text = json.dumps(meta, indent=2)
    from automl.trust import SPEC_ENTRY, sign_bytes

    sign_bytes(run_dir, SPEC_ENTRY, plan.text.encode())  # what `resume` and `export` build the plan from
    sign_bytes(run_dir, RUN_FILE, text.encode())  # signed first: a kill in between leaves it unwritten, not unsigned
    (run_dir / RUN_FILE).write_text(text)
    return Run(run_dir, store, run_id)


def _reopen(plan: Plan, run_dir: Path) -> Run:
    if not (run_dir / RUN_FILE).is_file():
        raise AutoMLError(f"cannot resume: {str(run_dir)!r} holds no automl run (no {RUN_FILE})")
    run = Run.open(run_dir)
    info = run.info()
    # The stored spec is read again with today's defaults: a section added since the run began (at its
    # default) changes the stored hash but not the search, and must not block a resume.
    changed = plan.changed_since(parse_spec(info.spec_text))
    if info.spec_hash != plan.spec_hash and changed:
        raise AutoMLError(
            f"cannot resume {str(run_dir)!r}: it holds a run of a different spec (changed: {', '.join(changed)}); "
            "only budget may change on resume. Use a new --out for a new search."
        )
    run.dir = run_dir.resolve()
    run.store.set_run_status(run.run_id, "running")
    return run


def _warm_rows(plan: Plan, other: Path) -> list[TrialRecord]:
    """Finished trials of another run whose configs fit this space."""
    rows = Run.open(other).trials()
    return [r for r in rows if r.status in ("completed", "stopped", "failed") and plan.space.contains(r.config)]


@dataclass
class _History:
    """What the store holds of a run as its search starts (empty for a new run)."""

    trials: list[TrialRecord]
    #: Trial numbers below this are the searcher's: the budget, plus the ensemble trial of an earlier end of
    #: this run, which is no searcher's trial and takes no trial's place.
    limit: int
    #: Finished for good (completed, stopped, failed), the ensemble trial aside.
    done: list[TrialRecord]
    #: Running or pending when the driver stopped: run again (from their checkpoints).
    interrupted: list[TrialRecord]
    #: Paused trials (promotion-type scheduler) and the budget each reached.
    paused: dict[int, int]
    #: Numbers below the limit the store has a row for.
    recorded: set[int]

    @property
    def next_number(self) -> int:
        return max((t.number + 1 for t in self.trials), default=0)

    @property
    def to_run(self) -> int:
        # Counted in the store, not from the last number: a number handed out that the store never got (a driver
        # killed between the two, in a run of an earlier version) is drawn again, so every number below the
        # budget ends up run once.
        return len(self.interrupted) + self.limit - len(self.recorded)


def _history(plan: Plan, run: Run) -> _History:
    trials = run.trials()
    ensembles = [t.number for t in trials if is_ensemble_trial(t)]
    limit = plan.trial_count + len(ensembles)
    return _History(
        trials=trials, limit=limit,
        done=[t for t in trials if t.status in ("completed", "stopped", "failed") and t.number not in ensembles],
        interrupted=[t for t in trials if t.status in ("running", "pending") and t.number < limit],
        paused={t.number: int(t.budget or 0) for t in trials if t.status == "paused"},
        recorded={t.number for t in trials if t.number < limit},
    )


def _tune(
    plan: Plan, run: Run, data: Any, address: str | None, pm: Any, on_progress: Any, t0: float,
    warm: list[TrialRecord], *, debug: bool = False,
) -> dict[str, Any]:
    """The trials: Ray started (or joined), Tune run with our adapter, recorder and scheduler; what is left
    unfinished stopped. Returns the trial phase's part of the run's summary."""
    past = _history(plan, run)
    reached = _target_reached(plan, past.trials)
    scheduler, rungs = _scheduler(plan, run, past.paused)
    if rungs and past.to_run == 0:
        rungs.no_more_trials(past.next_number)  # every trial was handed out: a synchronous rung ranks what it has
    if (past.to_run == 0 and not (rungs and rungs.has_promotion())) or reached is not None:
        _end_paused(run, "paused when the search ended: not promoted")
        return {"first_trial_s": None, "exhausted": False, "resumed": bool(past.trials), "target_reached_by": reached}
    if address:
        _check_address(address)
    from automl.ray_session import clean_orphans

    clean_orphans(run.dir)  # what a killed driver of this run left running (this one holds the run's lock)
    started = _start_ray(address, run.dir)
    try:
        concurrency = _concurrency(plan)
        # The wall-time budget counts from the start of the command (Ray's start-up included), as a user times it,
        # and holds the final stage too: trials end early enough to leave it its time.
        wall = plan.wall_time
        deadline = t0 + wall - _final_reserve(plan, wall) if wall is not None else None
        adapter = _adapter(plan, run, past, rungs, concurrency, deadline, warm)
        adapter.milestones = frozenset(getattr(scheduler, "milestones", ()))  # rung results for observe_rung
        recorder = _recorder(plan, run, past, adapter, rungs, pm, on_progress)
        with _tune_log(run.dir, debug):
            _tuner(plan, run, data, past, (scheduler, rungs), adapter, recorder, concurrency, deadline).fit()
        adapter.flush()
    finally:
        if started:
            import ray

            ray.shutdown()
    reached = _stop_unfinished(plan, run)
    return {"first_trial_s": (recorder.first_start - t0) if recorder.first_start else None,
            "exhausted": adapter.exhausted, "resumed": bool(past.trials), "target_reached_by": reached}


#: Ray Tune's log of a search (a traceback per failed trial, Tune's own warnings), in the run directory.
SEARCH_LOG = "search.log"


@contextlib.contextmanager
def _tune_log(run_dir: Path, debug: bool) -> Iterator[None]:
    """Ray Tune's log goes to ``RUN_DIR/search.log`` (and, with ``debug``, to the console as before): the console
    gets one line per failed trial from the recorder, not ~30 lines of Ray traceback."""
    tune_log = logging.getLogger("ray.tune")
    handler = logging.FileHandler(run_dir / SEARCH_LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    propagate = tune_log.propagate
    tune_log.addHandler(handler)
    tune_log.propagate = debug
    try:
        yield
    finally:
        tune_log.propagate = propagate
        tune_log.removeHandler(handler)
        handler.close()


def _adapter(plan: Plan, run: Run, past: _History, rungs: Any, concurrency: int, deadline: float | None,
             warm: list[TrialRecord]) -> SearcherAdapter:
    """The searcher adapter, carrying on from the searcher's state file and the store (resume, extend)."""
    from automl.searcher_adapter import SearcherAdapter

    state_path = run.dir / SEARCHER_STATE
    state = SearcherAdapter.load_state(state_path) if past.trials else None
    strategy = state["strategy"] if state else plan.make_searcher(workers=concurrency)

    def skipped(number: int, config: dict[str, Any], reason: str) -> None:
        now = time.time()
        run.store.save_trial(run.run_id, number, status="stopped", config=config, error=reason, budget=0,
                             max_budget=plan.max_budget, started_at=None, finished_at=now)

    def issued(number: int, config: dict[str, Any]) -> None:
        run.store.save_trial(run.run_id, number, status="pending", config=config, max_budget=plan.max_budget)

    handed = max(past.next_number, state["next_number"] if state else 0)
    adapter = SearcherAdapter(
        strategy, max_budget=plan.max_budget, first_number=handed, on_issue=issued,
        reissue=[n for n in range(min(handed, past.limit)) if n not in past.recorded],
        limit=past.limit, queue=[(t.number, dict(t.config)) for t in past.interrupted],
        state_path=state_path, rungs=rungs,
        configs={t.number: t.config for t in past.trials if t.number in past.paused},
        deadline=deadline, on_skip=skipped, start=plan.start, cost_units=plan.cost_units,
    )
    if state:
        adapter.observed = set(state["observed"])
        adapter.rungs_told = set(state.get("rungs_told", ()))
        adapter.paused_told = set(state.get("paused_told", ()))
    _tell_past(adapter, past, warm)
    for t in past.interrupted:
        run.store.save_trial(run.run_id, t.number, status="pending")
    return adapter


def _tell_past(adapter: SearcherAdapter, past: _History, warm: list[TrialRecord]) -> None:
    """Tell the searcher of the warm-start trials, then of this run's trials finished after its last saved state;
    the cost model (not part of that state) rebuilt from the run's completed trials."""
    from automl.interfaces import TrialOutcome
    from automl.searcher_adapter import outcome_from_row

    for i, row in enumerate(warm):
        outcome = outcome_from_row(row)
        adapter.tell(TrialOutcome(-1 - i, outcome.config, outcome.status, outcome.values, outcome.budget,
                                  outcome.max_budget, outcome.cost_s))
    for row in past.done:
        adapter.retell(outcome_from_row(row))


def _recorder(plan: Plan, run: Run, past: _History, adapter: SearcherAdapter, rungs: Any, pm: Any,
              on_progress: Any) -> Recorder:
    """The driver's recorder of trial events, its counts and export bar carried on from the store."""
    from automl.recorder import Counts, Recorder

    counts = Counts(total=plan.trial_count, done=len(past.done),
                    failed=sum(t.status == "failed" for t in past.done),
                    stopped=sum(t.status == "stopped" for t in past.done), paused=len(past.paused))
    recorder = Recorder(
        run.store, run.run_id, run_dir=run.dir, primary=plan.objectives[0], seed=plan.seed,
        metric_keys=set(plan.metrics) | {estimate_key(m) for m in plan.rung_metrics},
        max_budget=plan.max_budget, notify=lambda row: pm.notify("automl_trial_result", run=run, trial=row),
        counts=counts, adapter=adapter, on_progress=on_progress, rungs=rungs, export_top=plan.export_top,
    )
    for row in past.done:  # a resumed search's bar starts from the trials it already has
        value = row.metrics.get(plan.objectives[0].metric) if row.status == "completed" else None
        if isinstance(value, (int, float)):
            recorder.note_completed(float(value))
    return recorder


def _tuner(plan: Plan, run: Run, data: Any, past: _History, scheduling: tuple[Any, Any], adapter: SearcherAdapter,
           recorder: Recorder, concurrency: int, deadline: float | None) -> Any:
    """The Tune experiment of this start of the run: the trial function bound to the plan's job and the data."""
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig

    from automl.recorder import TargetStopper
    from automl.schedulers import RungScheduler
    from automl.trial_signer import TrialSigner
    from automl.trial_worker import run_trial

    scheduler, rungs = scheduling
    job = plan.job(run.dir, deadline=deadline,
                   rung_steps=scheduler.milestones if isinstance(scheduler, RungScheduler) else ())
    job = dataclasses.replace(job, required=_trainer_objectives(plan),
                              report_failures=plan.max_failures == 0 and _reads_failure_reports(scheduler))
    trainable = tune.with_resources(tune.with_parameters(run_trial, data=data, job=job), plan.trial_resources)
    # Each start of a run gets its own Tune experiment; the store, not Tune, links them.
    attempt = len(list(run.dir.glob("tune*")))
    target = plan.target
    return tune.Tuner(
        trainable,
        tune_config=TuneConfig(
            search_alg=adapter,
            scheduler=scheduler,
            # Tune counts each re-issue of a promoted trial as a sample; the adapter ends the search.
            num_samples=past.to_run if rungs is None else (past.to_run + len(past.paused)) * (len(rungs.milestones) + 1),
            reuse_actors=True,
            time_budget_s=max(1.0, deadline - time.time()) if deadline is not None else None,
            max_concurrent_trials=concurrency,
        ),
        run_config=RunConfig(
            name="tune" if attempt == 0 else f"tune-{attempt}",
            storage_path=str(run.dir),
            verbose=0,
            # The signer first: a trial's model files are signed before the recorder stores it completed.
            callbacks=[TrialSigner(run.dir), recorder],
            stop=TargetStopper(recorder.counts, plan.objectives[0], target) if target is not None else None,
            failure_config=FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            log_to_file=True,
        ),
    )


def _reads_failure_reports(scheduler: Any) -> bool:
    """Whether ``scheduler`` takes a failure reported as a trial's last result (``{ERROR: reason}``, no metric) for
    the error it is: the engine's own schedulers do; Ray's others (the median rule) and a plugin's may not (Ray's
    strict metric check refuses such a result, and its median rule keeps it), so their trials' failures end the worker."""
    from ray.tune.schedulers import FIFOScheduler

    from automl.schedulers import RungScheduler

    return type(scheduler) is FIFOScheduler or isinstance(scheduler, RungScheduler)


def _trainer_objectives(plan: Plan) -> tuple[str, ...]:
    """The objectives' metrics the trainer itself must report: a trial whose trainer never reports one fails with
    that reason (rather than completing without it). Not the engine's (latency, size), a compressor's or the
    ``_uncompressed`` copies: those come after the check (and a trial that does not export its model has none)."""
    from automl.interfaces import UNCOMPRESSED

    theirs = {name for record, _ in plan.compressors for name in record.metrics}
    return tuple(o.metric for o in plan.objectives
                 if o.metric not in ENGINE_METRICS and o.metric not in theirs and not o.metric.endswith(UNCOMPRESSED))


def _stop_unfinished(plan: Plan, run: Run) -> int | None:
    """Trials Tune ended without a completion event (wall-time budget or target reached) are stopped at their best
    step, paused ones for good. Returns the trial that reached ``budget.target``, if one did."""
    from automl.recorder import best_step
    from automl.trial_job import DEADLINE_REASON

    reached = _target_reached(plan, run.trials())
    why = (f"stopped when trial {reached} reached budget.target" if reached is not None
           else DEADLINE_REASON)
    for row in run.trials():
        if row.status in ("running", "pending"):
            now = time.time()
            run.store.save_trial(run.run_id, row.number, status="stopped", finished_at=now, error=why,
                                 duration=now - row.started_at if row.started_at else None,
                                 **best_step(run.steps(row.number), plan.objectives[0]))
    _end_paused(run, "paused when the search ended: not promoted"
                + (f" (trial {reached} reached budget.target)" if reached is not None else ""))
    return reached


def _final_reserve(plan: Plan, wall: float) -> float:
    """Seconds of ``budget.wall_time`` kept for what follows the trials: Ray's shutdown (~1.5 s), the
    ensemble (loading its members' files and checking its predictions: a few seconds) and the front
    with its models copied. Measured on 2 cores (benchmarks/tabular); a guess for other machines."""
    ensemble = wants_ensemble(plan)[0]
    return (5.0 + 0.05 * wall) if ensemble else (2.0 + 0.02 * wall)


def _scheduler(plan: Plan, run: Run, paused: dict[int, int]) -> tuple[Any, Any]:
    """The spec's scheduler, its rungs rebuilt from the store (resume, extend); also the scheduler
    again when it is of the promotion type (it pauses trials and re-issues them), else None."""
    from automl.schedulers import RungScheduler

    scheduler = plan.make_scheduler()
    if not isinstance(scheduler, RungScheduler):
        return scheduler, None
    steps = run.steps()
    if steps:
        by_time: list[StepRecord] = sorted(steps, key=lambda r: r.at)
        scheduler.replay(by_time, paused=paused)
        # Trials that will not report again (a synchronous scheduler would wait for them at their next rung).
        scheduler.trials_ended(t.number for t in run.trials() if t.status in ("failed", "stopped"))
    return scheduler, scheduler if scheduler.promotes else None


def _end_paused(run: Run, why: str) -> None:
    """A finished search keeps no paused trial: each is stopped at its budget, its checkpoint removed."""
    from automl.trial_job import remove_restart_files, trial_dir

    for row in run.trials():
        if row.status == "paused":
            run.store.save_trial(run.run_id, row.number, status="stopped", error=why)
            remove_restart_files(trial_dir(run.dir, row.number))


def _target_reached(plan: Plan, trials: list[TrialRecord]) -> int | None:
    """The first completed trial whose first objective reached ``budget.target``, if any."""
    target = plan.target
    if target is None:
        return None
    primary = plan.objectives[0]
    hits = [t for t in trials if t.status == "completed"
            and t.metrics.get(primary.metric) is not None
            and primary.to_min(float(t.metrics[primary.metric])) <= primary.to_min(target)]
    return min(hits, key=lambda t: t.finished_at or 0).number if hits else None


def _ensemble(plan: Plan, run: Run, data: Any, summary: dict[str, Any], pm: Any) -> None:
    """Greedy ensemble of the completed trials, recorded as one more trial (see :mod:`automl.ensemble`).

    Never fails the search: a build that fails leaves one warning line and its reason in the
    run's summary (``summary["ensemble"]``), and every completed trial stays as it was.
    """
    wanted, why = wants_ensemble(plan)
    if not wanted:
        summary["ensemble"] = {"built": False, "reason": why}
        return
    try:
        summary["ensemble"] = built = build_ensemble_trial(plan, run, data)
        _sign_ensemble(run, built)
    except Exception as exc:  # a trainer's error while scoring or building: the search still finishes
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
        log.warning("automl: no ensemble was built: %s", reason)
        summary["ensemble"] = {"built": False, "reason": reason}
        return
    if built.get("built") and not built.get("kept"):
        row = run.store.trial(run.run_id, built["number"])
        if row:
            pm.notify("automl_trial_result", run=run, trial=row)


def _sign_ensemble(run: Run, built: dict[str, Any]) -> None:
    """Sign the ensemble trial's files (a resume's final stage loads them)."""
    from automl.trust import sign_trial

    row = run.store.trial(run.run_id, built["number"]) if built.get("number") is not None else None
    if row is not None and row.artifact:
        sign_trial(run.dir, row.artifact)


#: A trial's latency in the trial is a short measurement next to other trials; a trial whose latency
#: could be this much lower (1/1.5) and would then be on the front is measured again at the end.
LATENCY_SLACK = 1.5


def _latency_candidates(plan: Plan, trials: list[TrialRecord], members: list[int], full_only: bool) -> list[int]:
    """The front's members and the trials a noisy in-trial latency may have kept off it: the ones the final,
    full-protocol measurement is spent on (every other trial is far from the front)."""
    if "latency_ms" not in {o.metric for o in plan.objectives}:
        return list(members)
    hopeful = []
    for t in trials:
        metrics = dict(t.metrics)
        if t.number not in members and isinstance(metrics.get("latency_ms"), (int, float)):
            metrics["latency_ms"] = float(metrics["latency_ms"]) / LATENCY_SLACK
        hopeful.append(t.replace(metrics=metrics))
    others = compute_front(hopeful, plan.objectives, plan.constraints, full_budget_only=full_only).numbers
    return sorted(set(members) | set(others))


def _finish(plan: Plan, run: Run, data: Any, summary: dict[str, Any]) -> None:
    """Front, final serial measurement of its members, models copied, front.json written."""
    trials = run.trials()
    stopped_too = not plan.include_stopped
    front = compute_front(trials, plan.objectives, plan.constraints, full_budget_only=stopped_too)
    by_number = {t.number: t for t in trials}
    drift = None
    if plan.measured and front.members:
        drift = _measure_again(plan, run, data, by_number, _latency_candidates(plan, trials, front.numbers, stopped_too))
        # Re-measured members may now dominate each other differently: rebuild the front.
        front = compute_front(list(by_number.values()), plan.objectives, plan.constraints,
                              full_budget_only=stopped_too)
    members = [_keep_model(run, by_number[number]) for number in front.numbers]
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    front = front.replace(members=tuple(members), latency_drift=drift, trials=counts)
    (run.dir / FRONT_FILE).write_text(json.dumps(front.to_dict(), indent=2, default=str))
    summary.update({"trials": counts, "front_size": len(members), "hypervolume": front.hypervolume})
    if drift and drift.get("skipped"):  # models the final stage could not measure again, with the reasons
        summary["final_measure_skipped"] = drift["skipped"]
    status = "completed" if counts.get("completed", 0) else "failed"
    run.store.finish_run(run.run_id, status, summary)


#: How a latency measured by the final stage's protocol is described (the end of its ``measured_as``).
FINAL_PROTOCOL = "serially at the end"


def _measure_again(plan: Plan, run: Run, data: Any, by_number: dict[int, TrialRecord],
                   numbers: list[int]) -> dict[str, Any]:
    """Measure the latency of trials ``numbers`` again, one at a time with the full protocol; their rows (in the
    store and ``by_number``) updated. Returns the reference latency before and after, and their drift.

    Idempotent: a trial already measured so (an earlier final stage of this run, killed or not) keeps its figure,
    so a resumed final stage never replaces a stored latency. A model that cannot be loaded or run is skipped with
    its reason (in its ``measured_as`` and under ``skipped`` here); it keeps the latency it had in its trial.
    """
    batch, warmup, repeats = plan.final_latency()
    ref_before = reference_latency()
    skipped: dict[str, str] = {}
    for number in numbers:
        t = by_number[number]
        if not t.artifact or str((t.measured_as or {}).get("latency_ms", "")).endswith(FINAL_PROTOCOL):
            continue
        try:
            trainer = plan.trial_trainer(number, t.config or {}, run.dir, data)
            predict = trainer.load_predictor(Path(t.artifact))
            latency = measure_latency(predict, trainer.sample_input(batch), warmup=warmup, repeats=repeats)
        except Exception as exc:  # a broken model costs its own figure, not the run
            reason = (f"{type(exc).__name__}: {exc}".strip().splitlines() or [type(exc).__name__])[0][:300]
            log.warning("automl: trial %d's model was not measured again at the end: %s", number, reason)
            skipped[str(number)] = reason
            how = {**t.measured_as, "latency_ms": f"measured in the trial only: measuring it again failed: {reason}"}
            run.store.save_trial(run.run_id, number, measured_as=how)
            by_number[number] = t.replace(measured_as=how)
            continue
        metrics = dict(t.metrics)
        if "latency_ms_trial" not in metrics:  # a resumed final stage keeps the trial's own figure
            metrics["latency_ms_trial"] = metrics.get("latency_ms")
        metrics["latency_ms"] = latency
        how = {**t.measured_as, "latency_ms": (
            f"{Path(t['artifact']).suffix.lstrip('.')}, batch {batch}, 1 thread, median of "
            f"{repeats} calls after {warmup}, {FINAL_PROTOCOL}")}
        run.store.save_trial(run.run_id, number, metrics=metrics, measured_as=how)
        by_number[number] = t.replace(metrics=metrics, measured_as=how)
    ref_after = reference_latency()
    return {"reference_ms_before": ref_before, "reference_ms_after": ref_after,
            "drift": ref_after / ref_before - 1.0 if ref_before > 0 else None, **({"skipped": skipped} if skipped else {})}


def _keep_model(run: Run, t: TrialRecord) -> FrontMember:
    """A front member, its model copied into the run's ``models/`` (when its file is still there)."""
    model = None
    if t.artifact and Path(t.artifact).exists():
        models = run.dir / "models"
        models.mkdir(exist_ok=True)
        src = Path(t.artifact)
        dest = models / f"trial-{t.number:05d}-{src.name}"
        shutil.copy2(src, dest) if src.is_file() else shutil.copytree(src, dest, dirs_exist_ok=True)
        model = str(dest.relative_to(run.dir))
    return FrontMember(t.number, t.config, t.metrics, model)
