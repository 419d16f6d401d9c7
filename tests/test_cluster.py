from __future__ import annotations

import socket
import time

import dask.array as da
import pytest

from tilevision.cluster import client, current_client, dashboard_link


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
    with pytest.raises(ValueError, match="not a scheduler address"):
        client("slurmy")
    with pytest.raises(TypeError, match="client must be None"):
        client(42)
