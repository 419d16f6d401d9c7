"""Graph rewriting for multi-pass global statistics: re-read the input instead of holding it.

A global-then-local operation reads its input more than once: first to find a
global statistic (a range, a histogram, percentiles, a threshold), then to use
it in every tile. When both passes depend on the *same* input tasks, Dask keeps
every input chunk in memory from the first pass until the statistic is known —
the whole image. :func:`reread_after` gives the later pass its own copy of the
input's graph (new keys, the same computation) whose first tasks wait until the
statistic is ready, so each chunk is read, reduced and dropped in the first
pass, then read again in the second: memory stays bounded by the chunk size, at
the price of reading the input once more per pass.

This is THE helper for it; labelling (:mod:`tilevision.filters._label`) re-reads
its mask the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, TypeVar

import dask.array as da
from dask._task_spec import DataNode, GraphNode, Task, TaskRef, convert_legacy_task
from dask.base import clone_key, is_dask_collection, tokenize
from dask.blockwise import Blockwise
from dask.graph_manipulation import bind, checkpoint
from dask.highlevelgraph import HighLevelGraph

__all__ = ["reread_after"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def reread_after(array: T, *dependencies: Any, omit: Sequence[Any] = ()) -> T:
    """A copy of ``array``'s graph whose tasks start only after ``dependencies`` are computed.

    Use it for the later pass of a multi-pass global statistic: the pass that
    needs the statistic reads its input again from the copy instead of sharing
    the input's tasks with the pass that computed the statistic, so Dask can
    drop every input chunk as soon as the first pass has reduced it. The copy
    computes the same values (for a deterministic input: a source read again,
    a random array with a fixed seed), under new keys.

    What is copied is every task that ``array`` depends on, except:

    * the parts of the graph in ``omit`` (collections), which are shared;
    * the parts of the graph with a single output — arrays of one chunk (a 0-d
      global statistic such as a threshold computed upstream, a percentile
      pair), single tasks (a checkpoint, a source's file handle): they are
      shared rather than recomputed, since recomputing a statistic would repeat
      whole passes over the data, while holding it costs at most one chunk. (An
      image that is one chunk is thus shared too: a pass over it holds it whole
      anyway.)

    How it is copied:

    1. with :func:`dask.graph_manipulation.bind` when every copied graph layer
       is a ``Blockwise`` layer (``map_blocks``, elementwise arithmetic,
       ``from_zarr``) or a source whose tasks depend on nothing: the copy keeps
       the high-level layers that Dask fuses;
    2. otherwise (rechunk, slicing, stacking, ``map_overlap`` layers, which
       Dask 2026.8's ``bind`` copies wrongly: the copy keeps the original keys
       inside those tasks, or fails at compute time with "Missing dependency" or
       "Cannot fuse tasks with multiple outputs") by copying the tasks one by
       one: the copied part of the graph is built in full (no data is read);
    3. should both fail on an unforeseen graph, ``array`` itself is returned —
       the shared input: the result is still correct, only the memory bound is
       lost (a debug message is logged). Never an error.

    Parameters
    ----------
    array : dask.array.Array
        The input of the later pass. Anything else (a NumPy array) is returned
        unchanged: there is nothing to read again.
    *dependencies : dask collections or other objects
        What the copy waits for: the global statistics (0-d Dask arrays, other
        collections). Non-Dask values are ignored; with no Dask value at all,
        ``array`` is returned unchanged.
    omit : sequence of dask collections, optional
        Parts of ``array``'s graph to share instead of copying (as ``bind``'s
        ``omit``): e.g. an upstream result that is expensive to recompute.

    Returns
    -------
    dask.array.Array
        Same shape, chunks, dtype and values as ``array``. The new keys are
        deterministic (the same call gives the same keys).

    Notes
    -----
    The input must be deterministic: it is computed twice. Time grows by one
    read of the input per later pass; a task's peak memory stays about one
    chunk (plus halo) instead of the whole image.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.random.default_rng(0).random((40, 50), chunks=10)
    >>> total = x.sum()
    >>> again = reread_after(x, total)          # read after the sum is known
    >>> again.name != x.name, bool(((again / total).sum() == (x / total).sum()).compute())
    (True, True)
    """
    if not isinstance(array, da.Array):
        return array
    parents = [d for d in dependencies if is_dask_collection(d)]
    if not parents:
        return array
    omitted = [c for c in omit if is_dask_collection(c)]
    seed = tokenize("tilevision-reread", array.name, *parents, *omitted)
    try:
        graph = array.__dask_graph__()
        shared = {layer for c in omitted for layer in c.__dask_layers__()}
        to_copy, shared = _layers_to_copy(graph, array.name, shared)
    except Exception as error:  # pragma: no cover - only for graphs Dask itself rejects
        logger.debug("reread_after: graph of %s not inspected (%r); shared", array.name, error)
        return array
    if all(_bind_copies(graph, name) for name in to_copy):
        try:
            return _bound(array, graph, parents, shared, seed)  # type: ignore[return-value]
        except Exception as error:
            logger.debug("reread_after: bind failed on %s (%r)", array.name, error)
    try:
        return _copied(array, graph, parents, to_copy, seed)  # type: ignore[return-value]
    except Exception as error:
        logger.debug("reread_after: %s not copied (%r); the input is shared", array.name, error)
        return array


def _single_output(layer: Any) -> bool:
    """Whether a graph layer has one output: a Dask array of one chunk (a global summary
    such as a threshold), or one task (a checkpoint, a source's file handle)."""
    annotations = getattr(layer, "collection_annotations", None) or {}
    chunks = annotations.get("chunks")
    if annotations.get("type") == "dask.array.core.Array" and chunks is not None:
        return all(len(c) == 1 for c in chunks)
    return len(layer.get_output_keys()) == 1


def _layers_to_copy(
    graph: HighLevelGraph, top: str, shared: set[str]
) -> tuple[set[str], set[str]]:
    """(layers to copy, layers to share): all layers under ``top``, stopping at shared ones."""
    to_copy: set[str] = set()
    shared = set(shared)
    todo = [top]
    while todo:
        name = todo.pop()
        if name in to_copy or name in shared:
            continue
        if name != top and _single_output(graph.layers[name]):
            shared.add(name)
            continue
        to_copy.add(name)
        todo.extend(graph.dependencies[name])
    return to_copy, shared


def _bind_copies(graph: HighLevelGraph, name: str) -> bool:
    """Whether ``bind`` copies this layer correctly (Dask 2026.8): a Blockwise layer, or
    a source layer whose tasks depend on nothing (not even on each other)."""
    layer = graph.layers[name]
    if isinstance(layer, Blockwise):
        return True
    return not graph.dependencies[name] and all(
        isinstance(node, GraphNode) and not node.dependencies for node in layer.values()
    )


class _Layers:
    """A stand-in collection for graph layers that ``bind(omit=...)`` should share."""

    def __init__(self, graph: HighLevelGraph, names: Iterable[str]) -> None:
        self.graph = graph
        self.names = tuple(sorted(names))

    def __dask_graph__(self) -> HighLevelGraph:
        return self.graph

    def __dask_layers__(self) -> tuple[str, ...]:
        return self.names

    def __dask_keys__(self) -> list[Any]:  # pragma: no cover - not called by bind
        return []

    def __dask_tokenize__(self) -> Hashable:
        return self.names


def _bound(
    array: da.Array, graph: HighLevelGraph, parents: list[Any], shared: set[str], seed: str
) -> da.Array:
    omit = [_Layers(graph, shared & set(graph.layers))] if shared else None
    return bind(array, parents, omit=omit, seed=seed)


def _after(value: Any, *_: Any) -> Any:
    """The first argument; the others only make the task wait for them."""
    return value


def _copied(
    array: da.Array, graph: HighLevelGraph, parents: list[Any], layers: set[str], seed: str
) -> da.Array:
    """Copy the tasks of ``layers`` one by one; those that read nothing copied wait for
    the blocker (a checkpoint of ``parents``)."""
    blocker = checkpoint(*parents)
    wait = TaskRef(blocker.key)
    keys: set[Any] = set()
    for name in layers:
        keys |= graph.layers[name].get_output_keys()
    all_keys = graph.get_all_external_keys()
    names: dict[str, str] = {}

    def rename(key: Any) -> Any:  # clone_key, tokenizing each name once
        head = key[0] if isinstance(key, tuple) else key
        if head not in names:
            names[head] = clone_key(head, seed)
        return (names[head], *key[1:]) if isinstance(key, tuple) else names[head]

    tasks: dict[Any, GraphNode] = {}
    for name in layers:
        for key, value in graph.layers[name].items():
            node = value
            if not isinstance(node, GraphNode):  # an old-style task or a literal
                node = convert_legacy_task(key, value, all_keys)
                if not isinstance(node, GraphNode):
                    node = DataNode(key, node)
            new_key = rename(key)
            subs = {dep: rename(dep) for dep in node.dependencies if dep in keys}
            if subs:
                tasks[new_key] = node.substitute(subs, key=new_key)
            else:  # reads nothing copied: a source task; make it wait
                tasks[new_key] = Task(
                    new_key, _after, node, wait, _data_producer=node.data_producer
                )
    name = rename(array.name)
    hlg = HighLevelGraph.from_collections(name, tasks, dependencies=[array, blocker])
    return da.Array(hlg, name, chunks=array.chunks, meta=array._meta)
