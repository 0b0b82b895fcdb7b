"""The search loop: plan -> Ray Tune trials -> store -> front -> final measurement -> export."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from automl.ensemble import build_ensemble_trial, is_ensemble_trial, wants_ensemble
from automl.errors import AutoMLError, PluginError
from automl.front import compute_front
from automl.measure import measure_latency, reference_latency
from automl.plan import Plan, build_plan, user_paths
from automl.plugins import get_plugin_manager
from automl.records import FrontMember, StepRecord, TrialRecord
from automl.run import FRONT_FILE, RUN_FILE, Run
from automl.spec import Spec, load_spec, parse_spec

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


def _start_ray(address: str | None) -> bool:
    """Start a local Ray (or join ``address``); True when this call started it."""
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
            ray.init(address="local", num_cpus=local_cpus(), **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
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
    res = plan.spec.resources
    extra_of = plan.trainer.extra_resources
    extra = dict(extra_of(plan.spec.trainer.params)) if extra_of else {}
    fits = []
    for kind, own in (("CPU", res.cpu), ("GPU", res.gpu)):
        total = float(have.get(kind, 0.0))
        want = own + float(extra.get(kind, 0.0))
        if want > total:
            besides = f" ({own:g} for the trial, {want - own:g} for its trainer's workers)" if want != own else ""
            raise plan.spec.error(
                f"each trial asks for {want:g} {kind}(s){besides} but the Ray cluster has {total:g} "
                f"(CPU {have.get('CPU', 0):g}, GPU {have.get('GPU', 0):g})", "resources", kind.lower())
        if want > 0:
            fits.append(int(total / want + 1e-9))
    n = max(1, min(fits)) if fits else 1
    return min(n, res.max_concurrent) if res.max_concurrent else n


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

    Raises:
        AutoMLError: For a bad spec, missing plugin, unreadable data or store, or a resume
            that does not match.
    """
    t0 = time.time()
    loaded = _override(spec if isinstance(spec, Spec) else load_spec(spec), trials, seed)
    pm = get_plugin_manager(disabled_plugins)
    hooks = pm.observe(strict=strict_plugins)
    if resume and out is not None and (Path(out) / RUN_FILE).is_file():
        # A plugin the run used is gone: name the package==version the store recorded, not just "unknown".
        pm.check_recorded(Run.open(out).info().versions, f"resume {out}")
    plan = build_plan(loaded, pm)
    if resume and out is None:
        raise AutoMLError("--resume needs --out: the directory of the run to continue")
    if resume and out is not None and (Path(out) / RUN_FILE).is_file():
        # `data.folds: auto` depends on the wall time, which a resume may change: keep the run's choice (a run
        # from before `auto` has none recorded and used the validation split).
        plan.keep_folds(int(json.loads((Path(out) / RUN_FILE).read_text()).get("folds", 0)))
    # Data and warm-start rows first: bad data or a bad --warm-start leaves no half-made run directory.
    data = plan.load_data()
    warm = _warm_rows(plan, Path(warm_start)) if warm_start else []
    if resume and out is not None:
        run = _reopen(plan, Path(out))
    else:
        run_dir = Path(out) if out else default_run_dir(plan)
        _prepare_dir(run_dir)
        run = _create(plan, run_dir.resolve(), pm)
    try:
        summary = _tune(plan, run, data, address, pm, on_progress, t0, warm)
    except KeyboardInterrupt:
        run.store.finish_run(run.run_id, "interrupted")
        raise
    except BaseException:
        run.store.finish_run(run.run_id, "failed", hooks.summary())
        hooks.reraise()  # --strict-plugins: our one-line error, not the wrapper Ray Tune raised around it
        raise
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
    return run


def resume(run_dir: str | Path, *, trials: int | None = None, **kwargs: Any) -> Run:
    """Continue the run in ``run_dir`` with the spec it was started with."""
    existing = Run.open(run_dir)
    info = existing.info()
    source = json.loads((Path(run_dir) / RUN_FILE).read_text()).get("spec")
    spec = parse_spec(info.spec_text, source)
    return search(spec, out=run_dir, trials=trials, resume=True, **kwargs)


