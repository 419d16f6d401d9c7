"""Graph tools that bound memory: ``reread_after`` and ``map_overlap_read``.

``reread_after``: later passes read their input again instead of holding it.
``map_overlap_read``: a halo exchange in which each block reads its own chunk
(the same blocks as Dask's overlap, without chunks held for the neighbours).

Structural tests, not timings: a counting source tells how often each chunk is
read, a scheduler callback how many image chunks are alive at once, weak
references how many source chunks exist at once, and graph inspection which
input tasks a copy shares with the original.

``ReadCounter`` and ``MaxAlive`` are also used by the filters' tests,
``LiveChunks`` by the tile-feature engine's.
"""

from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from collections import Counter

import dask
import dask.array as da
import numpy as np
import pytest
from dask._task_spec import DataNode, Task, TaskRef, convert_legacy_graph
from dask.blockwise import Blockwise
from dask.callbacks import Callback
from dask.highlevelgraph import HighLevelGraph
from dask.utils import key_split

import tilevision._graph as graph_module
import tilevision._halo_read as graph_module_halo
from tilevision._graph import reread_after
from tilevision._halo import prepare_chunks
from tilevision._halo_read import inline_plan, map_overlap_read
from tilevision.filters import gaussian
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    raise_if_dask_computes,
)


class ReadCounter:
    """A lazy image whose chunks count how often they are computed ("read").

    Values are a fixed function of the chunk position, so every read gives the
    same chunk.
    """

    def __init__(self, shape=(64, 64), chunks=16, dtype="float32", seed=0):
        self.reads: Counter = Counter()
        self._lock = threading.Lock()
        self.seed = seed
        self.array = da.map_blocks(
            self._read,
            chunks=da.core.normalize_chunks(chunks, shape),
            dtype=dtype,
            meta=np.empty((0,) * len(shape), dtype),
            name=f"counted-{uuid.uuid4().hex}",
        )

    def _read(self, block_info=None):
        info = block_info[None]
        location = tuple(info["chunk-location"])
        with self._lock:
            self.reads[location] += 1
        rng = np.random.default_rng([self.seed, *location])
        block = rng.standard_normal(info["chunk-shape"]) * 300 + 40
        return block.astype(info["dtype"])

    def whole(self) -> np.ndarray:
        """The image in memory (the reads it takes are forgotten)."""
        out = self.array.compute(scheduler="sync")
        self.reads.clear()
        return out

    def counts(self) -> set[int]:
        """The distinct read counts of the chunks (``{2}``: every chunk read twice)."""
        assert len(self.reads) == self.array.npartitions, "some chunk was never read"
        return set(self.reads.values())


class MaxAlive(Callback):
    """Peak number of image-sized chunk results held at once by the local scheduler."""

    def __init__(self, chunk_shape):
        super().__init__()
        self.chunk_shape = tuple(chunk_shape)
        self.peak = 0

    def _posttask(self, key, result, dsk, state, id):
        alive = sum(
            1
            for value in state["cache"].values()
            if isinstance(value, np.ndarray) and value.shape == self.chunk_shape
        )
        self.peak = max(self.peak, alive)


def peak_alive(collection, chunk_shape) -> tuple[int, object]:
    """(peak chunks alive, result) computing ``collection`` with one thread."""
    with MaxAlive(chunk_shape) as callback:
        (result,) = dask.compute(collection, scheduler="sync")
    return callback.peak, result


def _reachable(array, stop_prefix="checkpoint"):
    """Keys ``array``'s outputs depend on, not looking past the blocker (checkpoint)."""
    graph = convert_legacy_graph(dict(array.__dask_graph__()))
    todo = list(dask.core.flatten(array.__dask_keys__()))
    seen = set()
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        if key_split(key).startswith(stop_prefix):
            continue
        todo.extend(graph[key].dependencies)
    return seen


