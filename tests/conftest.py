from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

import tilevision

DATA = Path(tilevision.__file__).parent / "datasets" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data bundled with the package."""
    return DATA


def no_leftovers(folder: Path) -> list[str]:
    """Names in ``folder`` that an interrupted write could have left behind (not the
    checkpoints of an interrupted ``analyze``: see :func:`checkpoints`)."""
    kept = checkpoints(folder)
    return sorted(p.name for p in folder.iterdir() if "tilevision-" in p.name and p not in kept)


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoint folders of interrupted ``analyze(output=...)`` runs in ``folder``
    (committed tile blocks that a re-run resumes from; removed when it completes)."""
    from tilevision._checkpoint import CHECKPOINT_MARKER

    return sorted(p for p in folder.iterdir() if CHECKPOINT_MARKER in p.name)


class TaskCounter(SchedulerPlugin):
    """A scheduler plugin counting the tasks the scheduler ran (processing → memory).

    Add it with ``cluster.scheduler.add_plugin(counter, name="task-counter")``; ``take()``
    returns the count so far and starts again from 0.
    """

    def __init__(self) -> None:
        self.ran = 0

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish == "memory":
            self.ran += 1

    def take(self) -> int:
        ran, self.ran = self.ran, 0
        return ran


class TaskKeys(SchedulerPlugin):
    """The keys of the tasks the scheduler ran (processing → memory)."""

    def __init__(self) -> None:
        self.ran: set[str] = set()

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish == "memory":
            self.ran.add(str(key))

    def take(self) -> set[str]:
        ran, self.ran = self.ran, set()
        return ran


@pytest.fixture(scope="module")
def keyed_cluster() -> Iterator[tuple[Client, TaskKeys]]:
    """A threaded LocalCluster (one worker, two threads) and the keys of the tasks it ran."""
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as local,
        Client(local) as client,
    ):
        keys = TaskKeys()
        local.scheduler.add_plugin(keys, name="task-keys")
        yield client, keys
