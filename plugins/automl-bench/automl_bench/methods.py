"""The methods a suite compares: our searchers (``automl:NAME``) and the peers used directly.

Every method runs the same protocol: ``iterations`` rounds of ``batch`` suggestions; a
round's configs are all suggested, then evaluated in order, then told back. Methods run
in-process (no Ray), so their overhead is the searcher's own cost, except the
``raytune:*`` peers, which are run the way a Ray Tune user runs them (``Tuner.fit``) and so
include Tune's per-trial cost.

Overhead per suggestion = (wall time of the run - evaluation time / parallel workers) /
suggestions; for the in-process methods that is the time spent suggesting and observing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from automl.plugin import Float, Int, PluginError, SearchSpace, TrialOutcome, get_plugin_manager
from automl_bench.base import BenchmarkError, Method, Problem, Trace, check_options, package_version
from automl_bench.engine_methods import make_engine_method
from automl_bench.local_ray import ensure_ray

__all__ = ["Method", "Trace", "make_method", "method_names", "peer_names"]


class _Evaluator:
    """Evaluates configs, timing them and recording the losses; a failure is data, not a crash."""

    def __init__(self, problem: Problem, trace: Trace) -> None:
        self.problem = problem
        self.trace = trace

    def __call__(self, config: Mapping[str, Any]) -> list[float] | None:
        t0 = time.perf_counter()
        losses: list[float] | None
        try:
            losses = self.problem.evaluate(config)
            if not all(math.isfinite(v) for v in losses):
                raise ValueError(f"non-finite loss {losses}")
        except Exception as exc:  # any evaluation error counts as a failed trial
            losses = None
            if len(self.trace.errors) < 5:
                self.trace.errors.append(f"{type(exc).__name__}: {exc}"[:500])
        self.trace.eval_s += time.perf_counter() - t0
        self.trace.losses.append(losses)
        return losses


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block (None: unchanged).

    Optuna's GPSampler fits with torch; the automl-optuna GP searcher fits on one thread, so
    its direct peer does too and their overheads compare like with like.
    """
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _coerce(space: SearchSpace, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A library's sample as a config of ``space``: numpy scalars to Python, ints rounded, inactive dropped."""
    config: dict[str, Any] = {}
    for name in space.active(raw):
        p = space[name]
        value = raw[name]
        if isinstance(p, (Float, Int)):
            value = p.clip(float(value))
        elif hasattr(value, "item"):
            value = value.item()
        config[name] = value
    return config


# -- our searchers -----------------------------------------------------------------------------


class AutomlMethod(Method):
    """One of our searchers, built through the plugin manager exactly as the engine builds it."""

    conditional = True

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        self.searcher_name = name.removeprefix("automl:")
        self.pm = get_plugin_manager()
        try:
            self.spec = self.pm.searchers.get(self.searcher_name)
        except PluginError as exc:
            raise BenchmarkError(f"method {name!r}: {exc}") from exc
        valid = self.spec.option_names()
        unknown = sorted(set(self.options) - set(valid))
        if unknown:
            raise BenchmarkError(
                f"method {name!r} has no option {unknown[0]!r}; valid options: {', '.join(valid) or '(none)'}"
            )
        # A searcher that is not multi-objective optimises the primary objective; the
        # hypervolume is still taken over all its evaluations (as the engine's front is).
        self.multi_objective = True

    def check(self, problem: Problem) -> None:
        super().check(problem)
        if self.spec.check_space is not None:
            try:
                self.spec.check_space(problem.space)
            except ValueError as exc:
                raise BenchmarkError(f"method {self.name!r} cannot search task {problem.name!r}: {exc}") from exc

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        trace = trace if trace is not None else Trace()
        evaluate = _Evaluator(problem, trace)
        t0 = time.perf_counter()
        searcher = self.spec.factory(problem.space, list(problem.objectives), seed=seed, **self.options)
        number = 0
        for _ in range(iterations):
            pending: list[tuple[int, dict[str, Any]]] = []
            for _ in range(batch):
                config = searcher.suggest(number)
                if config is None:  # the searcher is exhausted (a finished grid)
                    break
                pending.append((number, dict(config)))
                number += 1
            if not pending:
                break
            trace.suggestions += len(pending)
            results = [evaluate(config) for _, config in pending]
            for (n, config), losses in zip(pending, results, strict=True):
                if losses is None:
                    outcome = TrialOutcome(n, config, "failed", {}, budget=0, max_budget=1)
                else:
                    values = {o.metric: v for o, v in zip(problem.objectives, losses, strict=True)}
                    outcome = TrialOutcome(n, config, "completed", values, budget=1, max_budget=1)
                searcher.observe(outcome)
        trace.wall_s = time.perf_counter() - t0
        return trace

    def version(self) -> str:
        return self.pm.version_of("searcher", self.searcher_name)


# -- peers used directly -------------------------------------------------------------------------


class RandomPeer(Method):
    """Plain random search: one numpy generator seeded by the seed, uniform draws from the space."""

    multi_objective = True
    conditional = True

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        trace = trace if trace is not None else Trace()
        evaluate = _Evaluator(problem, trace)
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        for _ in range(iterations * batch):
            config = problem.space.sample(rng)
            trace.suggestions += 1
            evaluate(config)
        trace.wall_s = time.perf_counter() - t0
        return trace

    def version(self) -> str:
        return package_version("numpy")


#: Optuna samplers by peer name: (class name in optuna.samplers, multi-objective?).
OPTUNA_SAMPLERS: dict[str, tuple[str, bool]] = {
    "tpe": ("TPESampler", True),
    "nsga2": ("NSGAIISampler", True),
    "nsga3": ("NSGAIIISampler", True),
    "gp": ("GPSampler", True),
    "cmaes": ("CmaEsSampler", False),
    "qmc": ("QMCSampler", True),
    "random": ("RandomSampler", True),
}


class OptunaPeer(Method):
    """An Optuna sampler through ``study.ask``/``study.tell`` (its batch interface)."""

    conditional = True

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        self.sampler_name, self.multi_objective = OPTUNA_SAMPLERS[name.split(":", 1)[1]]
        import optuna

        check_options(name, getattr(optuna.samplers, self.sampler_name), self.options, ("seed",))

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        trace = trace if trace is not None else Trace()
        evaluate = _Evaluator(problem, trace)
        t0 = time.perf_counter()
        sampler = getattr(optuna.samplers, self.sampler_name)(seed=seed, **self.options)
        study = optuna.create_study(directions=["minimize"] * problem.n_objectives, sampler=sampler)
        with _torch_threads(1 if self.sampler_name == "GPSampler" else None):
            self._loop(study, problem, iterations, batch, trace, evaluate)
        trace.wall_s = time.perf_counter() - t0
        return trace

    def _loop(self, study: Any, problem: Problem, iterations: int, batch: int, trace: Trace,
              evaluate: _Evaluator) -> None:
        from optuna.trial import TrialState

        for _ in range(iterations):
            # Ask and sample one trial after the other (as a user's loop does), so each sees
            # the earlier ones of its batch as running (what constant_liar acts on).
            trials, configs = [], []
            for _ in range(batch):
                trials.append(study.ask())
                configs.append(self._config(trials[-1], problem.space))
            trace.suggestions += len(trials)
            results = [evaluate(config) for config in configs]
            for trial, losses in zip(trials, results, strict=True):
                if losses is None:
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    study.tell(trial, losses if problem.n_objectives > 1 else losses[0])

    @staticmethod
    def _config(trial: Any, space: SearchSpace) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for name, p in space.items():
            if not p.is_active(config):
                continue
            if isinstance(p, Float):
                step = None if p.log else p.step
                config[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=step)
            elif isinstance(p, Int):
                config[name] = trial.suggest_int(name, p.low, p.high, step=1 if p.log else p.step, log=p.log)
            else:
                config[name] = trial.suggest_categorical(name, list(p.values))
        return config

    def version(self) -> str:
        return package_version("optuna")


#: hyperopt algorithms by peer name: module in hyperopt whose ``suggest`` is the algorithm.
HYPEROPT_ALGOS = {"tpe": "tpe", "atpe": "atpe", "anneal": "anneal", "rand": "rand"}


def hyperopt_space(space: SearchSpace) -> dict[str, Any]:
    """The space as hyperopt expressions (ints as quantised uniforms cast to int, as ``hp.uniformint``)."""
    from hyperopt import hp
    from hyperopt.pyll import scope

    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            if p.log:
                out[name] = hp.loguniform(name, math.log(p.low), math.log(p.high))
            elif p.step:
                out[name] = hp.quniform(name, p.low, p.high, p.step)
            else:
                out[name] = hp.uniform(name, p.low, p.high)
        elif isinstance(p, Int):
            if p.log:
                out[name] = scope.int(hp.qloguniform(name, math.log(p.low), math.log(p.high), 1))
            else:
                out[name] = hp.uniformint(name, p.low, p.high, q=p.step)
        else:
            out[name] = hp.choice(name, list(p.values))
    return out


class HyperoptPeer(Method):
    """A hyperopt algorithm through ``fmin``, ``max_queue_len = batch`` (its batch mode)."""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        self.algo = HYPEROPT_ALGOS[name.split(":", 1)[1]]
        import importlib

        try:
            suggest = importlib.import_module(f"hyperopt.{self.algo}").suggest
        except ImportError as exc:  # atpe needs lightgbm
            raise BenchmarkError(f"method {name!r} cannot load hyperopt.{self.algo}: {exc}") from exc
        check_options(name, suggest, self.options, ("new_ids", "domain", "trials", "seed"))

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        import functools
        import importlib

        from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin

        logging.getLogger("hyperopt").setLevel(logging.WARNING)
        trace = trace if trace is not None else Trace()
        evaluate = _Evaluator(problem, trace)
        suggest = importlib.import_module(f"hyperopt.{self.algo}").suggest
        if self.options:
            suggest = functools.partial(suggest, **self.options)

        def algo(new_ids: list[int], domain: Any, trials: Any, seed: int) -> Any:
            # anneal (and atpe) unpack exactly one id; fmin asks again until max_queue_len trials are
            # queued, each new one seeing the earlier ones as pending: tpe itself works that way.
            return suggest(new_ids[:1], domain, trials, seed)

        def objective(raw: dict[str, Any]) -> dict[str, Any]:
            trace.suggestions += 1
            losses = evaluate(_coerce(problem.space, raw))
            return {"status": STATUS_FAIL} if losses is None else {"status": STATUS_OK, "loss": losses[0]}

        t0 = time.perf_counter()
        fmin(objective, hyperopt_space(problem.space), algo=algo, max_evals=iterations * batch, trials=Trials(),
             rstate=np.random.default_rng(seed), max_queue_len=batch, show_progressbar=False, return_argmin=False)
        trace.wall_s = time.perf_counter() - t0
        return trace

    def version(self) -> str:
        return package_version("hyperopt")


#: nevergrad optimizers by peer name (any name of ``ng.optimizers.registry`` works too).
NEVERGRAD_ALGOS = {"ngopt": "NGOpt", "oneplusone": "OnePlusOne", "de": "TwoPointsDE", "pso": "PSO", "cma": "CMA"}


def nevergrad_parametrization(space: SearchSpace, seed: int) -> Any:
    """The space as a seeded ``ng.p.Dict``."""
    import nevergrad as ng

    params: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, (Float, Int)):
            param = ng.p.Log(lower=p.low, upper=p.high) if p.log else ng.p.Scalar(lower=p.low, upper=p.high)
            params[name] = param.set_integer_casting() if isinstance(p, Int) else param
        else:
            params[name] = ng.p.Choice(list(p.values))
    parametrization = ng.p.Dict(**params)
    parametrization.random_state = np.random.RandomState(seed)
    return parametrization


