"""The search loop: plan -> Ray Tune trials -> store -> front -> final measurement -> export."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError
from automl.front import compute_front
from automl.measure import measure_latency, reference_latency
from automl.plan import Plan, build_plan
from automl.plugins import get_plugin_manager
from automl.run import FRONT_FILE, RUN_FILE, Run
from automl.spec import Spec, load_spec

__all__ = ["search", "default_run_dir", "local_cpus"]

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
        raise AutoMLError(f"cannot {'join the Ray cluster at ' + repr(address) if address else 'start Ray'}: {exc}") from exc
    return True


def default_run_dir(plan: Plan) -> Path:
    return Path("runs") / f"{plan.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _prepare_dir(out: Path) -> None:
    if (out / RUN_FILE).exists():
        raise AutoMLError(f"{str(out)!r} already holds a run: choose another --out directory")
    out.mkdir(parents=True, exist_ok=True)


def search(
    spec: str | Path | Spec,
    *,
    out: str | Path | None = None,
    trials: int | None = None,
    seed: int | None = None,
    address: str | None = None,
    disabled_plugins: Iterable[str] = (),
    on_progress: Callable[[Any], None] | None = None,
) -> Run:
    """Run a search and return its :class:`Run`.

    Args:
        spec: A spec file path or an already loaded :class:`Spec`.
        out: The run directory (default ``runs/NAME-TIMESTAMP``).
        trials: Overrides ``budget.trials``.
        seed: Overrides ``seed``.
        address: A Ray cluster to join; by default a local Ray is started.
        disabled_plugins: Plugin names not to load.
        on_progress: Called with the progress counts after each trial event.

    Raises:
        AutoMLError: For a bad spec, missing plugin, unreadable data or store.
    """
    t0 = time.time()
    loaded = spec if isinstance(spec, Spec) else load_spec(spec)
    if trials is not None or seed is not None:
        source, lines, text = loaded._source, loaded._lines, loaded._text
        update: dict[str, Any] = {}
        if trials is not None:
            if trials < 1:
                raise AutoMLError(f"--trials must be positive, got {trials}")
            update["budget"] = loaded.budget.model_copy(update={"trials": trials})
        if seed is not None:
            update["seed"] = seed
        loaded = loaded.model_copy(update=update)
        loaded._source, loaded._lines, loaded._text = source, lines, text
    pm = get_plugin_manager(disabled_plugins)
    plan = build_plan(loaded, pm)
    run_dir = Path(out) if out else default_run_dir(plan)
    _prepare_dir(run_dir)
    run_dir = run_dir.resolve()
    data = plan.load_data()

    url = loaded.store or f"sqlite:///{run_dir / 'automl.db'}"
    store = pm.open_store(url)
    objectives = {
        "objectives": [asdict(o) for o in plan.objectives],
        "constraints": [asdict(c) for c in plan.constraints],
    }
    run_id = store.create_run(
        name=plan.name, directory=str(run_dir), spec_text=loaded.text, spec_hash=plan.spec_hash,
        seed=loaded.seed, objectives=objectives, versions=plan.versions,
    )
    (run_dir / RUN_FILE).write_text(json.dumps({"store": url, "run_id": run_id, "spec": loaded.source}, indent=2))
    run = Run(run_dir, store, run_id)
    try:
        summary = _tune(plan, run, data, address, pm, on_progress, t0)
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    summary["wall_s"] = time.time() - t0
    _finish(plan, run, data, summary)
    pm.notify("automl_search_end", run=run)
    return run


def _tune(plan: Plan, run: Run, data: Any, address: str | None, pm: Any, on_progress: Any, t0: float) -> dict[str, Any]:
    started = _start_ray(address)
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig

    from automl.tune_adapter import Job, SearcherAdapter, StoreCallback, run_trial

    spec = plan.spec
    probe = plan.trainer.factory  # budget steps are known only to an instance; ask one lazily in the worker
    job = Job(
        trainer=probe, params=dict(spec.trainer.params), task=spec.task or "classification", seed=spec.seed,
        run_dir=str(run.dir), measured=plan.measured, batch_size=spec.latency.batch_size,
        warmup=spec.latency.warmup, repeats=spec.latency.repeats, cpus=spec.resources.cpu, gpus=spec.resources.gpu,
    )
    max_budget = _max_budget(plan, data, run.dir)
    adapter = SearcherAdapter(plan.make_searcher(), max_budget=max_budget, limit=spec.budget.trials)
    callback = StoreCallback(
        run.store, run.run_id, metric_keys=set(plan.metrics), primary=plan.objectives[0], max_budget=max_budget,
        notify=lambda row: pm.notify("automl_trial_result", run=run, trial=row),
        total=spec.budget.trials, on_progress=on_progress,
    )
    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    trainable = tune.with_resources(tune.with_parameters(run_trial, data=data, job=job), resources)
    tuner = tune.Tuner(
        trainable,
        tune_config=TuneConfig(
            search_alg=adapter,
            num_samples=spec.budget.trials,
            reuse_actors=True,
            time_budget_s=spec.budget.wall_time,
            max_concurrent_trials=spec.resources.max_concurrent,
        ),
        run_config=RunConfig(
            name="tune",
            storage_path=str(run.dir),
            verbose=0,
            callbacks=[callback],
            failure_config=FailureConfig(max_failures=0),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            log_to_file=True,
        ),
    )
    try:
        tuner.fit()
    finally:
        if started:
            import ray

            ray.shutdown()
    # Trials Tune ended without a completion event (wall-time budget reached) are stopped.
    for row in run.trials():
        if row["status"] in ("running", "pending"):
            run.store.save_trial(run.run_id, row["number"], status="stopped", finished_at=time.time(),
                                 error="stopped when the wall-time budget ran out")
    return {"first_trial_s": (callback.first_start - t0) if callback.first_start else None, "exhausted": adapter.exhausted}


def _max_budget(plan: Plan, data: Any, run_dir: Path) -> int:
    """Budget steps of a full trial, asked of a trainer built with an empty config."""
    from automl.interfaces import TrialContext

    try:
        probe = plan.trainer.factory({}, plan.spec.trainer.params, TrialContext(
            plan.spec.task or "classification", plan.spec.seed, data, run_dir))
        return int(probe.budget_steps)
    except Exception:  # a trainer may need its config to know; then one step is assumed
        return 1


def _finish(plan: Plan, run: Run, data: Any, summary: dict[str, Any]) -> None:
    """Front, final serial measurement of its members, models copied, front.json written."""
    trials = run.trials()
    front = compute_front(trials, plan.objectives, plan.constraints)
    by_number = {t["number"]: t for t in trials}
    drift = None
    if plan.measured and front["members"]:
        from automl.interfaces import TrialContext

        ref_before = reference_latency()
        for number in front["members"]:
            t = by_number[number]
            if not t.get("artifact"):
                continue
            trainer = plan.trainer.factory(t["config"], plan.spec.trainer.params, TrialContext(
                plan.spec.task or "classification", plan.spec.seed + number, data, run.dir))
            predict = trainer.load_predictor(Path(t["artifact"]))
            latency = measure_latency(predict, trainer.sample_input(plan.spec.latency.batch_size),
                                      warmup=max(20, plan.spec.latency.warmup), repeats=plan.spec.latency.final_repeats)
            metrics = dict(t["metrics"])
            metrics["latency_ms_trial"] = metrics.get("latency_ms")
            metrics["latency_ms"] = latency
            run.store.save_trial(run.run_id, number, metrics=metrics)
            t["metrics"] = metrics
        ref_after = reference_latency()
        drift = {"reference_ms_before": ref_before, "reference_ms_after": ref_after,
                 "drift": ref_after / ref_before - 1.0 if ref_before > 0 else None}
        # Re-measured members may now dominate each other differently: rebuild the front.
        front = compute_front(list(by_number.values()), plan.objectives, plan.constraints)
    models = run.dir / "models"
    members = []
    for number in front["members"]:
        t = by_number[number]
        model = None
        if t.get("artifact") and Path(t["artifact"]).exists():
            models.mkdir(exist_ok=True)
            src = Path(t["artifact"])
            dest = models / f"trial-{number:05d}-{src.name}"
            shutil.copy2(src, dest) if src.is_file() else shutil.copytree(src, dest, dirs_exist_ok=True)
            model = str(dest.relative_to(run.dir))
        members.append({"number": number, "config": t["config"], "metrics": t["metrics"], "model": model})
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    doc = {
        "objectives": [asdict(o) for o in plan.objectives],
        "constraints": [str(c) for c in plan.constraints],
        "reference": front["reference"],
        "hypervolume": front["hypervolume"],
        "candidates": front["candidates"],
        "feasible": front["feasible"],
        "members": members,
        "latency_drift": drift,
        "trials": counts,
    }
    (run.dir / FRONT_FILE).write_text(json.dumps(doc, indent=2, default=str))
    summary.update({"trials": counts, "front_size": len(members), "hypervolume": front["hypervolume"]})
    status = "completed" if counts.get("completed", 0) else "failed"
    run.store.finish_run(run.run_id, status, summary)
