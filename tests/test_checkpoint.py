"""Per-block checkpoint of one large image in ``tv.analyze(output=...)``.

The tile values are committed block by block (data, then a completion mark) to a hidden
checkpoint beside the output; a run that fails or is killed (SIGKILL of the client) leaves
the committed blocks, and the same call again computes only the blocks without a mark and
ends with the result of an undisturbed run. Blocks are counted in the tile-feature tasks
that ran, not in what the library says it did.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

import tilevision as tv
import tilevision._checkpoint as checkpoint_module
import tilevision.features._engine as engine
from tilevision._checkpoint import Checkpoint, commit_tiles
from tilevision._image import make_image
from tilevision.features._engine import plan_tiles

from .conftest import checkpoints, no_leftovers
from .test_resume import kill_at

FEATURES = "tilevision-tile-features"
RECIPE = tv.Recipe(["intensity", "histogram"], tile=16)  # as in SCRIPT
#: with 16³ float32 tiles (16 KiB), one block = one row of 4 tiles: 16 blocks in 64³
BLOCK_BYTES = 4 * 16**3 * 4

SCRIPT = """
import sys
import time

from distributed import Client, LocalCluster

import tilevision as tv
import tilevision._checkpoint as checkpoint
import tilevision.features._engine as engine

committed = []
commit_block = checkpoint.commit_block


def stalling_commit(*args, **kwargs):
    commit_block(*args, **kwargs)
    committed.append(args[2])
    if len(committed) == 5:
        print("committed", len(committed), flush=True)
        time.sleep(300)


if __name__ == "__main__":
    checkpoint.commit_block = stalling_commit
    engine.BLOCK_BYTES = 4 * 16**3 * 4
    source, output = sys.argv[1:]
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                     dashboard_address=":0", local_directory="scratch") as cluster,
        Client(cluster) as client,
    ):
        tv.analyze(source, recipe=tv.Recipe(["intensity", "histogram"], tile=16),
                   client=client, output=output, progress=False)
"""


def volume(seed: int = 0, shape=(64, 64, 64), chunks=16) -> xr.DataArray:
    data = np.random.default_rng(seed).normal(100, 20, shape).astype(np.float32)
    return make_image(da.from_array(data, chunks=chunks), ("z", "y", "x")[-len(shape) :])


class FeatureTasks(Callback):
    """Counts the tile-feature tasks that Dask's local schedulers ran."""

    def __init__(self) -> None:
        super().__init__()
        self.ran = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        self.ran += str(name).startswith(FEATURES)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(engine, "BLOCK_BYTES", BLOCK_BYTES)


@pytest.fixture
def threads() -> Iterator[None]:
    with dask.config.set(scheduler="threads"):
        yield


def analyze(source, output, **kwargs):
    kwargs.setdefault("client", False)
    return tv.analyze(source, recipe=RECIPE, output=output, verbose=False, **kwargs)


def data_only(result: xr.Dataset) -> xr.Dataset:
    return result.drop_attrs(deep=False)


@pytest.mark.parametrize(
    ("shape", "chunks", "blocks"),
    [
        ((64, 64, 64), 16, 16),  # rows of 4 tiles
        ((64, 80, 70), (16, 32, 32), 36),  # 2 × 2 tiles per task; partial last tiles
        ((96, 100), (32, 50), 1),  # 2-D: the whole image fits one block
    ],
)
def test_result_with_checkpoint_equals_the_result_without(
    shape, chunks, blocks, small_blocks, threads, tmp_path
):
    image = volume(shape=shape, chunks=chunks)
    reference = tv.analyze(image, recipe=RECIPE, client=False, verbose=False)
    result = analyze(image, tmp_path / "out")
    xr.testing.assert_identical(data_only(result), data_only(reference))
    summary = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert summary["checkpoint"] == {"blocks": blocks, "reused_blocks": 0}
    assert checkpoints(tmp_path) == []  # removed once the output is complete
    assert no_leftovers(tmp_path) == []


def test_blocks_are_whole_task_blocks_of_about_the_asked_size(monkeypatch):
    def blocks(block_bytes: int) -> tuple[int, ...]:
        monkeypatch.setattr(engine, "BLOCK_BYTES", block_bytes)
        return plan_tiles(volume(shape=(64, 64, 64), chunks=16), RECIPE).blocks

    assert blocks(4 * 16**3 * 4) == (1, 1, 4)  # a row
    assert blocks(16 * 16**3 * 4) == (1, 4, 4)  # a plane
    assert blocks(32 * 16**3 * 4) == (2, 4, 4)  # two planes
    assert blocks(1) == (1, 1, 1)  # never less than one task
    assert blocks(2**40) == (4, 4, 4)


def test_the_tile_dataset_is_chunked_in_blocks(small_blocks):
    tiles = tv.tile_features(volume(), RECIPE)
    assert tiles["intensity.mean"].chunks == ((1,) * 4, (1,) * 4, (4,))
    assert tiles["_stat.histogram.counts"].data.numblocks[:3] == (4, 4, 1)


