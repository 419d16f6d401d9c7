"""``analyze`` under bad conditions and re-runs: Ctrl-C, a scheduler that does not answer,
and re-running with the same inputs (counted in tasks the scheduler ran)."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback

import tilevision as tv
import tilevision._report_html
import tilevision.cluster
from tilevision._image import make_image
from tilevision.cli import main

from .conftest import checkpoints, no_leftovers

RECIPE = tv.Recipe(["intensity"], tile=8)
OTHER_RECIPE = tv.Recipe(["intensity"], tile=16)


def image_2d(seed: int = 0, name: str = "image"):
    data = np.random.default_rng(seed).random((32, 40))
    return make_image(data, ("y", "x"), spacing=(0.5, 0.5), units="millimeter").rename(name)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the SHA-256 of its bytes (and its mtime)."""
    return {
        str(p.relative_to(folder)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} "
        f"{p.stat().st_mtime_ns}"
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- Ctrl-C


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    """Standard output of ``process`` up to the first line starting with ``marker``."""
    data = b""
    deadline = time.monotonic() + timeout
    fd = process.stdout.fileno()
    while not any(line.startswith(marker.encode()) for line in data.split(b"\n")[:-1]):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            process.kill()
            out, err = process.communicate()
            pytest.fail(
                f"no line {marker!r} within {timeout} s (exit code {process.returncode});\n"
                f"stdout: {(data + out).decode(errors='replace')}\n"
                f"stderr: {err.decode(errors='replace')[-3000:]}"
            )
        data += chunk
    return data.decode(errors="replace")


def test_ctrl_c_in_the_cli_exits_130_and_leaves_nothing(tmp_path):
    """SIGINT while the cluster computes: exit code 130, 'interrupted', no output folder."""
    source = tmp_path / "big.npy"  # default recipe on 2048² pixels: several seconds
    np.save(source, np.random.default_rng(0).random((2048, 2048), dtype=np.float32))
    out = tmp_path / "result"
    env = dict(os.environ, TILEVISION_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "tilevision.cli", "analyze", str(source), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        printed = read_until(process, "Dask dashboard:", timeout=60)  # the compute starts
        time.sleep(0.5)
        assert process.poll() is None, "the analysis ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    stdout, stderr = printed + stdout.decode(errors="replace"), stderr.decode(errors="replace")
    assert process.returncode == 130, stderr[-3000:]
    lines = stderr.splitlines()
    assert "interrupted" in lines
    noise = [line for line in lines if "Traceback" in line or "distributed" in line]
    assert noise == [], stderr[-3000:]  # the cluster shutting down says nothing
    assert "results written" not in stdout
    assert not out.exists()
    # only the hidden checkpoint of the tile blocks committed so far (a re-run resumes)
    assert no_leftovers(tmp_path) == []
    # at most the checkpoint of what was committed (the global values, when the
    # interrupt came after their pass), which a re-run resumes from
    kept = checkpoints(tmp_path)
    assert len(kept) <= 1
    assert sorted(p.name for p in tmp_path.iterdir() if p not in kept) == ["big.npy", "cache"]


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture
def previous(tmp_path, threads):
    """A finished output folder of another recipe, and a snapshot of its files."""
    out = tmp_path / "result"
    tv.analyze(image_2d(), recipe=OTHER_RECIPE, client=False, output=out, verbose=False)
    return out, snapshot(out)


def interrupting_image(calls: list[int]):
    """An image whose second row of chunks raises KeyboardInterrupt when computed."""

    def read(block, block_info=None):
        calls.append(1)
        if block_info[0]["chunk-location"][0] == 1:
            raise KeyboardInterrupt
        return block

    data = da.from_array(np.random.default_rng(1).random((32, 40)), chunks=16)
    return make_image(data.map_blocks(read, dtype=data.dtype), ("y", "x")).rename("image")


def test_ctrl_c_while_computing_keeps_the_previous_output(previous, tmp_path):
    out, before = previous
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        tv.analyze(
            interrupting_image(calls), recipe=RECIPE, client=False, output=out,
            overwrite=True, verbose=False,
        )  # fmt: skip
    assert calls  # the interrupt came from the computation
    assert snapshot(out) == before
    assert no_leftovers(tmp_path) == []


def test_ctrl_c_while_writing_keeps_the_previous_output(previous, tmp_path, monkeypatch):
    out, before = previous
    seen: list[list[str]] = []

    def interrupted(result, image, path):
        seen.append(sorted(p.name for p in path.parent.iterdir()))  # the temporary folder
        raise KeyboardInterrupt

    monkeypatch.setattr(tilevision._report_html, "write_heatmap", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tv.analyze(image_2d(), recipe=RECIPE, client=False, output=out, overwrite=True,
                   verbose=False)  # fmt: skip
    assert seen == [["result.zarr"]]  # half written when the interrupt came
    assert snapshot(out) == before
    assert no_leftovers(tmp_path) == []
    (checkpoint,) = checkpoints(tmp_path)  # every tile block, committed before the write
    assert {p.name for p in tmp_path.iterdir()} == {"result", checkpoint.name}


def test_ctrl_c_on_a_new_output_leaves_no_folder(tmp_path, threads):
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        tv.analyze(interrupting_image(calls), recipe=RECIPE, client=False,
                   output=tmp_path / "new", verbose=False)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- scheduler address


def test_cli_scheduler_that_does_not_answer(tmp_path, monkeypatch, capsys):
    """One-line error naming the address within the timeout, exit code 1, no output."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    source = tmp_path / "small.npy"
    np.save(source, np.random.default_rng(0).random((32, 32)))
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    timeout = 2
    monkeypatch.setitem(tilevision.cluster.client.__kwdefaults__, "timeout", timeout)
    start = time.perf_counter()
    code = main(["analyze", str(source), "--scheduler", address, "--output", str(tmp_path / "o")])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("tilevision analyze: error: no Dask scheduler answered at " + address)
    assert f"within {timeout} s" in line
    assert elapsed < timeout + 15
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- re-runs, counted in tasks


def test_rerun_on_a_cluster_runs_no_task(keyed_cluster, tmp_path):
    client, keys = keyed_cluster
    len(keys.take())
    first = tv.analyze(image_2d(), recipe=RECIPE, client=client, output=tmp_path / "o",
                       verbose=False)  # fmt: skip
    assert len(keys.take()) > 0
    again = tv.analyze(image_2d(), recipe=RECIPE, client=client, output=tmp_path / "o",
                       verbose=False)  # fmt: skip
    assert len(keys.take()) == 0
    np.testing.assert_array_equal(again["descriptor"].values, first["descriptor"].values)
    # another recipe is new work
    tv.analyze(image_2d(), recipe=OTHER_RECIPE, client=client, output=tmp_path / "o2",
               verbose=False)  # fmt: skip
    assert len(keys.take()) > 0


def test_analyze_many_runs_only_the_tasks_of_a_new_source(keyed_cluster, tmp_path):
    client, keys = keyed_cluster
    images = [image_2d(seed, name) for seed, name in enumerate("abc")]
    out = tmp_path / "many"
    len(keys.take())
    tv.analyze_many(images[:2], recipe=RECIPE, client=client, output=out, verbose=False)
    two = len(keys.take())
    table = tv.analyze_many(images, recipe=RECIPE, client=client, output=out, verbose=False)
    one = len(keys.take())
    assert 0 < one < two <= 2 * one  # (images computed together share a few tasks)
    tv.analyze_many(images, recipe=RECIPE, client=client, output=out, verbose=False)
    assert len(keys.take()) == 0
    alone = tv.analyze(images[2], recipe=RECIPE, client=client, verbose=False)
    assert len(keys.take()) == one  # exactly the tasks of the new image ran
    np.testing.assert_allclose(table.loc["c"].to_numpy(dtype=float), alone["descriptor"].values)


class LocalTasks(Callback):
    """Counts the tasks Dask's local schedulers ran."""

    def __init__(self) -> None:
        super().__init__()
        self.ran = 0

    def _pretask(self, key, dsk, state):
        self.ran += 1


def test_rerun_without_a_cluster_runs_no_task(tmp_path, threads):
    with LocalTasks() as first_run:
        tv.analyze(image_2d(), recipe=RECIPE, client=False, output=tmp_path / "o",
                   verbose=False)  # fmt: skip
    with LocalTasks() as second_run:
        tv.analyze(image_2d(), recipe=RECIPE, client=False, output=tmp_path / "o",
                   verbose=False)  # fmt: skip
    assert first_run.ran > 0
    assert second_run.ran == 0
