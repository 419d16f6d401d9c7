"""Checkpoint of one image's tile values: blocks committed to disk as they finish.

``tilevision.analyze(..., output=...)`` of a very large image computes the tile values
(features and the additive statistics behind the descriptor) block by block; each block
is written to a checkpoint folder beside the output as soon as it is computed, then marked
done. A run that is killed (SIGKILL, a node failure, a job past its wall time) leaves the
committed blocks; the same call again computes only the blocks without a mark, and the
rest of the analysis (descriptor, classification, report) is computed from the stored
values. The checkpoint is removed once the output folder is complete (and by a failed
run that committed nothing).

Layout of ``.<output name>.tilevision-checkpoint-<inputs key>/``::

    tiles.zarr/     one float64 Zarr array: the tile grid × the recipe's values; one Zarr
                    chunk per block (so that blocks never share a chunk); created under a
                    temporary name and renamed, so it is either absent or complete
    done/<i>-<j>    one empty file per committed block, created (write-then-rename) only
                    after the block's values are written: a block without its mark is
                    never read, whatever its chunk holds
    global-values.npz
                    the first pass of a global-then-local recipe (grey-level ranges,
                    means, thresholds over the whole image), committed before any block
                    is computed: a resumed run does not read the whole image again

Writes happen in the calling process (blocks are gathered from the cluster as they
finish), so workers need no access to the output folder; the stored values are read
back in the calling process too.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from .features._engine import TilePlan

__all__ = ["CHECKPOINT_MARKER", "Checkpoint", "commit_tiles"]

CHECKPOINT_MARKER = ".tilevision-checkpoint-"
STORE = "tiles.zarr"
DONE = "done"
GLOBALS = "global-values.npz"


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint folder of one output and one set of inputs."""

    folder: Path

    @classmethod
    def of(cls, output: Path, key: str) -> Checkpoint:
        """The checkpoint of ``output`` for the inputs identified by ``key``."""
        return cls(output.parent / f".{output.name}{CHECKPOINT_MARKER}{key}")

    @property
    def store(self) -> Path:
        return self.folder / STORE

    def done(self) -> set[tuple[int, ...]]:
        """The indices of the committed blocks."""
        marks = self.folder / DONE
        if not marks.is_dir():
            return set()
        return {
            tuple(int(i) for i in p.name.split("-"))
            for p in marks.iterdir()
            if not p.name.startswith(".")
        }

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def remove_others(self) -> list[Path]:
        """Remove the checkpoints of the same output for other inputs (they can never
        be resumed: another source, recipe, model or version); return them."""
        prefix = self.folder.name.split(CHECKPOINT_MARKER)[0] + CHECKPOINT_MARKER
        others = [
            p
            for p in self.folder.parent.glob(f"{glob.escape(prefix)}*")
            if p.name != self.folder.name and p.is_dir()
        ]
        for path in others:
            shutil.rmtree(path, ignore_errors=True)
        return others


def _create_store(checkpoint: Checkpoint, shape: tuple[int, ...], chunks: tuple[int, ...]) -> None:
    """Create the empty Zarr array under a temporary name, then rename it into place."""
    import zarr

    checkpoint.folder.mkdir(parents=True, exist_ok=True)
    (checkpoint.folder / DONE).mkdir(exist_ok=True)
    tmp = checkpoint.folder / f".{STORE}-{uuid.uuid4().hex[:12]}"
    zarr.create_array(
        str(tmp), shape=shape, chunks=chunks, dtype="float64", fill_value=np.nan, zarr_format=2
    )
    os.replace(tmp, checkpoint.store)


def _open_store(checkpoint: Checkpoint, shape: tuple[int, ...], chunks: tuple[int, ...]) -> Any:
    """The checkpoint's array; a missing or unusable one is (re)created empty. A stored
    array keeps its blocks (any block shape over the tiles resumes)."""
    import zarr

    if checkpoint.store.exists():
        try:
            array = zarr.open_array(str(checkpoint.store), mode="r+")
            if array.shape == shape and array.chunks[-1] == shape[-1]:
                return array
        except (OSError, ValueError, KeyError):
            pass
        checkpoint.remove()
    for stale in checkpoint.folder.glob(f".{STORE}-*"):  # a killed creation
        shutil.rmtree(stale, ignore_errors=True)
    _create_store(checkpoint, shape, chunks)
    return zarr.open_array(str(checkpoint.store), mode="r+")


def _region(index: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks))


def commit_block(array: Any, checkpoint: Checkpoint, index: tuple[int, ...], values: Any) -> None:
    """Write one block's values, then mark it done (the mark is renamed into place)."""
    array[_region(index, array.chunks)] = np.asarray(values)
    mark = checkpoint.folder / DONE / "-".join(map(str, index))
    tmp = mark.with_name(f".{mark.name}-{uuid.uuid4().hex[:12]}")
    tmp.touch()
    os.replace(tmp, mark)


def _block_grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks)))


@dataclass(frozen=True)
class Committed:
    """What :func:`commit_tiles` did: the stored plan and the block counts."""

    plan: TilePlan
    blocks: int
    reused: int