class NevergradPeer(Method):
    """A nevergrad optimizer through ``ask``/``tell`` with ``num_workers = batch``."""

    multi_objective = True

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        key = name.split(":", 1)[1]
        self.algo = NEVERGRAD_ALGOS.get(key, key)
        if self.options:
            # Registry entries are pre-configured: options would need a ConfiguredOptimizer of their own.
            raise BenchmarkError(f"method {name!r} takes no options (pick another nevergrad:<optimizer> instead)")

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        import nevergrad as ng

        trace = trace if trace is not None else Trace()
        evaluate = _Evaluator(problem, trace)
        t0 = time.perf_counter()
        parametrization = nevergrad_parametrization(problem.space, seed)
        optimizer = ng.optimizers.registry[self.algo](parametrization=parametrization, budget=iterations * batch,
                                                      num_workers=batch, **self.options)
        for _ in range(iterations):
            candidates = [optimizer.ask() for _ in range(batch)]
            trace.suggestions += len(candidates)
            results = [evaluate(_coerce(problem.space, c.value)) for c in candidates]
            for candidate, losses in zip(candidates, results, strict=True):
                # nevergrad has no "failed" state: a failed candidate is simply never told.
                if losses is not None:
                    optimizer.tell(candidate, losses if problem.n_objectives > 1 else losses[0])
        trace.wall_s = time.perf_counter() - t0
        return trace

    def version(self) -> str:
        return package_version("nevergrad")


