"""The one place that creates or connects Dask clusters.

The rest of the library takes a ``distributed.Client`` (or nothing, and uses the
current scheduler); only :func:`client` makes one.
"""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["client", "current_client", "dashboard_link"]

#: seconds to wait for a scheduler address to answer before giving up
CONNECT_TIMEOUT = 10


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def client(
    spec: Any = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    processes: bool = False,
    memory_limit: str | float | None = "auto",
    timeout: float = CONNECT_TIMEOUT,
    **cluster_kwargs: Any,
) -> Any:
    """Return a ``distributed.Client``: re-used, connected, or an embedded local cluster.

    Parameters
    ----------
    spec : None, str or Client, optional
        ``None``: the client already running in this process, else a new
        ``LocalCluster`` sized to the machine (threads by default: on a small
        machine they beat processes, see PERFORMANCE.md). A string: the address
        of a running scheduler (``"tcp://host:8786"``). A ``Client``: returned as is.
    n_workers, threads_per_worker, processes, memory_limit
        Sizing of a new ``LocalCluster`` (default: one worker with a thread per core).
    timeout : float, optional
        Seconds to wait for a scheduler address before raising ``TimeoutError``.
    **cluster_kwargs
        Passed to ``LocalCluster``.

    Returns
    -------
    distributed.Client

    Examples
    --------
    >>> from tilevision.cluster import client
    >>> c = client(n_workers=1, threads_per_worker=1)
    >>> c.submit(sum, [1, 2]).result()
    3
    >>> c.close(); c.cluster.close()
    """
    from distributed import Client, LocalCluster

    if isinstance(spec, Client):
        return spec
    if spec is None:
        existing = current_client()
        if existing is not None:
            return existing
        cores = os.cpu_count() or 1
        if processes:
            n_workers = n_workers or cores
            threads_per_worker = threads_per_worker or 1
        else:
            n_workers = n_workers or 1
            threads_per_worker = threads_per_worker or cores
        cluster_kwargs.setdefault("dashboard_address", ":8787" if _port_free(8787) else ":0")
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            memory_limit=memory_limit,
            **cluster_kwargs,
        )
        return Client(cluster)
    if isinstance(spec, str):
        if "://" not in spec and ":" not in spec:
            raise ValueError(
                f"{spec!r} is not a scheduler address: pass None for a local cluster, or an "
                "address such as 'tcp://10.0.0.5:8786'."
            )
        try:
            return Client(spec, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise TimeoutError(
                f"no Dask scheduler answered at {spec} within {timeout:g} s ({exc}). Check the "
                "address and that the scheduler is running, or pass client=None to start a "
                "local cluster."
            ) from exc
    raise TypeError(
        f"client must be None, a scheduler address or a distributed.Client, "
        f"not {type(spec).__name__}."
    )


def current_client() -> Any:
    """The ``distributed.Client`` already running in this process, or ``None``.

    Examples
    --------
    >>> current_client() is None
    True
    """
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return get_client()
    except ValueError:
        return None


def dashboard_link(c: Any) -> str | None:
    """The dashboard URL of a client, or ``None`` if it has none.

    Examples
    --------
    >>> dashboard_link(None) is None
    True
    """
    if c is None:
        return None
    try:
        return c.dashboard_link
    except (AttributeError, KeyError):
        return None