def commit_tiles(
    plan: TilePlan,
    checkpoint: Checkpoint,
    cluster: Any = None,
    *,
    progress: bool = False,
) -> Committed:
    """Compute the blocks of ``plan`` that ``checkpoint`` lacks, committing each as it
    finishes; return the plan over the stored values.

    Parameters
    ----------
    plan : TilePlan
        The lazy tile values (:func:`tilevision.features._engine.plan_tiles`).
    checkpoint : Checkpoint
        Where blocks are committed; blocks already marked done are not computed.
    cluster : distributed.Client, optional
        Compute the blocks there, gathering each as it finishes; without one, on Dask's
        current local scheduler.
    progress : bool, optional
        Print the count of committed blocks as they are written.

    Returns
    -------
    Committed
        ``plan`` with its values read lazily from the checkpoint, the number of blocks
        and how many of them an earlier run had already committed.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from tilevision import Recipe
    >>> from tilevision.features._engine import plan_tiles
    >>> image = np.arange(64.0 * 64).reshape(64, 64)
    >>> plan = plan_tiles(image, Recipe(["intensity"], tile=16))
    >>> checkpoint = Checkpoint.of(Path(tempfile.mkdtemp()) / "out", "0123")
    >>> done = commit_tiles(plan, checkpoint)  # (a small image: one block)
    >>> done.blocks, done.reused
    (1, 0)
    >>> bool((done.plan.vector.compute() == plan.vector.compute()).all())
    True
    >>> commit_tiles(plan, checkpoint).reused  # everything is there: nothing is computed
    1
    """
    ndim = plan.ctx.ndim
    chunks = (*plan.blocks, plan.vector.shape[-1])  # one Zarr chunk per block
    array = _open_store(checkpoint, plan.vector.shape, chunks)
    chunks = tuple(array.chunks)  # as stored (a resumed run keeps the first run's blocks)
    vector = plan.vector.rechunk(chunks)
    grid = list(_block_grid(plan.vector.shape[:ndim], chunks[:ndim]))
    done = checkpoint.done() & set(grid)
    missing = [index for index in grid if index not in done]
    if missing:
        report = _counter(len(grid), len(done), progress)
        try:
            if plan.global_values is not None:
                values = _global_values(plan, checkpoint, cluster, progress)
                vector = plan.with_global_values(values).vector.rechunk(chunks)
            if cluster is None:
                _commit_local(vector, array, checkpoint, missing, report)
            else:
                _commit_on_cluster(vector, array, checkpoint, missing, cluster, report)
        except BaseException:
            if not checkpoint.done() and not (checkpoint.folder / GLOBALS).exists():
                checkpoint.remove()  # nothing to resume from: leave nothing behind
            raise
    # (in the plan's blocks, as the tile Dataset is without a checkpoint: the sums of the
    # descriptor add up in the same order, to the last bit)
    stored = da.from_zarr(array, chunks=chunks).rechunk(plan.block_chunks())
    return Committed(plan.with_vector(stored), len(grid), len(done))


def _global_values(
    plan: TilePlan, checkpoint: Checkpoint, cluster: Any, progress: bool
) -> dict[str, dict[str, np.ndarray]]:
    """The plan's global values (its first pass over the whole image): read from the
    checkpoint, or computed and committed there (write-then-rename) before any block."""
    path = checkpoint.folder / GLOBALS
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                values: dict[str, dict[str, np.ndarray]] = {}
                for key in stored.files:
                    family, name = key.split("/", 1)
                    values.setdefault(family, {})[name] = stored[key]
            if progress:
                print("resuming: the global values were committed by an earlier run", flush=True)
            return values
        except (OSError, ValueError):  # unreadable: computed again
            path.unlink(missing_ok=True)
    if progress:
        print("computing the global values (one pass over the image) …", flush=True)
    lazy = plan.global_values
    values = lazy.compute() if cluster is None else cluster.compute(lazy).result()
    flat = {f"{family}/{name}": v for family, vals in values.items() for name, v in vals.items()}
    tmp = path.with_name(f".{path.name}-{uuid.uuid4().hex[:12]}.npz")
    np.savez(tmp, **flat)
    os.replace(tmp, path)
    return values


def _commit_local(
    vector: da.Array, array: Any, checkpoint: Checkpoint, missing: list, report: Callable
) -> None:
    """On a local scheduler: one write task per block, in the graph (same process)."""

    def write(index: tuple[int, ...], values: np.ndarray) -> None:
        commit_block(array, checkpoint, index, values)
        report()

    tasks = [
        dask.delayed(write, pure=False)(index, vector.blocks[(*index, 0)]) for index in missing
    ]
    dask.compute(*tasks)


def _commit_on_cluster(
    vector: da.Array,
    array: Any,
    checkpoint: Checkpoint,
    missing: list,
    cluster: Any,
    report: Callable,
) -> None:
    """On a cluster: every block at once, each gathered and written here as it finishes."""
    from distributed import as_completed

    futures = cluster.compute([vector.blocks[(*index, 0)] for index in missing])
    where = {future.key: index for future, index in zip(futures, missing)}
    try:
        for future, values in as_completed(futures, with_results=True):
            commit_block(array, checkpoint, where[future.key], values)
            report()
            future.release()
    finally:
        for future in futures:  # an error or an interrupt: stop what is left
            future.cancel()


def _counter(total: int, already: int, enabled: bool) -> Callable[[], None]:
    """A callable reporting ``committed k/n tile blocks`` on standard output: one line
    redrawn in a terminal, a new line every tenth of the blocks in a log file."""
    count = [already]
    lock = threading.Lock()
    terminal = sys.stdout.isatty()
    if enabled and already:
        print(f"resuming: {already} of {total} tile blocks already committed", flush=True)

    def report() -> None:
        with lock:
            count[0] += 1
            k = count[0]
        if not enabled:
            return
        if terminal:
            end = "\n" if k == total else ""
            sys.stdout.write(f"\rcommitted {k}/{total} tile blocks{end}")
        elif k == total or k * 10 // total != (k - 1) * 10 // total:
            sys.stdout.write(f"committed {k}/{total} tile blocks\n")
        sys.stdout.flush()

    return report