# -- Ray Tune's own searchers ---------------------------------------------------------------------


def tune_space(space: SearchSpace) -> dict[str, Any]:
    """The space as Ray Tune sampling domains."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            if p.log:
                out[name] = tune.loguniform(p.low, p.high)
            elif p.step:
                out[name] = tune.quniform(p.low, p.high, p.step)
            else:
                out[name] = tune.uniform(p.low, p.high)
        elif isinstance(p, Int):
            if p.log:
                out[name] = tune.lograndint(p.low, p.high + 1)
            elif p.step != 1:
                out[name] = tune.qrandint(p.low, p.high, p.step)
            else:
                out[name] = tune.randint(p.low, p.high + 1)  # upper bound exclusive
        else:
            out[name] = tune.choice(list(p.values))
    return out


def _ray_trial(config: dict[str, Any], problem: Problem | None = None) -> None:
    """One Tune trial: evaluate the problem and report the loss and the evaluation time."""
    from ray import tune

    assert problem is not None  # bound by tune.with_parameters
    t0 = time.perf_counter()
    losses = problem.evaluate(_coerce(problem.space, config))
    if not all(math.isfinite(v) for v in losses):
        raise ValueError(f"non-finite loss {losses}")
    tune.report({"loss": losses[0], "eval_s": time.perf_counter() - t0})


class RayTunePeer(Method):
    """Ray Tune's OptunaSearch or HyperOptSearch driving ``Tuner.fit`` (batch = concurrency limit)."""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        self.library = name.split(":", 1)[1]
        target: type[Any]
        if self.library == "optuna":
            from ray.tune.search.optuna import OptunaSearch as target
        else:
            from ray.tune.search.hyperopt import HyperOptSearch as target
        check_options(name, target, self.options, ("sampler", "random_state_seed", "space", "metric", "mode"))

    def _searcher(self, seed: int) -> Any:
        if self.library == "optuna":
            import optuna
            from ray.tune.search.optuna import OptunaSearch

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed), **self.options)
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=seed, **self.options)

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        ensure_ray()
        import ray
        from ray import tune
        from ray.tune import Callback, FailureConfig, RunConfig, TuneConfig
        from ray.tune.search import ConcurrencyLimiter

        class Collect(Callback):
            """Records each trial's final result in the order trials end (the evaluation order)."""

            def __init__(self) -> None:
                self.results: list[dict[str, Any] | None] = []

            def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
                self.results.append(trial.last_result)

            def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
                self.results.append(None)

        collect = Collect()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        trace = trace if trace is not None else Trace()
        trace.workers = max(1, min(batch, cpus))
        with tempfile.TemporaryDirectory(prefix="hpo-ray-") as storage:
            t0 = time.perf_counter()
            tuner = tune.Tuner(
                tune.with_resources(tune.with_parameters(_ray_trial, problem=problem), {"cpu": 1}),
                param_space=tune_space(problem.space),
                tune_config=TuneConfig(
                    search_alg=ConcurrencyLimiter(self._searcher(seed), max_concurrent=batch),
                    metric="loss", mode="min", num_samples=iterations * batch, reuse_actors=True,
                ),
                run_config=RunConfig(name=f"hpo-{uuid.uuid4().hex[:8]}", storage_path=storage, verbose=0,
                                     callbacks=[collect], failure_config=FailureConfig(max_failures=0)),
            )
            tuner.fit()
            trace.wall_s = time.perf_counter() - t0
        trace.suggestions = len(collect.results)
        for result in collect.results:
            if result is None or "loss" not in result:
                trace.losses.append(None)
            else:
                trace.losses.append([float(result["loss"])])
                trace.eval_s += float(result.get("eval_s", 0.0))
        return trace

    def version(self) -> str:
        lib = "optuna" if self.library == "optuna" else "hyperopt"
        return f"{package_version('ray')}+{package_version(lib)}"


