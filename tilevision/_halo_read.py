"""Halo exchange with bounded memory: each block's data is read in the block's own task.

``dask.array.overlap.overlap`` cuts every chunk into up to ``3**ndim`` pieces that
are *views* of the chunk and hands them to the neighbouring blocks: a chunk stays in
memory until the last of its neighbours has run, and Dask's task order then keeps
a large share of a big image in memory at once (about half of a 1 GiB volume in
128³ chunks, for the tile features).

:func:`map_overlap_read` runs a function on the same overlapped blocks with two
tasks per chunk and no shared chunk:

* a **halo task** per chunk computes the chunk, copies out the thin pieces its
  neighbours need (faces, edges and corners ``depth`` pixels wide) and drops it;
* a **block task** per chunk computes the chunk again, joins it with the pieces of
  its neighbours' halo tasks and runs the function on the block.

"Computes the chunk" means running, inside that task, the chunk's own part of the
input's graph — the chunk read from the store (``from_zarr``, a tilevision reader)
and the elementwise steps on it (a cast, a comparison with a global threshold) —
when every layer of that graph gives the chunk exactly one task (see
:func:`inline_plan`). Such inputs are read twice and never held between tasks: only
the pieces wait for the neighbours (a depth-5 halo around 128³ chunks is a quarter
of a chunk). Other inputs (a rechunked array, the result of another overlap, a
label image) are shared as Dask does it, with two dependents per chunk and copied
pieces. ``sweep`` also bounds how long the pieces wait (slab by slab).

The blocks are those of ``da.overlap.overlap(array, depth, boundary="none")``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask._task_spec import DataNode, GraphNode, List, Task, TaskRef, convert_legacy_task
from dask.base import is_dask_collection
from dask.core import flatten
from dask.graph_manipulation import checkpoint
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from ._graph import reread_after

__all__ = ["Inline", "bounded_exchange_pays", "inline_plan", "map_overlap_read"]

#: at most this many tasks of an input's graph are run again inside one task
MAX_INLINE_TASKS = 64

#: filter chains switch to the bounded exchange for inputs larger than this many bytes
#: (``$TILEVISION_BOUNDED_EXCHANGE_BYTES`` overrides it)
BOUNDED_EXCHANGE_BYTES = 2**30


def bounded_exchange_pays(array: Any) -> bool:
    """Whether a filter chain on ``array`` should use :func:`map_overlap_read`.

    The bounded exchange reads every chunk twice per pass; Dask's overlap reads it
    once but holds chunks for their neighbours, so its memory grows with the image
    (about 0.9× the input measured). Below :data:`BOUNDED_EXCHANGE_BYTES` holding is
    cheaper than reading again (workload W, 16384² uint16: 6.7 s and 552 MiB with
    Dask's overlap, 7.7 s and 648 MiB bounded); above it, memory decides.

    Examples
    --------
    >>> import dask.array as da
    >>> bounded_exchange_pays(da.zeros((64, 64))), bounded_exchange_pays(da.zeros((2**16,) * 2))
    (False, True)
    """
    import os

    limit = int(os.environ.get("TILEVISION_BOUNDED_EXCHANGE_BYTES", BOUNDED_EXCHANGE_BYTES))
    return int(array.nbytes) > limit


@dataclass(frozen=True)
class Inline:
    """Part of a Dask graph to run inside one task: ``tasks`` in order, giving ``outputs``.

    ``external`` are the keys the tasks read from outside (global values such as a
    threshold, a store handle): the calling task receives their values as arguments,
    in this order.
    """

    tasks: tuple[GraphNode, ...]
    outputs: tuple[Hashable, ...]
    external: tuple[Hashable, ...]

    def __dask_tokenize__(self) -> Hashable:
        return ("tilevision-inline", self.outputs, self.external)

    def run(self, values: Sequence[Any]) -> list[Any]:
        """Run the tasks on the external ``values``; the outputs, in order."""
        cache: dict[Hashable, Any] = dict(zip(self.external, values))
        remaining: dict[Hashable, int] = {}
        for node in self.tasks:
            for dep in node.dependencies:
                remaining[dep] = remaining.get(dep, 0) + 1
        keep = set(self.outputs) | set(self.external)
        for node in self.tasks:
            cache[node.key] = node(cache)
            for dep in node.dependencies:
                remaining[dep] -= 1
                if remaining[dep] == 0 and dep not in keep:
                    del cache[dep]  # drop intermediates as soon as they are used
        return [cache[k] for k in self.outputs]


class _Graph:
    """The low-level tasks of some arrays' graphs, with how many keys each name has."""

    def __init__(self, arrays: Sequence[da.Array]) -> None:
        graph: dict[Hashable, Any] = {}
        for a in arrays:
            hlg = a.__dask_graph__()
            keys = set(flatten(a.__dask_keys__()))
            culled = hlg.cull(keys) if isinstance(hlg, HighLevelGraph) else hlg
            graph.update(culled)
        all_keys = set(graph)
        self.tasks: dict[Hashable, GraphNode] = {}
        for key, value in graph.items():
            node = value
            if not isinstance(node, GraphNode):  # an old-style task or a literal
                node = convert_legacy_task(key, value, all_keys)
            if not isinstance(node, GraphNode):
                node = DataNode(key, node)
            self.tasks[key] = node
        self.per_name: dict[Hashable, int] = {}
        for key in self.tasks:
            name = _name(key)
            self.per_name[name] = self.per_name.get(name, 0) + 1

    def global_key(self, key: Hashable) -> bool:
        """A key of a one-task layer (a global statistic, a store handle) or outside."""
        return key not in self.tasks or self.per_name[_name(key)] == 1


def _name(key: Hashable) -> Hashable:
    return key[0] if isinstance(key, tuple) else key


def inline_plan(graph: _Graph, keys: Sequence[Hashable]) -> Inline | None:
    """How to compute ``keys`` inside one task, or None where that would repeat work.

    The tasks that ``keys`` depend on are collected down to the keys of one-task
    layers (global values: passed in as arguments). This is only done when every
    other layer contributes at most ONE task for each requested key — a chunk read
    and elementwise steps on it — and the whole is at most ``MAX_INLINE_TASKS``
    tasks: running it again then costs one more read of the chunk. A rechunk, an
    overlap or a reduction upstream (several tasks of one layer per chunk) gives
    None: that input is shared, not recomputed.
    """
    order: list[Hashable] = []
    external: list[Hashable] = []
    seen: set[Hashable] = set()
    for top in keys:
        if graph.global_key(top) or not _visit(graph, top, set(), seen, order, external):
            return None
    return Inline(tuple(graph.tasks[k] for k in order), tuple(keys), tuple(external))


def _visit(
    graph: _Graph,
    key: Hashable,
    names: set[Hashable],
    seen: set[Hashable],
    order: list[Hashable],
    external: list[Hashable],
) -> bool:
    """Collect ``key`` and what it needs into ``order`` (dependencies first); False when a
    layer gives a second task (``names``: the layers met under this output) or the
    part grows past ``MAX_INLINE_TASKS``."""
    if key in seen:
        return True
    seen.add(key)
    if graph.global_key(key):
        external.append(key)
        return True
    name = _name(key)
    if name in names:  # a second task of one layer: neighbours, merges
        return False
    names.add(name)
    for dep in sorted(graph.tasks[key].dependencies, key=str):
        if not _visit(graph, dep, names, seen, order, external):
            return False
    order.append(key)
    return len(order) <= MAX_INLINE_TASKS


def _chunks_now(inline: Inline | None, shared: Sequence[Any], values: Sequence[Any]) -> list[Any]:
    """The chunk of every array: computed here (``inline``) or given (``shared``)."""
    computed = iter(inline.run(values) if inline is not None else ())
    return [next(computed) if s is None else s for s in shared]


def _halo_pieces(
    inline: Inline | None,
    *,
    shared: Sequence[Any],
    values: Sequence[Any],
    slots: tuple[int | None, ...],
    sides: tuple[tuple[int, ...], ...],
    depth: tuple[int, ...],
    wait: Any = (),
) -> dict[tuple[int, ...], tuple[Any, ...]]:
    """The copied pieces of one chunk for each neighbour (at offset ``side``) that needs some."""
    chunks = _chunks_now(inline, [None if s is None else shared[s] for s in slots], values)
    shape = chunks[0].shape
    out = {}
    for side in sides:
        index = tuple(
            slice(None) if o == 0 else slice(0, d) if o < 0 else slice(n - d, None)
            for o, d, n in zip(side, depth, shape)
        )
        out[side] = tuple(np.array(c[index], copy=True) for c in chunks)
    return out


def _join(
    chunks: Sequence[Any],
    pieces: Sequence[dict[tuple[int, ...], tuple[Any, ...]]],
    sides: tuple[tuple[int, ...], ...],
    low: tuple[int, ...],
    high: tuple[int, ...],
) -> list[Any]:
    """Each chunk with its neighbours' pieces (those facing it) around it."""
    blocks = []
    for j, chunk in enumerate(chunks):
        shape = tuple(lo + n + hi for lo, n, hi in zip(low, chunk.shape, high))
        block = np.empty_like(chunk, shape=shape)
        block[tuple(slice(lo, lo + n) for lo, n in zip(low, chunk.shape))] = chunk
        for side, piece in zip(sides, pieces):
            index = tuple(
                slice(lo, lo + n) if o == 0 else slice(0, lo) if o < 0 else slice(lo + n, None)
                for o, lo, n in zip(side, low, chunk.shape)
            )
            block[index] = piece[tuple(-o for o in side)][j]
        blocks.append(block)
    return blocks


def _call_on_block(
    inline: Inline | None,
    *,
    shared: Sequence[Any],
    values: Sequence[Any],
    slots: tuple[int | None, ...],
    pieces: Sequence[dict[tuple[int, ...], tuple[Any, ...]]],
    sides: tuple[tuple[int, ...], ...],
    low: tuple[int, ...],
    high: tuple[int, ...],
    extra: Sequence[Any],
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    block_info: dict[Any, Any],
    wait: Any = (),
) -> Any:
    """``func`` on one overlapped block of every array (made here), then the extra args."""
    chunks = _chunks_now(inline, [None if s is None else shared[s] for s in slots], values)
    blocks = _join(chunks, pieces, sides, low, high)
    del chunks
    return func(*blocks, *extra, block_info=block_info, **kwargs)


def _done(*_: Any) -> None:
    """Nothing: a task that only marks that its dependencies have run."""


def map_overlap_read(
    func: Callable[..., Any],
    arrays: Sequence[da.Array],
    depth: Sequence[int],
    *,
    chunks: tuple[tuple[int, ...], ...],
    dtype: Any,
    meta: Any,
    name: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    after: Iterable[Any] = (),
    sweep: bool = False,
) -> da.Array:
    """``func`` on every block of ``arrays`` with ``depth`` pixels of halo, read in its task.

    Like ``da.map_overlap(func, *arrays, depth=depth, boundary="none", trim=False)``:
    ``func(*blocks, *args, block_info=..., **kwargs)`` gets, for each array, its block
    with up to ``depth`` pixels of the neighbouring blocks around it (none beyond the
    image edge) — but no chunk of an input is held in memory between tasks (see the
    module docstring), so peak memory does not grow with the image.

    Parameters
    ----------
    func : callable
        Returns the output block for one input block. ``block_info[0]`` holds the
        block's ``"chunk-location"`` and the ``"num-chunks"`` per axis, as Dask's.
    arrays : sequence of dask.array.Array
        Arrays of the same chunks (an image and its mask): reads they share are made
        once per task.
    depth : sequence of int
        Halo per axis, each at most the thinnest chunk along its axis (see
        :func:`tilevision._halo.prepare_chunks`); axes in one chunk get none.
    chunks : tuple of tuple of int
        Output chunks: one block per input block along the input's axes, then any
        new axes in one block each.
    dtype, meta : numpy.dtype, array
        Of the output.
    name : str
        The output's Dask name (make it unique: it should hash the inputs).
    args : sequence, optional
        More arguments of ``func`` after the blocks: Dask arrays of ONE chunk (a
        global value) are passed whole, other objects as they are.
    kwargs : mapping, optional
        Keyword arguments of ``func``.
    after : iterable of dask collections, optional
        Global values the reads wait for (the later pass of a global-then-local
        computation); an input that cannot be read again block by block is re-read
        after them (:func:`tilevision._graph.reread_after`).
    sweep : bool, optional
        Make the blocks slab by slab along the axis of most blocks: the halo tasks of
        slab ``s + 2`` wait until every block of slab ``s`` is made, so the pieces
        waiting for their neighbours stay within three slabs whatever order Dask
        picks. For outputs that are small (per-tile summaries); leave it off when
        Dask should be free to run the consumers of large outputs first.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> x = da.arange(60, chunks=20).reshape(6, 10).rechunk((3, 5))
    >>> def spread(block, block_info=None):
    ...     return block.max(keepdims=True)
    >>> ours = map_overlap_read(spread, [x], (1, 2), chunks=((1, 1), (1, 1)), dtype=x.dtype,
    ...                         meta=x._meta, name="doc-spread")
    >>> theirs = da.map_overlap(spread, x, depth={0: 1, 1: 2}, boundary="none", trim=False,
    ...                         chunks=((1, 1), (1, 1)), dtype=x.dtype)
    >>> ours.compute().tolist(), theirs.compute().tolist()
    ([[36, 39], [56, 59]], [[36, 39], [56, 59]])
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("map_overlap_read needs at least one array.")
    first = arrays[0]
    for a in arrays[1:]:
        if a.chunks != first.chunks:
            raise ValueError(
                f"arrays read together need the same chunks, got {first.chunks} and "
                f"{a.chunks}; rechunk them alike first."
            )
    ndim = first.ndim
    if len(depth) != ndim:
        raise ValueError(f"depth {tuple(depth)} does not match a {ndim}-D array.")
    depth = tuple(0 if len(c) == 1 else int(d) for d, c in zip(depth, first.chunks))
    for axis, (d, c) in enumerate(zip(depth, first.chunks)):
        if d > min(c):
            raise ValueError(
                f"a chunk of {min(c)} pixels along axis {axis} is thinner than the halo of {d} "
                "pixels; merge thin chunks first (tilevision._halo.prepare_chunks)."
            )
    numblocks = first.numblocks
    new_axes = len(chunks) - ndim
    if (
        new_axes < 0
        or tuple(len(c) for c in chunks[:ndim]) != numblocks
        or any(len(c) != 1 for c in chunks[ndim:])
    ):
        raise ValueError(
            f"output chunks {chunks} need one block per input block {numblocks} (then new "
            "axes of one block each)."
        )
    after = [a for a in after if is_dask_collection(a)]
    extra_arrays = [a for a in args if isinstance(a, da.Array)]
    for a in extra_arrays:
        if a.npartitions != 1:
            raise ValueError(f"args of map_overlap_read are global values of one chunk, not {a}.")

    graph = _Graph(arrays)
    blocks = list(np.ndindex(*numblocks))
    inlined = [
        all(inline_plan(graph, [(a.name, *index)]) is not None for index in blocks) for a in arrays
    ]
    shared = [a for a, i in zip(arrays, inlined) if not i]
    if after:  # shared chunks are read again after the global values
        shared = [reread_after(a, *after) for a in shared]
    slots, n = [], 0
    for i in inlined:
        slots.append(None if i else n)
        n += not i
    wait: list[TaskRef] = []
    dependencies: list[Any] = [*arrays, *shared, *extra_arrays]
    if after:
        blocker = checkpoint(*after)
        dependencies.append(blocker)
        wait = [TaskRef(blocker.key)]
    extra = List(
        *(
            TaskRef(next(iter(flatten(a.__dask_keys__())))) if isinstance(a, da.Array)
            else DataNode(None, a)
            for a in args
        )
    )  # fmt: skip
    exchange = f"overlap-{name}"  # the halo pieces, named as Dask's exchange
    halo_name, done_name, slab_name = exchange, f"overlap-done-{name}", f"overlap-slab-{name}"
    sweep_axis = int(np.argmax(numblocks))
    barriers = sweep and numblocks[sweep_axis] > 2 and any(depth)
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]
    info_shape = first.shape
    starts = [np.cumsum((0, *c[:-1])) for c in first.chunks]

    def neighbour(index: tuple[int, ...], side: tuple[int, ...]) -> tuple[int, ...] | None:
        other = tuple(i + o for i, o in zip(index, side))
        ok = all(
            (o == 0 or d > 0) and 0 <= i < n for i, o, d, n in zip(other, side, depth, numblocks)
        )
        return other if ok else None

    tasks: dict[Hashable, Task] = {}  # the halo exchange
    outputs: dict[Hashable, Task] = {}
    for index in blocks:
        keys = [(a.name, *index) for a, i in zip(arrays, inlined) if i]
        plan = inline_plan(graph, keys) if keys else None
        common = {
            "shared": List(*(TaskRef((a.name, *index)) for a in shared)),
            "values": List(*(TaskRef(k) for k in (plan.external if plan is not None else ()))),
            "slots": tuple(slots),
        }
        around = {o: n for o in offsets if (n := neighbour(index, o)) is not None}
        sides = tuple(around)
        if sides:
            slab = index[sweep_axis]
            barrier = [TaskRef((slab_name, slab - 2))] if barriers and slab >= 2 else []
            key = (halo_name, *index)
            tasks[key] = Task(
                key, _halo_pieces, plan, **common, sides=sides, depth=depth,
                wait=List(*wait, *barrier),
            )  # fmt: skip
        location = [(int(s[i]), int(s[i] + c[i])) for s, c, i in zip(starts, first.chunks, index)]
        info = {"chunk-location": index, "num-chunks": numblocks, "array-location": location,
                "shape": info_shape}  # fmt: skip
        key = (name, *index, *(0,) * new_axes)
        outputs[key] = Task(
            key, _call_on_block, plan, **common,
            pieces=List(*(TaskRef((halo_name, *n)) for n in around.values())),
            sides=sides,
            low=tuple(d if i > 0 else 0 for d, i in zip(depth, index)),
            high=tuple(d if i < n - 1 else 0 for d, i, n in zip(depth, index, numblocks)),
            extra=extra, func=func, kwargs=dict(kwargs or {}), block_info={0: info, None: info},
            wait=List(*wait),
        )  # fmt: skip
        if barriers:
            tasks[(done_name, *index)] = Task((done_name, *index), _done, TaskRef(key))
    if barriers:
        for slab in range(numblocks[sweep_axis] - 2):
            members = [TaskRef((done_name, *i)) for i in blocks if i[sweep_axis] == slab]
            tasks[(slab_name, slab)] = Task((slab_name, slab), _done, *members)
    # the exchange in its own layer (named "overlap-…", as Dask's) unless the barriers
    # tie it to the blocks both ways (then one layer: layers must not depend in a ring)
    inputs = {layer for c in dependencies for layer in c.__dask_layers__()}
    layers = {name: MaterializedLayer({**outputs, **tasks} if barriers else outputs)}
    deps = {name: set(inputs)}
    if tasks and not barriers:
        layers[exchange] = MaterializedLayer(tasks)
        deps[exchange] = set(inputs)
        deps[name].add(exchange)
    hlg = HighLevelGraph.merge(*(c.__dask_graph__() for c in dependencies))
    hlg = HighLevelGraph({**hlg.layers, **layers}, {**hlg.dependencies, **deps})
    return da.Array(hlg, name, chunks=chunks, dtype=dtype, meta=meta)