def _create(plan: Plan, run_dir: Path, pm: Any) -> Run:
    url = plan.spec.store or f"sqlite:///{run_dir / 'automl.db'}"
    store = pm.open_store(url)
    objectives = {
        "objectives": [asdict(o) for o in plan.objectives],
        "constraints": [asdict(c) for c in plan.constraints],
    }
    run_id = store.create_run(
        name=plan.name, directory=str(run_dir), spec_text=plan.spec.text, spec_hash=plan.spec_hash,
        seed=plan.spec.seed, objectives=objectives, versions=plan.versions,
    )
    (run_dir / RUN_FILE).write_text(json.dumps({"store": url, "run_id": run_id, "spec": plan.spec.source,
                                                "folds": plan.folds}, indent=2))
    return Run(run_dir, store, run_id)


def _reopen(plan: Plan, run_dir: Path) -> Run:
    if not (run_dir / RUN_FILE).is_file():
        raise AutoMLError(f"cannot resume: {str(run_dir)!r} holds no automl run (no {RUN_FILE})")
    run = Run.open(run_dir)
    info = run.info()
    # The stored spec is read again with today's defaults: a section added since the run began (at its
    # default) changes the stored hash but not the search, and must not block a resume.
    old = parse_spec(info.spec_text).model_dump(mode="json", exclude={"budget", "name"})
    new = plan.spec.model_dump(mode="json", exclude={"budget", "name"})
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
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