# -- registry --------------------------------------------------------------------------------------

PEERS: dict[str, Callable[[str, Mapping[str, Any] | None], Method]] = {
    "random": RandomPeer,
    **{f"optuna:{k}": OptunaPeer for k in OPTUNA_SAMPLERS},
    **{f"hyperopt:{k}": HyperoptPeer for k in HYPEROPT_ALGOS},
    **{f"nevergrad:{k}": NevergradPeer for k in NEVERGRAD_ALGOS},
    "raytune:optuna": RayTunePeer,
    "raytune:hyperopt": RayTunePeer,
}


def peer_names() -> list[str]:
    return sorted(PEERS)


def method_names() -> list[str]:
    """Every method name available now: the peers and ``automl:`` + each installed searcher."""
    return peer_names() + [f"automl:{n}" for n in get_plugin_manager().searchers.names()]


def make_method(name: str, options: Mapping[str, Any] | None = None) -> Method:
    """Build method ``name``.

    Raises:
        BenchmarkError: For an unknown method (naming the valid ones) or options it rejects.
    """
    if "+" in name and name.startswith(("automl:", "optuna:", "rungs:", "raytune:")):
        return make_engine_method(name, options)
    if name.startswith("automl:"):
        return AutomlMethod(name, options)
    if name in PEERS:
        return PEERS[name](name, options)
    if name.startswith("nevergrad:"):
        import nevergrad as ng

        if name.split(":", 1)[1] in ng.optimizers.registry:
            return NevergradPeer(name, options)
    import difflib

    names = method_names()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise BenchmarkError(f"unknown method {name!r}.{hint} Valid methods: {', '.join(names)} "
                         f"(and nevergrad:<any optimizer in nevergrad's registry>)")


def describe_methods(methods: Sequence[Method]) -> dict[str, str]:
    """``{method name: package==version}`` for the environment record."""
    return {m.name: m.version() for m in methods}
