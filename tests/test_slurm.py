"""dask-jobqueue and tilevision on a real single-node SLURM (start it with ci/slurm/start.sh).

Skipped where ``sbatch`` is missing or ``sinfo`` does not answer. Each test submits real batch
jobs (``sbatch``, or ``qsub`` through SLURM's PBS-style torque wrappers), checks that the worker
ran inside a SLURM job, and that closing the cluster cancels its jobs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import tilevision as tv

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        shutil.which("sbatch") is None,
        reason="SLURM is not installed (no sbatch): run ci/slurm/start.sh as root",
    ),
]

#: every worker job asks for this little, so that two fit on a 2-core node
JOB = {
    "cores": 1,
    "memory": "1GiB",
    "processes": 1,
    "interface": "lo",
    "walltime": "00:05:00",
    "scheduler_options": {"dashboard_address": ":0"},
}
REGISTER_S = 30  # a worker registers in a few seconds on an idle node
RECIPE = tv.Recipe(["intensity"], tile=32)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout


def queue() -> set[str]:
    """Ids of the jobs SLURM knows as pending, running or completing."""
    return set(_run("squeue", "-h", "-o", "%i").split())


def wait_gone(job_ids: set[str], timeout: float = 20) -> set[str]:
    """Wait until none of ``job_ids`` is in the queue; return those still there."""
    deadline = time.monotonic() + timeout
    while (left := job_ids & queue()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def job_ids(client) -> set[str]:
    """The SLURM job each worker of ``client`` runs in (``None`` outside one)."""
    # a lambda travels by value and reads the worker's environment (os.environ.get
    # would be pickled with the environment of this process)
    return set(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())


@pytest.fixture(scope="module")
def slurm() -> str:
    """The idle node's name; skips unless ``sinfo`` answers with a usable node."""
    pytest.importorskip(
        "dask_jobqueue", reason="needs dask-jobqueue: pip install tilevision[cluster]"
    )
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"sinfo does not answer ({exc}): start SLURM with ci/slurm/start.sh")
    if out.returncode != 0:
        error = (out.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"sinfo failed ({error}): start SLURM with ci/slurm/start.sh")
    nodes = dict(line.split() for line in out.stdout.splitlines())
    usable = [node for node, state in nodes.items() if state in {"idle", "mixed", "allocated"}]
    if not usable:
        pytest.skip(f"no usable SLURM node ({nodes}): start SLURM with ci/slurm/start.sh")
    return usable[0]


@pytest.fixture
def before(slurm) -> set[str]:
    """Jobs already queued (by someone else) before the test."""
    return queue()


def test_slurm_cluster_worker_computes_and_close_cancels_its_job(before, tmp_path):
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    cluster = SLURMCluster(log_directory=str(tmp_path), **JOB)
    try:
        assert "#SBATCH -t 00:05:00" in cluster.job_script()
        cluster.scale(jobs=1)
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=REGISTER_S)
            (job,) = job_ids(client)
            assert job in queue() - before
            x = np.arange(10_000.0)
            assert da.from_array(x, chunks=1000).sum().compute() == x.sum()
    finally:
        cluster.close()
    assert wait_gone({job}) == set()
    assert queue() <= before
    assert {p.name for p in tmp_path.iterdir()} >= {f"dask-worker-{job}.out"}


def test_pbs_cluster_through_the_torque_wrappers(before, tmp_path, monkeypatch):
    from dask_jobqueue import PBSCluster
    from distributed import Client

    if shutil.which("qsub") is None:
        pytest.skip("no qsub: install slurm-wlm-torque (ci/slurm/start.sh does)")
    # the wrapper's qsub passes -o/-e to sbatch itself (``<script>.o<job id>`` in the
    # current folder), overriding the job script's ``#PBS -o log_directory``
    monkeypatch.chdir(tmp_path)
    cluster = PBSCluster(log_directory=str(tmp_path), **JOB)
    try:
        script = cluster.job_script()
        assert "#PBS -l select=1:ncpus=1:mem=1024MB" in script
        cluster.scale(jobs=1)
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=REGISTER_S)
            (job,) = job_ids(client)
            assert job in queue() - before
            assert job in _run("qstat").split()
            # sbatch honoured the #PBS directives: job name, walltime and memory
            details = _run("scontrol", "show", "job", job)
            for setting in ("JobName=dask-worker", "TimeLimit=00:05:00", "MinMemoryNode=1G"):
                assert setting in details
            x = np.arange(10_000.0)
            assert da.from_array(x, chunks=1000).sum().compute() == x.sum()
    finally:
        cluster.close()  # qdel
    assert wait_gone({job}) == set()
    assert queue() <= before
    assert any(p.name.endswith(f".o{job}") for p in tmp_path.iterdir())


def test_analyze_on_slurm_equals_a_local_run(before, tmp_path):
    from distributed import get_task_stream

    ct = tv.datasets.load_ct_organs()[0]
    slide = tv.datasets.texture_slide((256, 256), region_size=64, chunks=128).rename("slide")
    local = tv.analyze(ct, recipe=RECIPE, client=False, verbose=False)
    local_many = tv.analyze_many(
        [ct.rename("ct"), slide], recipe=RECIPE, client=False, verbose=False
    )

    client = tv.cluster.client("slurm", log_directory=str(tmp_path), **JOB)
    try:
        client.wait_for_workers(1, timeout=REGISTER_S)
        (job,) = job_ids(client)
        assert job in queue() - before
        with get_task_stream(client) as stream:
            result = tv.analyze(ct, recipe=RECIPE, client=client, verbose=False)
            many = tv.analyze_many(
                [ct.rename("ct"), slide], recipe=RECIPE, client=client, verbose=False
            )
        (worker,) = client.scheduler_info()["workers"]
        assert stream.data
        assert {task["worker"] for task in stream.data} == {worker}
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    xr.testing.assert_allclose(result, local)
    assert result.attrs["recipe_hash"] == local.attrs["recipe_hash"]
    assert many.index.tolist() == ["ct", "slide"]
    np.testing.assert_allclose(many.to_numpy(float), local_many.to_numpy(float), rtol=1e-12)
    assert wait_gone({job}) == set()
    assert queue() <= before


def test_adaptive_jobs_come_with_the_load_and_go_when_idle(before, tmp_path):
    def slow(i):
        time.sleep(0.5)
        return os.environ.get("SLURM_JOB_ID")

    client = tv.cluster.client("slurm", adapt=(0, 2), log_directory=str(tmp_path), **JOB)
    try:
        assert queue() == before  # no load, no job
        futures = client.map(slow, range(16))  # 8 s of work: adapt asks for both jobs
        ran_in = set(client.gather(futures))
        assert len(ran_in) == 2
        assert None not in ran_in
        del futures  # nothing left to hold: the workers retire and their jobs end
        assert wait_gone(ran_in) == set()
        assert client.scheduler_info()["workers"] == {}
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    assert queue() <= before
