from __future__ import annotations

import socket
import sys
import time

import dask
import dask.array as da
import pytest

from tilevision.cluster import client, current_client, dashboard_link, jobqueue_cluster


def test_local_cluster_computes_and_is_reused():
    c = client(n_workers=1, threads_per_worker=2)
    try:
        assert current_client() is c
        assert client() is c  # re-used, not a second cluster
        assert client(c) is c
        assert da.ones((10, 10), chunks=5).sum().compute() == 100
        assert dashboard_link(c).startswith("http")
        assert sum(w["nthreads"] for w in c.scheduler_info()["workers"].values()) == 2
    finally:
        cluster = c.cluster
        c.close()
        cluster.close()
    assert current_client() is None


def test_unanswered_address_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="no Dask scheduler answered"):
        client(f"tcp://127.0.0.1:{port}", timeout=2)
    assert time.perf_counter() - start < 30


def test_bad_specs():
    with pytest.raises(ValueError, match=r"neither a scheduler address .* nor a jobqueue profile"):
        client("slurmy")
    with pytest.raises(TypeError, match="client must be None"):
        client(42)


# --- dask-jobqueue profiles (no batch system needed: nothing is submitted) -----------------

jobqueue = pytest.importorskip("dask_jobqueue")


@pytest.mark.parametrize(
    ("profile", "cls", "directive"),
    [("slurm", jobqueue.SLURMCluster, "#SBATCH"), ("pbs", jobqueue.PBSCluster, "#PBS")],
)
def test_known_profiles_make_their_jobqueue_cluster(profile, cls, directive):
    cluster = jobqueue_cluster(profile, cores=2, memory="4GiB", walltime="01:15:00")
    try:
        assert type(cluster) is cls
        script = cluster.job_script()
        assert directive in script
        assert "01:15:00" in script
        assert "distributed.cli.dask_worker" in script
        assert len(cluster.workers) == 0  # nothing submitted until scaled
    finally:
        cluster.close()


def test_custom_profile_from_dask_config_fills_in_the_batch_system_defaults():
    section = {
        "cluster-type": "slurm",
        "cores": 4,
        "memory": "8GiB",
        "queue": "gpu",
        "scheduler-options": {"idle_timeout": "3h"},
    }
    with dask.config.set({"jobqueue.gpu-nodes": section}):
        cluster = jobqueue_cluster("gpu-nodes", walltime="00:05:00")
        try:
            script = cluster.job_script()
            assert cluster.scheduler_spec["options"]["idle_timeout"] == "3h"
        finally:
            cluster.close()
        assert dask.config.get("jobqueue.gpu-nodes.queue") == "gpu"  # user's value kept
    assert type(cluster) is jobqueue.SLURMCluster
    assert "#SBATCH -p gpu" in script
    assert "--cpus-per-task=4" in script
    assert "00:05:00" in script  # keyword arguments override the config


def test_custom_profile_named_after_its_batch_system():
    with dask.config.set({"jobqueue.pbs-long": {"cores": 1, "memory": "1GiB"}}):
        cluster = jobqueue_cluster("pbs-long")
        cluster.close()
    assert type(cluster) is jobqueue.PBSCluster


def test_profile_errors_name_the_fix(monkeypatch):
    with (
        dask.config.set({"jobqueue.mystery": {"cores": 1, "memory": "1GiB"}}),
        pytest.raises(ValueError, match="add 'cluster-type: slurm'"),
    ):
        client("mystery")
    with pytest.raises(ValueError, match="pass cores= and memory="):
        jobqueue_cluster("slurm")
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ImportError, match=r"pip install 'tilevision\[cluster\]'"):
        client("slurm", cores=1, memory="1GiB")


def test_profile_client_scales_and_closes_the_cluster_on_failure(monkeypatch):
    calls = []

    def fake_scale(self, n=None, jobs=0, memory=None, cores=None):
        calls.append(("scale", jobs))
        raise RuntimeError("sbatch: command not found")

    def fake_close(self, *args, **kwargs):
        calls.append(("close",))

    monkeypatch.setattr(jobqueue.SLURMCluster, "scale", fake_scale)
    monkeypatch.setattr(jobqueue.SLURMCluster, "close", fake_close)
    with pytest.raises(RuntimeError, match="sbatch"):
        client("slurm", jobs=3, cores=1, memory="1GiB")
    assert calls == [("scale", 3), ("close",)]
