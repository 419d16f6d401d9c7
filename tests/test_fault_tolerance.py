"""``tv.analyze_many`` when a worker dies mid-run: its process killed, or its SLURM job cancelled.

The tasks of an analysis are pure: a task computes the same result from the same inputs and
has no side effect (the results are written by the client, once computed). So when a worker
dies, Dask running its lost tasks again on another worker is safe, and the result must be
complete and identical to an undisturbed run — which these tests check, with the kill landing
while the images are being computed (each image takes about a second).
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

import tilevision as tv
from tilevision._image import make_image

RECIPE = tv.Recipe(["intensity"], tile=16)
#: per chunk read; the recipe's graph runs a chunk's read again in each task that uses it
#: (7 times for this recipe), so about 1 s per image on one thread
SLEEP_S = 0.04
N_IMAGES = 6


def read_chunk(seed: int, row: int, col: int) -> np.ndarray:
    """A 32² chunk of image ``seed``, read slowly (a slow disk): the kill lands mid-run."""
    time.sleep(SLEEP_S)
    return np.random.default_rng([seed, row, col]).random((32, 32))


def slow_image(seed: int) -> xr.DataArray:
    """A 64² image of four 32² chunks."""
    blocks = [
        [
            da.from_delayed(
                dask.delayed(read_chunk, pure=True)(seed, row, col), (32, 32), np.float64
            )
            for col in range(2)
        ]
        for row in range(2)
    ]
    return make_image(da.block(blocks), ("y", "x")).rename(f"im{seed}")


class Progress(SchedulerPlugin):
    """What the scheduler saw: tasks finished per worker, workers removed, tasks lost."""

    def __init__(self) -> None:
        self.finished: Counter[str] = Counter()
        self.removed: list[str] = []
        self.lost = 0  # finished or running tasks that went back to waiting

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish == "memory":
            self.finished[kwargs.get("worker")] += 1
        elif start in {"memory", "processing"} and finish in {"released", "waiting"}:
            self.lost += "worker-cleanup" in str(kwargs.get("stimulus_id"))

    def remove_worker(self, scheduler, worker, **kwargs):
        self.removed.append(worker)


@pytest.fixture(scope="module")
def images() -> Iterator[list[xr.DataArray]]:
    """The images; this module's functions travel to worker processes by value."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        yield [slow_image(seed) for seed in range(N_IMAGES)]
    finally:
        cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(scope="module")
def expected(images) -> pd.DataFrame:
    """The undisturbed run, in this process (threads: the chunks sleep in parallel)."""
    with dask.config.set(scheduler="threads", num_workers=2 * N_IMAGES):
        return tv.analyze_many(images, recipe=RECIPE, client=False, verbose=False)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def run_and_kill(
    client: Client, images, kill: Callable[[str], None]
) -> tuple[pd.DataFrame, Progress, str]:
    """``analyze_many`` on ``client``; ``kill(worker)`` once that worker finished tasks."""
    client.run(importlib.import_module, "tilevision.features")  # the workers are warm
    progress = Progress()
    client.cluster.scheduler.add_plugin(progress, name="progress")
    victim = sorted(client.scheduler_info()["workers"])[0]
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(tv.analyze_many, images, recipe=RECIPE, client=client, verbose=False)
        wait_until(lambda: progress.finished[victim] >= 20 or run.done(), 60, "20 tasks")
        assert not run.done(), "the analysis ended before the worker was killed"
        kill(victim)
        table = run.result(timeout=120)
    return table, progress, victim


def test_worker_process_killed_mid_run(images, expected):
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)

        def kill(worker: str) -> None:
            os.kill(pids[worker], signal.SIGKILL)

        table, progress, victim = run_and_kill(client, images, kill)
        assert progress.removed[:1] == [victim]  # it died mid-run ...
        assert progress.lost > 0  # ... taking finished or running tasks with it
        client.wait_for_workers(2, timeout=30)  # its nanny started a new one
        assert pids[victim] not in client.run(os.getpid).values()
    pd.testing.assert_frame_equal(table, expected, check_exact=True)


# ---------------------------------------------------------------- SLURM


def slurm_answers() -> str | None:
    """Why SLURM cannot run the test, or ``None`` when it can."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "SLURM is not installed (no sbatch/sinfo): run ci/slurm/start.sh as root"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo does not answer ({exc}): start SLURM with ci/slurm/start.sh"
    states = set(out.stdout.split())
    if out.returncode != 0 or not states & {"idle", "mixed"}:
        return f"no idle SLURM node ({out.stderr.strip() or states}): run ci/slurm/start.sh"
    return None


def squeue() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=10)
    return set(out.stdout.split())


@pytest.mark.slurm
def test_slurm_job_cancelled_mid_run(images, expected, tmp_path):
    pytest.importorskip(
        "dask_jobqueue", reason="needs dask-jobqueue: pip install tilevision[cluster]"
    )
    if (reason := slurm_answers()) is not None:
        pytest.skip(reason)
    client = tv.cluster.client(
        "slurm", jobs=2, cores=1, memory="1GiB", processes=1, interface="lo",
        walltime="00:05:00", log_directory=str(tmp_path),
        scheduler_options={"dashboard_address": ":0"},
    )  # fmt: skip
    cluster = client.cluster
    try:
        client.wait_for_workers(2, timeout=60)
        # a lambda travels by value and reads the worker's environment
        jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        assert None not in jobs.values()
        assert len(set(jobs.values())) == 2

        def cancel(worker: str) -> None:
            subprocess.run(["scancel", jobs[worker]], check=True, timeout=10)

        table, progress, victim = run_and_kill(client, images, cancel)
        assert progress.removed[:1] == [victim]
        assert progress.lost > 0
        assert jobs[victim] not in squeue()
        assert list(client.run(os.getpid)) == [w for w in jobs if w != victim]
    finally:
        client.close()
        cluster.close()
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    wait_until(lambda: not set(jobs.values()) & squeue(), 20, "the jobs leaving the queue")
