"""The dashboard with a 10,000-trial store: page load time and the server's memory (issue 19).

    .venv/bin/python -m benchmarks.dashboard_load OUT [--trials 10000] [--steps 3]

Fills ``OUT/run`` through the store's own API (``Store.create_run``, ``save_trial``, ``add_step``: what
the driver calls), starts ``automl dashboard OUT/run`` as its own process, and measures:

- each JSON endpoint's time and size, cold (the run read and its figures drawn) and warm (the page's
  two-second poll, answered from the fingerprint);
- the page in headless Chromium (:class:`benchmarks.browser.Page`, driven over the DevTools pipe):
  from navigation until the trials table and every figure are drawn;
- the server's resident memory (``VmRSS``) after the page loaded, and its peak (``VmHWM``).

Prints one JSON object; nothing is asserted (times depend on the machine's load: say it with the figure).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SPEC = """name: load-10k
trainer: {name: function, params: {function: "m:f", steps: 3, metrics: {loss: min, cost: min}}}
scheduler: {name: asha, options: {grace_period: 1, reduction_factor: 3}}
space:
  lr: {type: float, low: 0.0001, high: 1, log: true}
  depth: {type: int, low: 1, high: 12}
  kind: {type: choice, values: [a, b, c]}
objectives: [{metric: loss, mode: min}, {metric: cost, mode: min}]
budget: {trials: %d}
"""


def fill(run_dir: Path, trials: int, steps: int, seed: int = 0) -> float:
    """A run of ``trials`` trials (most completed, some stopped at a rung, a few failed); returns seconds taken."""
    from automl.plugin import get_plugin_manager

    t0 = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{run_dir / 'automl.db'}"
    store = get_plugin_manager().open_store(url)  # the built-in SQL store
    run_id = store.create_run(
        name="load-10k", directory=str(run_dir), spec_text=SPEC % trials, spec_hash="load", seed=seed,
        objectives={"objectives": [{"metric": "loss", "mode": "min", "reference": None},
                                   {"metric": "cost", "mode": "min", "reference": None}], "constraints": []},
        versions={"automl": "bench"})
    rng = random.Random(seed)
    for n in range(trials):
        lr, depth = 10 ** rng.uniform(-4, 0), rng.randint(1, 12)
        config = {"lr": lr, "depth": depth, "kind": rng.choice("abc")}
        store.save_trial(run_id, n, status="running", config=config, max_budget=steps, started_at=time.time())
        if n % 50 == 7:
            store.save_trial(run_id, n, status="failed", error="RuntimeError: out of memory", finished_at=time.time())
            continue
        last = steps if n % 3 else 1  # a third stopped at the first rung
        for step in range(1, last + 1):
            loss = (math.log10(lr) + 2) ** 2 / 4 + 0.3 / step + 0.05 * rng.random()
            store.add_step(run_id, n, step, {"loss": loss, "cost": depth / 12 + 0.1 * rng.random()})
        status = "completed" if last == steps else "stopped"
        store.save_trial(run_id, n, status=status, finished_at=time.time(), duration=rng.uniform(1, 5))
    store.close()
    (run_dir / "run.json").write_text(json.dumps({"store": url, "run_id": run_id, "spec": None}))
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)  # kB -> MiB
    return fields


def timed_get(url: str) -> tuple[float, int, Any]:
    import httpx

    t0 = time.perf_counter()
    response = httpx.get(url, timeout=600)
    return round(time.perf_counter() - t0, 3), len(response.content), response


def wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the dashboard exited with {proc.returncode}")
        try:
            httpx.get(base + "static/dashboard.css", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the dashboard never answered")


def page_load(base: str) -> float:
    from benchmarks.browser import Page

    with tempfile.TemporaryDirectory() as tmp:
        page = Page(Path(tmp))
        try:
            t0 = time.perf_counter()
            page.open(base + "run/0")
            page.wait_for("document.querySelectorAll('#trials-body tr').length === 500 && "
                          "['plot-history', 'plot-pareto-0', 'plot-rungs', 'plot-parallel'].every(id => "
                          "document.querySelector('#' + id + '.js-plotly-plot .main-svg'))", timeout=900)
            elapsed = time.perf_counter() - t0
            assert page.errors() == [], page.errors()
        finally:
            page.close()
    return round(elapsed, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    run_dir = args.out / "run"
    result: dict[str, Any] = {"trials": args.trials, "steps": args.steps, "load_before": os.getloadavg()}
    if not (run_dir / "run.json").is_file():
        result["fill_s"] = round(fill(run_dir, args.trials, args.steps), 1)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([sys.executable, "-m", "automl.cli", "dashboard", str(run_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_up(base, proc)
        result["server_idle_mib"] = memory(proc.pid)
        for name, path in [("runs_cold", "api/runs"), ("detail_cold", "api/runs/0"), ("detail_warm", "api/runs/0"),
                           ("importance_cold", "api/runs/0/importance")]:
            seconds, size, response = timed_get(base + path)
            result[name] = {"s": seconds, "bytes": size, "status": response.status_code}
        stamp = httpx_json(base + "api/runs/0")["stamp"]
        seconds, size, _ = timed_get(base + "api/runs/0?since=" + urllib.parse.quote(stamp))
        result["poll_unchanged"] = {"s": seconds, "bytes": size}
        result["page_load_s"] = page_load(base)
        result["server_mib"] = memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))


def httpx_json(url: str) -> Any:
    return timed_get(url)[2].json()


if __name__ == "__main__":
    main()