def _inputs():
    """Graphs of every kind a filter's input can have (name, builder)."""
    return {
        "source": lambda x: x,
        "elementwise": lambda x: (x * 2 + 1).astype("float64"),
        "rechunk": lambda x: x.rechunk(24),
        "rechunk-split": lambda x: x.rechunk(8) + 1,
        "slice": lambda x: x[3:61, 5:],
        "channel-of-stack": lambda x: da.stack([x, x + 1])[1] * 2,
        "concatenate": lambda x: da.concatenate([x, x], axis=0),
        "map_overlap": lambda x: gaussian(x, 1.5),
        "where": lambda x: da.where(da.isfinite(x), x, np.nan),
    }


def _shared_tasks(again, image):
    """Tasks (not literal data such as a file handle) of ``image`` that ``again`` reuses."""
    graph = convert_legacy_graph(dict(image.__dask_graph__()))
    return {k for k in _reachable(again) & set(graph) if not isinstance(graph[k], DataNode)}


@pytest.mark.parametrize("kind", list(_inputs()))
def test_each_chunk_read_once_per_pass(kind):
    counter = ReadCounter()
    build = _inputs()[kind]
    expected_input = build(da.from_array(counter.whole(), chunks=16))
    image = build(counter.array)
    total = image.sum()
    with raise_if_dask_computes():
        again = reread_after(image, total)
    assert again.name != image.name
    assert again.chunks == image.chunks
    assert again.dtype == image.dtype
    got_again, got_total = dask.compute(again, total, scheduler="sync")
    # two passes: the sum, then the copy; never one read shared by both
    assert counter.counts() == {2}
    np.testing.assert_array_equal(got_again, expected_input.compute())
    assert got_total == expected_input.sum().compute()


@pytest.mark.parametrize("kind", list(_inputs()))
def test_copy_shares_no_input_task(kind):
    counter = ReadCounter()
    image = _inputs()[kind](counter.array)
    again = reread_after(image, image.max())
    shared = _shared_tasks(again, image)
    assert not shared, sorted(map(str, shared))[:3]


def _read_with_handle(handle, location):
    handle[location] += 1
    return np.full((4, 4), float(sum(location)))


