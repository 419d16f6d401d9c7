"""Checkpoint and resume of ``tv.analyze_many(output=...)``, counted in tasks the scheduler ran.

Each image's folder is written under a temporary name and renamed when complete, so a client
killed mid-run (SIGKILL: no cleanup code runs) leaves finished folders and at most unfinished
temporaries; the same call again computes only the missing images, never reads a temporary,
and removes them. Folders are named by the source (``<name>-<id>``), not by its position, so
adding or reordering sources re-uses every finished folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest

import tilevision as tv
import tilevision._analyze
from tilevision._image import make_image
from tilevision.io._atomic import atomic_directory, remove_stale

from .conftest import no_leftovers

RECIPE = tv.Recipe(["intensity"], tile=16)  # as in SCRIPT
OTHER_RECIPE = tv.Recipe(["intensity"], tile=32)

#: ``analyze_many`` on a LocalCluster of worker processes; the second image's write stalls
#: (a slow disk) so that the test kills the run while a folder is half written
SCRIPT = """
import sys
import time

from distributed import Client, LocalCluster

import tilevision as tv
import tilevision._analyze
import tilevision._report_html as report

written = []
write_report = report.write_report


def stalling_write_report(*args, **kwargs):
    written.append(args)
    if len(written) == 2:
        print("stalled", flush=True)
        time.sleep(300)
    return write_report(*args, **kwargs)


if __name__ == "__main__":
    report.write_report = stalling_write_report
    output, *sources = sys.argv[1:]
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                     dashboard_address=":0", local_directory="scratch") as cluster,
        Client(cluster) as client,
    ):
        tv.analyze_many(sources, recipe=tv.Recipe(["intensity"], tile=16), client=client,
                        output=output)
"""


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder below ``folder`` (itself included): SHA-256 and mtime."""
    paths = [folder, *sorted(folder.rglob("*"))]
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder",
            p.stat().st_mtime_ns,
        )
        for p in paths
    }


def finished(out: Path) -> list[str]:
    """The complete result folders in ``out``."""
    return sorted(p.parent.name for p in out.glob("*/analysis.json"))


@pytest.fixture
def sources(tmp_path, monkeypatch) -> list[Path]:
    """Six images: three ``.npy`` files (ingested into the cache) and three OME-Zarr stores."""
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    (tmp_path / "images").mkdir()
    paths = []
    for i in range(6):
        data = np.random.default_rng(i).random((64, 64))
        path = tmp_path / "images" / f"im{i}.npy"
        np.save(path, data)
        if i % 2:
            path = tv.ingest(path, path.with_suffix(".zarr"))
        paths.append(path)
    return paths


def run(sources, client, out, **kwargs) -> pd.DataFrame:
    return tv.analyze_many(
        sources, recipe=kwargs.pop("recipe", RECIPE), client=client, output=out,
        verbose=False, **kwargs,
    )  # fmt: skip


# ---------------------------------------------------------------- SIGKILL, then resume


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    """Standard output of ``process`` up to a line starting with ``marker``."""
    data = b""
    deadline = time.monotonic() + timeout
    fd = process.stdout.fileno()
    while not any(line.startswith(marker.encode()) for line in data.split(b"\n")[:-1]):
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(
                f"no line {marker!r} within {timeout} s (exit code {process.returncode});\n"
                f"stdout: {(data + out).decode(errors='replace')}\n"
                f"stderr: {err.decode(errors='replace')[-3000:]}"
            )
        data += chunk
    return data.decode(errors="replace")


def kill_at(marker: str, cwd: Path, *argv: str, timeout: float = 120) -> str:
    """Run ``python *argv`` in its own session, SIGKILL it and its children (the client,
    its cluster and its workers) once it prints a line starting with ``marker``; return
    what it printed."""
    process = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        cwd=cwd, env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True,
    )  # fmt: skip
    try:
        printed = read_until(process, marker, timeout=timeout)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    return printed


def test_killed_client_then_rerun_computes_only_what_is_missing(sources, keyed_cluster, tmp_path):
    client, keys = keyed_cluster
    out = tmp_path / "out"
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    printed = kill_at("stalled", tmp_path, "script.py", str(out), *map(str, sources))
    assert "ingesting im0.npy" in printed
    # what the kill left: one finished folder, one half-written temporary
    (done,) = finished(out)
    (partial,) = no_leftovers(out)
    assert partial.startswith(".")
    assert ".tilevision-partial-" in partial
    assert {p.name for p in (out / partial).iterdir()} == {"result.zarr", "heatmap.png"}
    before = snapshot(out / done)

    again = run(sources, client, out)
    resumed = keys.take()
    assert no_leftovers(out) == []  # the temporary was removed, never read
    assert snapshot(out / done) == before  # the finished folder was re-used as it was
    assert len(finished(out)) == len(sources)

    reference = run(sources, client, None)  # undisturbed (no output: no heatmap tasks)
    everything = keys.take()
    (source,) = [s for s in sources if done.startswith(s.name + "-")]
    tv.analyze(source, recipe=RECIPE, client=client, verbose=False)
    one = keys.take()
    # the tasks of the five missing images (they share a few with the sixth; their heatmaps
    # add a few), not those of the sixth
    assert len(everything) - len(one) <= len(resumed) < len(everything)
    pd.testing.assert_frame_equal(again, reference, check_exact=True)
    csv = pd.read_csv(out / "results.csv", index_col="source")
    pd.testing.assert_frame_equal(csv, reference, check_exact=True)