def failing_after(n: int, monkeypatch) -> list[tuple[int, ...]]:
    """Make the ``n + 1``-th block commit raise (a crash); return the committed indices."""
    committed: list[tuple[int, ...]] = []
    commit = checkpoint_module.commit_block

    def failing(array, checkpoint, index, values):
        if len(committed) == n:
            raise OSError("node lost")
        commit(array, checkpoint, index, values)
        committed.append(index)

    monkeypatch.setattr(checkpoint_module, "commit_block", failing)
    return committed


def test_a_failed_run_resumes_computing_only_the_missing_blocks(
    small_blocks, tmp_path, monkeypatch
):
    image = volume()
    with dask.config.set(scheduler="sync"), FeatureTasks() as everything:
        reference = tv.analyze(image, recipe=RECIPE, client=False, verbose=False)
    assert everything.ran == 64  # one task per tile here
    committed = failing_after(6, monkeypatch)
    with dask.config.set(scheduler="sync"), pytest.raises(OSError, match="node lost"):
        analyze(image, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (left,) = checkpoints(tmp_path)
    assert Checkpoint(left).done() == set(committed)
    monkeypatch.undo()
    monkeypatch.setattr(engine, "BLOCK_BYTES", BLOCK_BYTES)
    with dask.config.set(scheduler="sync"), FeatureTasks() as resumed:
        result = analyze(image, tmp_path / "out")
    assert resumed.ran == 64 - 6 * 4  # 6 committed rows of 4 tiles were not computed again
    assert json.loads(result.attrs["checkpoint"]) == {"blocks": 16, "reused_blocks": 6}
    xr.testing.assert_identical(data_only(result), data_only(reference))
    assert checkpoints(tmp_path) == []


def test_a_block_written_without_its_mark_is_computed_again(small_blocks, threads, tmp_path):
    """A kill between writing a block and marking it: the values are never read."""
    image = volume()
    plan = plan_tiles(image, RECIPE)
    reference = analyze(image, tmp_path / "reference")
    key = reference.attrs["inputs_key"]
    checkpoint = Checkpoint.of(tmp_path / "out", key)
    done = commit_tiles(plan, checkpoint)
    assert (done.blocks, done.reused) == (16, 0)
    store = checkpoint.store
    array = __import__("zarr").open_array(str(store), mode="r+")
    array[0:1, 0:1, 0:4] = -1.0  # garbage in block (0, 0, 0) ...
    (checkpoint.folder / "done" / "0-0-0").unlink()  # ... which is not marked done
    (checkpoint.folder / "done" / "3-2-0").unlink()  # and a block that was never written
    array[3:4, 2:3, 0:4] = np.nan
    result = analyze(image, tmp_path / "out")
    assert json.loads(result.attrs["checkpoint"]) == {"blocks": 16, "reused_blocks": 14}
    xr.testing.assert_identical(data_only(result), data_only(reference))


def test_checkpoints_of_other_inputs_are_removed_and_a_broken_store_recreated(
    small_blocks, threads, tmp_path
):
    image = volume()
    other = tmp_path / ".out.tilevision-checkpoint-0123456789abcdef"
    (other / "done").mkdir(parents=True)
    (other / "done" / "0-0-0").touch()
    key = analyze(image, None).attrs["inputs_key"]
    mine = Checkpoint.of(tmp_path / "out", key)
    (mine.folder / "done").mkdir(parents=True)
    (mine.folder / "done" / "0-0-0").touch()  # marked, but its store is missing
    (mine.store).mkdir()  # (a store without metadata)
    result = analyze(image, tmp_path / "out")
    assert json.loads(result.attrs["checkpoint"])["reused_blocks"] == 0
    assert not other.exists()
    assert checkpoints(tmp_path) == []
    xr.testing.assert_identical(data_only(result), data_only(analyze(image, None)))


def counted_volume(reads: list[int], fail: bool = False) -> xr.DataArray:
    """:func:`volume` whose chunk reads are counted (or raise, with ``fail``)."""

    def read(block):
        if fail:
            raise OSError("disk gone")
        reads.append(1)
        return block

    data = volume().data
    return make_image(data.map_blocks(read, dtype=data.dtype), ("z", "y", "x"))


def test_a_failure_before_anything_is_committed_leaves_nothing(small_blocks, tmp_path):
    with dask.config.set(scheduler="sync"), pytest.raises(OSError, match="disk gone"):
        analyze(counted_volume([], fail=True), tmp_path / "out")  # in the global pass
    assert list(tmp_path.iterdir()) == []


def test_the_global_pass_is_committed_and_not_read_again(small_blocks, tmp_path, monkeypatch):
    """intensity's first pass (mean, grey-level range) reads the whole image: committed
    before the blocks, a resumed run reads the image only for the tiles."""
    reads: list[int] = []
    image = counted_volume(reads)
    with dask.config.set(scheduler="sync"):
        reference = tv.analyze(image, recipe=RECIPE, client=False, verbose=False)
    fresh = len(reads)
    failing_after(0, monkeypatch)  # the first block's commit fails
    with dask.config.set(scheduler="sync"), pytest.raises(OSError, match="node lost"):
        analyze(image, tmp_path / "out")
    (left,) = checkpoints(tmp_path)
    assert Checkpoint(left).done() == set()
    assert (left / "global-values.npz").exists()
    monkeypatch.undo()
    monkeypatch.setattr(engine, "BLOCK_BYTES", BLOCK_BYTES)
    reads.clear()
    with dask.config.set(scheduler="sync"):
        result = analyze(image, tmp_path / "out")
    assert len(reads) <= fresh - 64  # the 64 chunks were not read for the global values
    xr.testing.assert_identical(data_only(result), data_only(reference))
    assert checkpoints(tmp_path) == []


# ---------------------------------------------------------------- SIGKILL, on a cluster


def feature_tasks(keys: set[str]) -> int:
    return sum(FEATURES in key for key in keys)


def test_killed_client_resumes_from_its_committed_blocks(keyed_cluster, small_blocks, tmp_path):
    client, keys = keyed_cluster
    source = tv.ingest(volume(seed=3).data.compute(), tmp_path / "ct.zarr", chunks=16)
    out = tmp_path / "out"
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    kill_at("committed 5", tmp_path, "script.py", str(source), str(out))
    assert not out.exists()
    (left,) = checkpoints(tmp_path)
    assert len(Checkpoint(left).done()) == 5

    keys.take()
    result = analyze(source, out, client=client)
    resumed = feature_tasks(keys.take())
    reference = analyze(source, None, client=client)
    everything = feature_tasks(keys.take())
    assert everything == 64
    assert resumed == 64 - 5 * 4  # only the 11 rows without a mark
    assert json.loads(result.attrs["checkpoint"]) == {"blocks": 16, "reused_blocks": 5}
    xr.testing.assert_identical(data_only(result), data_only(reference))
    assert checkpoints(tmp_path) == []
    assert no_leftovers(tmp_path) == []


def test_committed_blocks_on_the_cluster_equal_the_plan(keyed_cluster, small_blocks, tmp_path):
    client, _ = keyed_cluster
    plan = plan_tiles(volume(shape=(48, 64, 64), chunks=16), RECIPE)
    done = commit_tiles(plan, Checkpoint.of(tmp_path / "x", "k"), client)
    assert (done.blocks, done.reused) == (3 * 4, 0)
    np.testing.assert_array_equal(
        done.plan.vector.compute(scheduler="threads"), plan.vector.compute(scheduler="threads")
    )


def test_progress_counts_committed_blocks(small_blocks, threads, tmp_path, capsys):
    image = volume()
    plan = plan_tiles(image, RECIPE)
    checkpoint = Checkpoint.of(tmp_path / "out", "k")
    commit_tiles(plan, checkpoint, progress=True)
    assert "committed 16/16 tile blocks" in capsys.readouterr().out
    for mark in sorted((checkpoint.folder / "done").iterdir())[:3]:
        mark.unlink()
    commit_tiles(plan, checkpoint, progress=True)
    out = capsys.readouterr().out
    assert "resuming: 13 of 16 tile blocks already committed" in out
    assert "committed 16/16 tile blocks" in out


def test_stays_lazy_until_asked(small_blocks):
    from tilevision.testing import raise_if_dask_computes

    with raise_if_dask_computes():
        plan = plan_tiles(volume(), RECIPE)
        assert plan.blocks == (1, 1, 4)
        tiles = engine.tile_dataset(plan)
        assert tiles["intensity.mean"].chunks == ((1,) * 4, (1,) * 4, (4,))


def test_plan_substitutions_check_their_input(threads, tmp_path):
    plan = plan_tiles(volume(), RECIPE)
    with pytest.raises(ValueError, match=r"tile values of shape \(4, 4\), expected"):
        plan.with_vector(da.zeros((4, 4)))
    plain = plan_tiles(volume(), tv.Recipe(["shape"], tile=16))  # (no global values)
    assert plain.global_values is None
    with pytest.raises(ValueError, match="do not depend on global values"):
        plain.with_global_values({})
    # a recipe without global values is committed straight away (no global-values file)
    checkpoint = Checkpoint.of(tmp_path / "out", "k")
    done = commit_tiles(plain, checkpoint)
    assert not (checkpoint.folder / "global-values.npz").exists()
    np.testing.assert_array_equal(done.plan.vector.compute(), plain.vector.compute())


def test_checkpoints_of_other_inputs_are_found_whatever_the_output_name(tmp_path):
    odd = tmp_path / "run [1]"
    other = Checkpoint.of(odd, "aaaa")
    (other.folder / "done").mkdir(parents=True)
    assert Checkpoint.of(odd, "bbbb").remove_others() == [other.folder]
    assert not other.folder.exists()