def test_source_layer_with_internal_dependencies():
    """One layer holding a file handle and the reads that use it (copied task by task)."""
    reads: Counter = Counter()
    name = f"handle-source-{uuid.uuid4().hex}"
    layer = {f"{name}-handle": DataNode(f"{name}-handle", reads)}
    for i, j in np.ndindex(3, 3):
        layer[name, i, j] = Task(
            (name, i, j), _read_with_handle, TaskRef(f"{name}-handle"), (i, j)
        )
    image = da.Array(HighLevelGraph.from_collections(name, layer), name, ((4,) * 3,) * 2, float)
    total = image.sum()
    got, got_total = dask.compute(reread_after(image, total), total, scheduler="sync")
    assert set(reads.values()) == {2}
    np.testing.assert_array_equal(got, np.add.outer(np.arange(12) // 4, np.arange(12) // 4))
    assert got_total == got.sum()
    # waiting for something unrelated: the copy still finds its handle
    again = reread_after(image, da.ones(3, chunks=1).sum())
    np.testing.assert_array_equal(again.compute(scheduler="sync"), got)


def test_no_chunk_held_between_passes():
    counter = ReadCounter((256, 256), 32)  # 64 chunks
    image = counter.array
    total = image.sum()
    peak, got = peak_alive((reread_after(image, total) > total / image.size).sum(), (32, 32))
    assert peak <= 2
    # the same pass without the copy holds every chunk until the sum is known
    counter.reads.clear()
    shared_peak, shared_got = peak_alive((image > total / image.size).sum(), (32, 32))
    assert shared_peak >= 32
    assert got == shared_got


def test_waits_for_the_dependencies():
    """The copy's reads start only after the statistic is computed."""
    counter = ReadCounter((64, 64), 16)
    order = []

    class Record(Callback):
        def _posttask(self, key, result, dsk, state, id):
            order.append(key_split(key))

    image = counter.array
    stat = image.max()
    again = reread_after(image, stat)
    with Record():
        dask.compute(again - stat, scheduler="threads", optimize_graph=False)
    first_max = order.index(key_split(stat.name))
    assert order.count("counted") == 32
    assert order[:first_max].count("counted") == 16  # every first-pass read, no copy yet


def test_single_chunk_statistics_are_shared():
    """A global statistic upstream (one chunk) is shared, not recomputed by the copy."""
    counter = ReadCounter((128, 128), 16)
    mean = counter.array.mean()
    centred = reread_after(counter.array, mean) - mean  # itself a second pass
    std = centred.std()
    again = reread_after(centred, std)
    assert (mean.name,) in _reachable(again)  # the original mean, not a copy
    peak, got = peak_alive((again / std).max(), (16, 16))
    assert peak <= 2  # three passes, none holding the image
    assert counter.counts() == {3}
    whole = counter.whole().astype("float64")
    np.testing.assert_allclose(
        got, ((whole - whole.mean()) / (whole - whole.mean()).std()).max(), 1e-5
    )


def test_omit_shares_a_part_of_the_graph():
    counter = ReadCounter()
    upstream = counter.array * 2
    image = upstream + 1
    stat = image.sum()
    dask.compute(reread_after(image, stat, omit=[upstream]), stat, scheduler="sync")
    assert counter.counts() == {1}  # upstream (and the source under it) shared
    counter.reads.clear()
    dask.compute(reread_after(image, stat), stat, scheduler="sync")
    assert counter.counts() == {2}


def test_same_call_same_keys():
    counter = ReadCounter()
    image = counter.array + 1
    a, b = reread_after(image, image.sum()), reread_after(image, image.sum())
    assert a.name == b.name
    assert reread_after(image, image.max()).name != a.name
    rechunked = image.rechunk(24)
    stat = rechunked.sum()
    assert reread_after(rechunked, stat).name == reread_after(rechunked, stat).name


def test_blockwise_graphs_stay_blockwise():
    """Sources and elementwise layers are copied by ``bind``: Dask can still fuse them."""
    counter = ReadCounter()
    image = (counter.array * 2 + 1).astype("float64")
    again = reread_after(image, image.sum())
    assert isinstance(again.dask.layers[again.name], Blockwise)
    # layers Dask's bind cannot copy are copied task by task into one layer
    rechunked = reread_after(image.rechunk(24), image.sum())
    assert not isinstance(rechunked.dask.layers[rechunked.name], Blockwise)


def test_nothing_to_wait_for_returns_the_input():
    x = da.ones((4, 4), chunks=2)
    assert reread_after(x) is x
    assert reread_after(x, 3.0, None, np.float64(2)) is x
    plain = np.ones(3)
    assert reread_after(plain, x.sum()) is plain


def test_bind_failure_falls_back_to_a_task_copy(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Cannot fuse tasks with multiple outputs")

    monkeypatch.setattr(graph_module, "bind", broken)
    counter = ReadCounter()
    image = counter.array + 1
    stat = image.sum()
    got, _ = dask.compute(reread_after(image, stat), stat, scheduler="sync")
    assert counter.counts() == {2}
    np.testing.assert_array_equal(got, counter.whole() + 1)


def test_uncopyable_graph_falls_back_to_the_shared_input(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Cannot fuse tasks with multiple outputs")

    monkeypatch.setattr(graph_module, "bind", broken)
    monkeypatch.setattr(graph_module, "_copied", broken)
    counter = ReadCounter()
    image = counter.array.rechunk(24)
    assert reread_after(image, image.sum()) is image
    image = counter.array + 1
    assert reread_after(image, image.sum()) is image


def test_zarr_source(tmp_path):
    """A Zarr store: read again from the store, values unchanged."""
    data = np.arange(64 * 64, dtype="float32").reshape(64, 64)
    da.to_zarr(da.from_array(data, chunks=16), str(tmp_path / "a.zarr"))
    image = da.from_zarr(str(tmp_path / "a.zarr"))
    total = image.sum()
    again = reread_after(image, total)
    assert not _shared_tasks(again, image)  # only the store's handle
    got, got_total = dask.compute(again, total)
    np.testing.assert_array_equal(got, data)
    assert got_total == data.sum()


# ------------------------------------------------------ map_overlap_read (halo exchange)


class LiveChunks:
    """A lazy image that records the most of its chunks alive at once (weak references).

    A chunk is alive from its read until the last reference to it is dropped (by a
    task, or by the scheduler's cache): what a halo exchange holds between tasks.
    """

    def __init__(self, shape, chunks, dtype="float32", seed=0):
        self._lock = threading.Lock()
        self._alive: dict[int, weakref.ref] = {}
        self._ids = itertools.count()
        self.reads = 0
        self.peak = 0
        self.seed = seed
        self.array = da.map_blocks(
            self._read,
            chunks=da.core.normalize_chunks(chunks, shape),
            dtype=dtype,
            meta=np.empty((0,) * len(shape), dtype),
            name=f"live-{uuid.uuid4().hex}",
        )

    def _read(self, block_info=None):
        info = block_info[None]
        rng = np.random.default_rng([self.seed, *info["chunk-location"]])
        block = (rng.standard_normal(info["chunk-shape"]) * 300 + 40).astype(info["dtype"])
        with self._lock:
            key = next(self._ids)
            self._alive[key] = weakref.ref(block, lambda _, k=key: self._alive.pop(k, None))
            self.reads += 1
            self.peak = max(self.peak, len(self._alive))
        return block

    def reset(self):
        self.reads = self.peak = 0


def _whole_block(*blocks, block_info=None):
    """Every overlapped block, stacked (to compare the exchange with Dask's)."""
    return np.stack([np.asarray(b, dtype="float64") for b in blocks], axis=-1)


def _stacked_overlap(arrays, depth):
    """Dask's own exchange: the reference."""
    ovl = [da.overlap.overlap(a, depth=dict(enumerate(depth)), boundary="none") for a in arrays]
    return da.map_blocks(
        _whole_block, *ovl, new_axis=arrays[0].ndim, chunks=(*ovl[0].chunks, (len(arrays),)),
        dtype="float64", meta=np.empty((0,) * (arrays[0].ndim + 1)),
    )  # fmt: skip


def _read_with_halo(arrays, depth, **options):
    ref = _stacked_overlap(arrays, depth)
    return map_overlap_read(
        _whole_block, arrays, depth, chunks=ref.chunks, dtype="float64",
        meta=np.empty((0,) * ref.ndim), name=f"test-{uuid.uuid4().hex}", **options,
    ), ref  # fmt: skip


def _kinds_of_input(x):
    """An image, a mask from it (read together), and one that must be shared."""
    return [x, x > 40, (x.rechunk(7) * 2).rechunk(x.chunks)]


@pytest.mark.parametrize(
    ("shape", "chunks", "depth"),
    [
        *[(AWKWARD_SHAPE_2D, c, (2, 3)) for c in AWKWARD_CHUNKS_2D],
        *[(AWKWARD_SHAPE_3D, c, (1, 2, 3)) for c in AWKWARD_CHUNKS_3D],
        ((30, 40), (10, 10), (0, 4)),
        ((12, 30, 40), (4, 10, 10), (4, 0, 10)),
    ],
)
def test_read_blocks_equal_dasks_overlap(shape, chunks, depth):
    counter = ReadCounter(shape, chunks)
    x, depth = prepare_chunks(counter.array, depth)
    arrays = _kinds_of_input(x)
    with raise_if_dask_computes():
        ours, ref = _read_with_halo(arrays, depth)
    assert ours.chunks == ref.chunks
    assert ours.dtype == ref.dtype
    got, expected = dask.compute(ours, ref, scheduler="threads")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("sweep", [False, True])
def test_read_blocks_wait_for_global_values_and_take_args(sweep):
    counter = ReadCounter((24, 36, 40), (8, 12, 10))
    x = counter.array
    total = x.sum()
    image, shared = x - total / x.size, x.rechunk(5).rechunk(x.chunks)

    def centred(block, other, mean, block_info=None, *, scale):
        loc = block_info[0]["chunk-location"]
        return np.array([block.sum() * scale, other.max(), float(mean), sum(loc)])[
            None, None, None
        ]

    out = map_overlap_read(
        centred, [image, shared], (2, 3, 1), args=[total / x.size], kwargs={"scale": 2.0},
        after=[total], sweep=sweep, chunks=((1,) * 3, (1,) * 3, (1,) * 4, (4,)),
        dtype="float64", meta=np.empty((0,) * 4), name=f"test-{uuid.uuid4().hex}",
    )  # fmt: skip
    ovl = [
        da.overlap.overlap(a, depth={0: 2, 1: 3, 2: 1}, boundary="none") for a in (image, shared)
    ]
    ref = da.map_blocks(
        centred, *ovl, float(total.compute() / x.size), scale=2.0, new_axis=3, dtype="float64",
        chunks=((1,) * 3, (1,) * 3, (1,) * 4, (4,)), meta=np.empty((0,) * 4),
    )  # fmt: skip
    np.testing.assert_allclose(out.compute(), ref.compute(), rtol=1e-6)


def test_inputs_read_block_by_block_share_no_chunk():
    """Sources and elementwise steps are run again in the tasks that need them."""
    counter = ReadCounter((32, 40), (8, 10))
    x = counter.array
    arrays = _kinds_of_input(x)
    graph = graph_module_halo._Graph(arrays)
    for index in np.ndindex(*x.numblocks):
        plan = inline_plan(graph, [(a.name, *index) for a in arrays[:2]])
        assert plan is not None
        assert [key_split(t.key) for t in plan.tasks] == ["counted", "gt"]  # one read
        assert inline_plan(graph, [(arrays[2].name, *index)]) is None  # rechunked
    ours, _ = _read_with_halo(arrays[:2], (2, 3))
    # no task of the exchange takes a chunk of the input: each reads its own
    assert not [k for k in _reachable(ours, "no-stop") if key_split(k) in ("counted", "gt")]
    got = ours.compute(scheduler="sync")
    assert counter.counts() == {2}  # in its halo task, and in its block's task
    _, ref = _read_with_halo(arrays[:2], (2, 3))
    np.testing.assert_array_equal(got, ref.compute())


def test_inline_plan_stops_at_global_values_and_big_graphs(monkeypatch):
    x = ReadCounter((32, 40), (8, 10)).array
    mean = x.mean()
    mask = x > mean  # the mean is computed once and passed in, not recomputed
    plan = inline_plan(graph_module_halo._Graph([mask]), [(mask.name, 1, 2)])
    assert plan is not None
    assert plan.external == ((mean.name,),)
    assert [k[1:] for k in plan.outputs] == [(1, 2)]
    deep = x
    for _ in range(5):
        deep = deep + 1
    assert inline_plan(graph_module_halo._Graph([deep]), [(deep.name, 0, 0)]) is not None
    monkeypatch.setattr(graph_module_halo, "MAX_INLINE_TASKS", 4)
    assert inline_plan(graph_module_halo._Graph([deep]), [(deep.name, 0, 0)]) is None


def _live_peak(make, counter, scheduler="threads"):
    counter.reset()
    result = make(counter.array)
    dask.compute(result, scheduler=scheduler, num_workers=2)
    return counter.peak


def test_halo_exchange_holds_few_chunks():
    """Peak chunks alive stays small and does not grow with the image; Dask's does."""
    peaks, dask_peaks = [], []
    for shape in [(48, 48, 64), (64, 96, 96)]:  # 48 and 144 chunks
        counter = LiveChunks(shape, 16)

        def ours(x):
            out, _ = _read_with_halo([x, x > 40], (2, 2, 2), sweep=True)
            return out.sum()

        def theirs(x):
            return _stacked_overlap([x, x > 40], (2, 2, 2)).sum()

        peaks.append(_live_peak(ours, counter))
        dask_peaks.append(_live_peak(theirs, counter))
    assert max(peaks) <= 6  # a few per thread: read, cut, dropped
    assert peaks[1] <= peaks[0] + 2
    assert dask_peaks[1] > 3 * max(peaks)  # the test can see chunks being held


class _LivePieces(Callback):
    """Peak number of halo tasks' results (pieces waiting for neighbours) held at once."""

    def __init__(self):
        super().__init__()
        self.peak = 0

    def _posttask(self, key, result, dsk, state, id):
        alive = sum(1 for k in state["cache"] if key_split(k).startswith("overlap-test"))
        self.peak = max(self.peak, alive)


def test_sweep_keeps_waiting_pieces_within_three_slabs():
    x = ReadCounter((12, 12, 80), 4).array  # 3 x 3 x 20 chunks: slabs of 9 along x
    out, ref = _read_with_halo([x], (1, 1, 1), sweep=True)
    graph = convert_legacy_graph(dict(out.__dask_graph__()))
    halo = {k: v for k, v in graph.items() if key_split(k).startswith("overlap-test")}
    slabs = {k for k in graph if key_split(k).startswith("overlap-slab")}
    assert len(slabs) == 18
    for key, node in halo.items():  # slab s + 2 waits for slab s
        waits = {k[1] for k in node.dependencies if k in slabs}
        assert waits == ({key[3] - 2} if key[3] >= 2 else set())
    with _LivePieces() as live:
        got = out.sum().compute(scheduler="threads", num_workers=2)
    assert live.peak <= 3 * 9
    assert got == ref.sum().compute()


def test_filters_hold_few_chunks(monkeypatch):
    monkeypatch.setenv("TILEVISION_BOUNDED_EXCHANGE_BYTES", "0")  # as for a large image
    counter = LiveChunks((64, 96, 96), 16)  # 144 chunks
    peak = _live_peak(lambda x: gaussian(x, 1.0).max(), counter)
    assert peak <= 6
    assert counter.reads <= 2 * 144


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"arrays": "two chunkings"}, "need the same chunks"),
        ({"depth": (9, 1)}, "thinner than the halo"),
        ({"depth": (1,)}, "does not match a 2-D array"),
        ({"chunks": ((1, 1), (1,))}, "one block per input block"),
        ({"args": "multi-chunk"}, "global values of one chunk"),
        ({"arrays": []}, "at least one array"),
    ],
)
def test_map_overlap_read_bad_input(kwargs, match):
    x = da.ones((16, 20), chunks=(8, 10))
    options = {"chunks": ((1, 1), (1, 1)), "depth": (2, 2), "args": ()}
    options.update(kwargs)
    if options.get("arrays") == "two chunkings":
        options["arrays"] = [x, x.rechunk(4)]
    if options["args"] == "multi-chunk":
        options["args"] = [x]
    arrays = options.pop("arrays", [x])
    depth = options.pop("depth")
    with pytest.raises(ValueError, match=match):
        map_overlap_read(
            _whole_block, arrays, depth, dtype=float, meta=np.empty((0, 0)), name="bad",
            **options,
        )  # fmt: skip


def test_large_filter_inputs_use_the_bounded_exchange(monkeypatch):
    """Past the size limit a filter reads each chunk twice per pass (for its neighbours'
    halos, then for itself) instead of holding it for them."""
    monkeypatch.setenv("TILEVISION_BOUNDED_EXCHANGE_BYTES", "0")
    counter = ReadCounter()
    image = gaussian(counter.array, 1.5)
    expected = gaussian(da.from_array(counter.whole(), chunks=16), 1.5)
    total = image.sum()
    got_again, _ = dask.compute(reread_after(image, total), total, scheduler="sync")
    assert counter.counts() == {4}
    np.testing.assert_array_equal(got_again, expected.compute())