# ---------------------------------------------------------------- stable folder names


def test_a_new_source_first_recomputes_nothing_else(sources, keyed_cluster, tmp_path):
    client, keys = keyed_cluster
    out = tmp_path / "out"
    new, old = sources[1], sources[2:5]  # (a Zarr store: no ingest tasks to count)
    first = run(old, client, out)
    names = finished(out)
    before = {name: snapshot(out / name) for name in names}
    keys.take()
    table = run([new, *old[::-1]], client, out)  # a new source first, the others reversed
    added = keys.take()
    # (with output: drawing the heatmap over the image reads it)
    run([new], client, tmp_path / "alone")
    assert len(added) == len(keys.take())  # only the new source's tasks ran
    assert {name: snapshot(out / name) for name in names} == before
    assert len(finished(out)) == 4  # and no stale folder
    assert table.index.tolist() == [s.name for s in [new, *old[::-1]]]
    pd.testing.assert_frame_equal(table.loc[first.index], first, check_exact=True)
    # <name>-<first 8 hex digits of the SHA-256 of the source's resolved path>
    digest = hashlib.sha256(str(old[0].resolve()).encode()).hexdigest()[:8]
    assert f"{old[0].name}-{digest}" in names


def test_other_recipe_or_changed_file_replaces_folders_only_with_overwrite(
    sources, keyed_cluster, tmp_path
):
    client, keys = keyed_cluster
    out = tmp_path / "out"
    run(sources[:2], client, out)
    names = finished(out)
    with pytest.raises(FileExistsError, match=r"im0.npy-\w{8} exists and holds other results"):
        run(sources[:2], client, out, recipe=OTHER_RECIPE)
    keys.take()
    assert no_leftovers(out) == []
    table = run(sources[:2], client, out, recipe=OTHER_RECIPE, overwrite=True)
    assert finished(out) == names  # the same folders, replaced
    assert keys.take()
    for name in names:
        summary = json.loads((out / name / "analysis.json").read_text())
        assert summary["recipe_hash"] == OTHER_RECIPE.hash
    assert table["tiles.valid_count"].tolist() == [4.0, 4.0]
    # a file rewritten in place keeps its folder, whose results no longer match
    np.save(sources[0], np.zeros((64, 64)))
    with pytest.raises(FileExistsError, match=r"im0\.npy"):
        run(sources[:2], client, out, recipe=OTHER_RECIPE)
    table = run(sources[:2], client, out, recipe=OTHER_RECIPE, overwrite=True)
    assert table.loc["im0.npy", "intensity.mean"] == 0.0
    assert finished(out) == names


def test_a_source_listed_twice_is_computed_and_written_once(tmp_path, monkeypatch):
    images = [make_image(np.full((16, 16), v), ("y", "x")).rename(f"v{v}") for v in (1.0, 2.0)]
    written = []
    write = tilevision._analyze._write
    monkeypatch.setattr(tilevision._analyze, "_write", lambda *a: (written.append(a), write(*a)))
    with dask.config.set(scheduler="sync"):
        table = tv.analyze_many(
            [images[0], images[1], images[0]], recipe=RECIPE, client=False, verbose=False,
            output=tmp_path / "out",
        )  # fmt: skip
    assert table.index.tolist() == ["v1.0", "v2.0", "v1.0"]
    assert table["intensity.mean"].tolist() == [1.0, 2.0, 1.0]
    assert len(written) == 2
    assert len(finished(tmp_path / "out")) == 2


# ---------------------------------------------------------------- stale temporaries


def test_remove_stale_removes_only_what_dead_writers_left(tmp_path):
    dest = tmp_path / "result"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    with atomic_directory(dest) as live:
        (live / "data").write_text("being written")
        host = live.name.rsplit("-", 1)[1]
        left = tmp_path / f".result.tilevision-partial-0123456789ab-{dead.stdout.strip()}-{host}"
        left.mkdir()
        young = tmp_path / ".result.tilevision-old-0123456789ab-1-ffffffff"  # another host
        young.mkdir()
        old = tmp_path / ".other.tilevision-partial-abc"  # unknown owner, a day old
        old.write_text("")
        os.utime(old, (time.time() - 2 * 86400,) * 2)
        assert remove_stale(tmp_path, "result") == [left]
        assert remove_stale(tmp_path) == [old]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, young.name])
    assert (dest / "data").read_text() == "being written"  # the live writer was left alone
    assert remove_stale(tmp_path, max_age=0) == [young]
