"""Ray clusters, each joined by a subprocess driver: ``--address`` joins a cluster started with ``ray start`` (token
authentication) and refuses one it cannot reach. More than one Ray node (issue 17): a search joins a real multi-node
Ray (``ray.cluster_utils.Cluster``: a head without CPUs and two worker nodes of one CPU each, on this machine) with
``--address``; trials run on both nodes and each records its node; a worker node removed while one of its trials runs loses no completed trial, the trial it ran
is retried on the other node, and the search finishes its budget and its front.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl.recorder import death_reason
from automl.run import Run

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name: cluster
trainer:
  name: function
  params: {{function: "tests.fixtures.cluster_objectives:node_bound", metrics: {{loss: min, cost: min}}}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
  gate: {{type: choice, values: ["{gate}"]}}
objectives:
  - {{metric: loss, mode: min}}
  - {{metric: cost, mode: min}}
budget: {{trials: 6, max_failures: 2}}
seed: 5
"""


#: Three quick trials, for a cluster of one node started with `ray start`.
LOOPBACK_SPEC = """
trainer:
  name: function
  params: {function: "tests.fixtures.objectives:fidelity", metrics: {loss: min, cost: min}, steps: 1}
space:
  x: {type: float, low: 0, high: 1}
objectives:
  - {metric: loss, mode: min}
budget: {trials: 3}
seed: 1
"""


def start_cluster(**head: Any) -> Any:
    """A ``ray.cluster_utils.Cluster`` with its head started. Ray gives a node 30 s to register (hard-coded in
    ``ray._private.node``); on this shared 2-core machine under a load of 15-20 that was not always enough, so the
    start is tried up to three times (a start-up that fails says so, it does not pass a test)."""
    from ray.cluster_utils import Cluster

    for attempt in range(3):
        try:
            return Cluster(initialize_head=True, head_node_args=head)
        except Exception as exc:  # Ray raises a bare Exception: "The current node timed out during startup"
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_the_reason_of_a_trial_on_a_lost_node_names_the_node() -> None:
    # Ray's text (GCS) for an actor whose node died; the pid and ip lines come before it.
    text = ("Failure # 1 (occurred at 2026-12-05_14:50:01)\nray.exceptions.ActorDiedError: The actor died unexpectedly "
            "before finishing this task.\n\tclass_name: ImplicitFunc\n\tactor_id: 5f1c\n\tpid: 4242\n"
            "\tip: 127.0.0.1\nThe actor died because its node has died. Node Id: 0a1b2c3d4e5f\n"
            "\tthe actor's node was terminated expectedly: received SIGTERM\n")
    assert death_reason(text) == "the Ray node 0a1b2c3d4e5f running its worker (pid 4242) died"


@pytest.mark.slow
def test_a_search_on_two_nodes_survives_losing_one(
    write_spec: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    gate, out = tmp_path / "gate", tmp_path / "run"
    gate.mkdir()
    cluster = start_cluster(num_cpus=0)  # trials go to the worker nodes only
    try:
        survivor = cluster.add_node(num_cpus=1)
        victim = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        (gate / "victim").write_text(victim.node_id)
        spec = write_spec(SPEC.format(gate=gate))
        driver = subprocess.Popen(
            [sys.executable, "-m", "automl.cli", "search", str(spec), "--out", str(out), "--address", cluster.address],
            cwd=ROOT, env={**os.environ, "AUTOML_NUM_CPUS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        deadline = time.monotonic() + 400
        while not (gate / "blocked").exists() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (gate / "blocked").exists(), f"the victim node never took a second trial: {driver.poll()}"
        completed_before = [t.number for t in Run.open(out).trials() if t.status == "completed"]
        cluster.remove_node(victim)
        _, err = driver.communicate(timeout=600)
        assert driver.returncode == 0, err
    finally:
        cluster.shutdown()
    trials = Run.open(out).trials()
    assert [t.number for t in trials if t.number < 6] == list(range(6))
    searched = [t for t in trials if t.number < 6]
    assert all(t.status == "completed" for t in searched), [(t.number, t.status, t.error) for t in searched]
    assert {t.number for t in searched} >= set(completed_before), "a trial completed before the loss is gone"
    on_victim = [t.number for t in searched if t.node == victim.node_id]
    assert len(on_victim) == 1, f"trials recorded on the victim node: {on_victim}"
    assert {t.node for t in searched} == {survivor.node_id, victim.node_id}, [t.node for t in searched]
    retried = [t for t in searched if (t.attempts or 1) > 1]
    assert len(retried) == 1 and retried[0].node == survivor.node_id, [(t.number, t.attempts, t.node) for t in searched]
    warned = [line for line in err.splitlines() if f"trial {retried[0].number} failed, retrying" in line]
    assert warned and victim.node_id[:8] in warned[0], err[-2000:]
    front = json.loads((out / "front.json").read_text())
    assert front["members"], "the run ended without its front"
    print(f"trials per node: survivor {sum(t.node == survivor.node_id for t in searched)}, victim {len(on_victim)};"
          f" retried: trial {retried[0].number} ({warned[0].strip()})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_address_joins_a_cluster_on_loopback_and_refuses_an_unreachable_one(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_spec(LOOPBACK_SPEC)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    bad = subprocess.run([sys.executable, "-m", "automl.cli", "search", str(path), "--address",
                          f"127.0.0.1:{_free_port()}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot reach the Ray cluster" in bad.stderr
    port = _free_port()
    ray_bin = Path(sys.executable).parent / "ray"
    # Token authentication on both sides, as a cluster started by `ray start` has it by default;
    # a short temp dir because Ray's socket paths must stay under 108 characters.
    env["RAY_AUTH_MODE"] = "token"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        ok = subprocess.run([sys.executable, "-m", "automl.cli", "search", str(path), "--out", str(tmp_path / "r"),
                             "--address", f"127.0.0.1:{port}"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert [t.status for t in Run.open(tmp_path / "r").trials()] == ["completed"] * 3
    finally:
        # SIGKILL to the head's whole process group: `ray start --block` takes about 30 s to stop on SIGTERM, and
        # nothing of this throwaway cluster needs a graceful end (its processes are all in the group).
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
