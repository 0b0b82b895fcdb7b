"""DistributedDataParallel through Ray Train, driven as a trial drives it (without Tune)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from automl.plugin import TrialError
from conftest import MakeTrainer

pytestmark = pytest.mark.slow

#: 2 workers of half a CPU (one torch thread each) and the trial's own half: fits 2 cores.
DDP = {"workers": 2, "cpus_per_worker": 0.5}


@pytest.mark.usefixtures("ray_session")
def test_two_workers_reach_the_accuracy_of_one_process_on_the_same_data(make_trainer: MakeTrainer) -> None:
    config = {"lr": 0.005, "batch_size": 64}
    params = {"epochs": 6, "units": 32}
    single = make_trainer(config, params, cpus=0.5)
    single_accuracy = [single.evaluate("valid")["accuracy"] for _ in single.run_steps(1)]

    ddp = make_trainer(config, {**params, "distributed": DDP}, cpus=0.5)
    ddp_accuracy = [ddp.evaluate("valid")["accuracy"] for _ in ddp.run_steps(1)]

    assert [h["epoch"] for h in ddp.history_] == list(range(1, 7))
    assert all(h["workers"] == 2 for h in ddp.history_)  # two processes trained each epoch
    # The global batch is split over the workers and DDP averages their gradients, so each
    # step makes (up to the sampler's padding of one row) the single process's update.
    assert ddp_accuracy[-1] == pytest.approx(single_accuracy[-1], abs=0.02)
    assert ddp.history_[-1]["train_loss"] == pytest.approx(single.history_[-1]["train_loss"], rel=0.05)
    assert not (ddp.context.trial_dir / "ray_train").exists()  # Ray Train's storage is cleaned up


@pytest.mark.usefixtures("ray_session")
def test_workers_resume_from_a_checkpoint_and_stop_when_the_trial_stops(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    import ray

    # 10,000 epochs: only the stop signal can end the workers before the deadline below.
    params = {"epochs": 10_000, "units": 16}
    first = make_trainer({}, params, cpus=0.5)
    next(first.run_steps(1))
    first.save_checkpoint(tmp_path / "checkpoint")  # one process and DDP share the checkpoint layout

    trainer = make_trainer({}, {**params, "distributed": DDP}, cpus=0.5)
    start = trainer.load_checkpoint(tmp_path / "checkpoint") + 1
    steps = trainer.run_steps(start)
    assert next(steps) == 2  # the workers continued after epoch 1
    assert trainer.history_[-1]["workers"] == 2
    assert ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]  # workers hold CPUs
    steps.close()  # what happens when the scheduler stops the trial after this epoch
    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]
    assert not (trainer.context.trial_dir / "ray_train").exists()


@pytest.mark.usefixtures("ray_session")
def test_a_trial_whose_workers_never_find_room_fails_with_the_fix(make_trainer: MakeTrainer) -> None:
    import ray

    @ray.remote(num_cpus=1.5)
    class Holder:  # another trial's reservation, as Tune would hold it
        def ready(self) -> bool:
            return True

    holder = Holder.remote()
    ray.get(holder.ready.remote())
    try:
        trainer = make_trainer({}, {"distributed": {**DDP, "start_timeout": 2}}, cpus=0.0)
        with pytest.raises(TrialError, match=r"found no room on the cluster for 2 s.*resources.max_concurrent: 2"):
            next(trainer.run_steps(1))
    finally:
        ray.kill(holder)