def _tune(
    plan: Plan, run: Run, data: Any, address: str | None, pm: Any, on_progress: Any, t0: float,
    warm: list[TrialRecord],
) -> dict[str, Any]:
    spec = plan.spec
    history = run.trials()
    # The ensemble trial of an earlier end of this run is no searcher's trial, and its number takes no trial's place.
    ensembles = [t.number for t in history if is_ensemble_trial(t)]
    limit = spec.budget.trials + len(ensembles)
    done = [t for t in history if t.status in ("completed", "stopped", "failed") and t.number not in ensembles]
    interrupted = [t for t in history if t.status in ("running", "pending") and t.number < limit]
    paused = {t.number: int(t.budget or 0) for t in history if t.status == "paused"}
    next_number = max((t.number + 1 for t in history), default=0)
    # Counted in the store, not from the last number: a number handed out that the store never got (a driver
    # killed between the two, in a run of an earlier version) is drawn again, so every number below the
    # budget ends up run once.
    recorded = {t.number for t in history if t.number < limit}
    to_run = len(interrupted) + limit - len(recorded)
    reached = _target_reached(plan, history)
    scheduler, rungs = _scheduler(plan, run, paused)
    if (to_run == 0 and not (rungs and rungs.has_promotion())) or reached is not None:
        _end_paused(run, "paused when the search ended: not promoted")
        return {"first_trial_s": None, "exhausted": False, "resumed": bool(history), "target_reached_by": reached}

    if address:
        _check_address(address)
    started = _start_ray(address)
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig

    from automl.interfaces import TrialOutcome
    from automl.recorder import Counts, Recorder, TargetStopper, best_step
    from automl.schedulers import RungScheduler
    from automl.searcher_adapter import SearcherAdapter, outcome_from_row
    from automl.trial_job import DEADLINE_REASON, Job
    from automl.trial_worker import run_trial

    try:
        concurrency = _concurrency(plan)
        state_path = run.dir / SEARCHER_STATE
        state = SearcherAdapter.load_state(state_path) if history else None
        strategy = state["strategy"] if state else plan.make_searcher(workers=concurrency)
        # The wall-time budget counts from the start of the command (Ray's start-up included), as a user times it,
        # and holds the final stage too: trials end early enough to leave it its time.
        wall = float(spec.budget.wall_time) if spec.budget.wall_time else None
        deadline = t0 + wall - _final_reserve(plan, wall) if wall is not None else None

        def skipped(number: int, config: dict[str, Any], reason: str) -> None:
            now = time.time()
            run.store.save_trial(run.run_id, number, status="stopped", config=config, error=reason, budget=0,
                                 max_budget=plan.max_budget, started_at=None, finished_at=now)

        def issued(number: int, config: dict[str, Any]) -> None:
            run.store.save_trial(run.run_id, number, status="pending", config=config, max_budget=plan.max_budget)

        handed = max(next_number, state["next_number"] if state else 0)
        adapter = SearcherAdapter(
            strategy, max_budget=plan.max_budget, first_number=handed, on_issue=issued,
            reissue=[n for n in range(min(handed, limit)) if n not in recorded],
            limit=limit, queue=[(t.number, dict(t.config)) for t in interrupted],
            state_path=state_path, promote=rungs.next_promotion if rungs else None,
            configs={t.number: t.config for t in history if t.number in paused},
            deadline=deadline, on_skip=skipped, start=plan.start, cost_units=plan.cost_units,
        )
        if state:
            adapter.observed = set(state["observed"])
        for i, row in enumerate(warm):
            outcome = outcome_from_row(row)
            adapter.tell(TrialOutcome(-1 - i, outcome.config, outcome.status, outcome.values, outcome.budget,
                                      outcome.max_budget, outcome.cost_s))
        for row in done:  # finished after the searcher's last saved state
            outcome = outcome_from_row(row)
            if outcome.status == "completed":
                adapter.costs.add(outcome, adapter._units(outcome.config))
            adapter.tell(outcome)
        for t in interrupted:
            run.store.save_trial(run.run_id, t.number, status="pending")

        job = Job(
            trainer=plan.trainer.factory, params=dict(spec.trainer.params), task=spec.task or "classification",
            seed=spec.seed, run_dir=str(run.dir), measured=plan.measured, batch_size=spec.latency.batch_size,
            warmup=spec.latency.warmup, repeats=spec.latency.repeats, cpus=spec.resources.cpu,
            gpus=spec.resources.gpu, rung_metrics=tuple(plan.rung_metrics),
            rung_steps=tuple(scheduler.milestones) if isinstance(scheduler, RungScheduler) else (),
            trial_timeout=float(spec.budget.trial_timeout) if spec.budget.trial_timeout else None,
            deadline=deadline,
            sys_path=tuple(user_paths(spec)),
            compressors=tuple((record.name, record.factory, params) for record, params in plan.compressors),
            predictions=wants_ensemble(plan)[0],
            export_top=(plan.objectives[0].metric, plan.objectives[0].mode, plan.export_top)
            if plan.export_top else None,
        )
        counts = Counts(total=spec.budget.trials, done=len(done),
                        failed=sum(t.status == "failed" for t in done),
                        stopped=sum(t.status == "stopped" for t in done), paused=len(paused))
        callback = Recorder(
            run.store, run.run_id, run_dir=run.dir, metric_keys=set(plan.metrics), primary=plan.objectives[0],
            max_budget=plan.max_budget, notify=lambda row: pm.notify("automl_trial_result", run=run, trial=row),
            counts=counts, adapter=adapter, on_progress=on_progress, rungs=rungs, export_top=plan.export_top,
        )
        for row in done:  # a resumed search's bar starts from the trials it already has
            value = row.metrics.get(plan.objectives[0].metric) if row.status == "completed" else None
            if isinstance(value, (int, float)):
                callback.note_completed(float(value))
        resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
        trainable = tune.with_resources(tune.with_parameters(run_trial, data=data, job=job), resources)
        # Each start of a run gets its own Tune experiment; the store, not Tune, links them.
        attempt = len(list(run.dir.glob("tune*")))
        tuner = tune.Tuner(
            trainable,
            tune_config=TuneConfig(
                search_alg=adapter,
                scheduler=scheduler,
                # Tune counts each re-issue of a promoted trial as a sample; the adapter ends the search.
                num_samples=to_run if rungs is None else (to_run + len(paused)) * (len(rungs.milestones) + 1),
                reuse_actors=True,
                time_budget_s=max(1.0, deadline - time.time()) if deadline is not None else None,
                max_concurrent_trials=concurrency,
            ),
            run_config=RunConfig(
                name="tune" if attempt == 0 else f"tune-{attempt}",
                storage_path=str(run.dir),
                verbose=0,
                callbacks=[callback],
                stop=TargetStopper(counts, plan.objectives[0], spec.budget.target) if spec.budget.target is not None
                else None,
                failure_config=FailureConfig(max_failures=spec.budget.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=1),
                log_to_file=True,
            ),
        )
        tuner.fit()
        adapter.flush()
    finally:
        if started:
            import ray

            ray.shutdown()
    # Trials Tune ended without a completion event (wall-time budget or target reached) are stopped.
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
    return {"first_trial_s": (callback.first_start - t0) if callback.first_start else None,
            "exhausted": adapter.exhausted, "resumed": bool(history), "target_reached_by": reached}


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
    target = plan.spec.budget.target
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
    except Exception as exc:  # a trainer's error while scoring or building: the search still finishes
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
        log.warning("automl: no ensemble was built: %s", reason)
        summary["ensemble"] = {"built": False, "reason": reason}
        return
    if built.get("built") and not built.get("kept"):
        row = run.store.trial(run.run_id, built["number"])
        if row:
            pm.notify("automl_trial_result", run=run, trial=row)


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
    stopped_too = not plan.spec.front.include_stopped
    front = compute_front(trials, plan.objectives, plan.constraints, full_budget_only=stopped_too)
    by_number = {t.number: t for t in trials}
    drift = None
    if plan.measured and front.members:
        from automl.export import trial_trainer

        ref_before = reference_latency()
        for number in _latency_candidates(plan, trials, front.numbers, stopped_too):
            t = by_number[number]
            if not t.artifact:
                continue
            trainer = trial_trainer(run, t, plan, data)
            predict = trainer.load_predictor(Path(t.artifact))
            latency = measure_latency(predict, trainer.sample_input(plan.spec.latency.batch_size),
                                      warmup=max(20, plan.spec.latency.warmup), repeats=plan.spec.latency.final_repeats)
            metrics = dict(t.metrics)
            if "latency_ms_trial" not in metrics:  # a resumed final stage keeps the trial's own figure
                metrics["latency_ms_trial"] = metrics.get("latency_ms")
            metrics["latency_ms"] = latency
            how = {**t.measured_as, "latency_ms": (
                f"{Path(t['artifact']).suffix.lstrip('.')}, batch {plan.spec.latency.batch_size}, 1 thread, median of "
                f"{plan.spec.latency.final_repeats} calls after {max(20, plan.spec.latency.warmup)}, serially at the end")}
            run.store.save_trial(run.run_id, number, metrics=metrics, measured_as=how)
            by_number[number] = t.replace(metrics=metrics, measured_as=how)
        ref_after = reference_latency()
        drift = {"reference_ms_before": ref_before, "reference_ms_after": ref_after,
                 "drift": ref_after / ref_before - 1.0 if ref_before > 0 else None}
        # Re-measured members may now dominate each other differently: rebuild the front.
        front = compute_front(list(by_number.values()), plan.objectives, plan.constraints,
                              full_budget_only=stopped_too)
    models = run.dir / "models"
    members = []
    for number in front.numbers:
        t = by_number[number]
        model = None
        if t.artifact and Path(t.artifact).exists():
            models.mkdir(exist_ok=True)
            src = Path(t.artifact)
            dest = models / f"trial-{number:05d}-{src.name}"
            shutil.copy2(src, dest) if src.is_file() else shutil.copytree(src, dest, dirs_exist_ok=True)
            model = str(dest.relative_to(run.dir))
        members.append(FrontMember(number, t.config, t.metrics, model))
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    front = front.replace(members=tuple(members), latency_drift=drift, trials=counts)
    (run.dir / FRONT_FILE).write_text(json.dumps(front.to_dict(), indent=2, default=str))
    summary.update({"trials": counts, "front_size": len(members), "hypervolume": front.hypervolume})
    status = "completed" if counts.get("completed", 0) else "failed"
    run.store.finish_run(run.run_id, status, summary)
