"""The one place that creates or connects Dask clusters.

The rest of the library takes a ``distributed.Client`` (or nothing, and uses the
current scheduler); only :func:`client` makes one: an embedded ``LocalCluster``, a
connection to a running scheduler, or a dask-jobqueue cluster (SLURM, PBS, ...)
described by a profile in Dask's ``jobqueue`` configuration.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._tls import make_certificates, security

__all__ = [
    "JOBQUEUE_CLASSES",
    "client",
    "current_client",
    "dashboard_link",
    "jobqueue_cluster",
    "make_certificates",
    "security",
    "session",
]

#: seconds to wait for a scheduler address to answer before giving up
CONNECT_TIMEOUT = 10

#: dask-jobqueue cluster classes by profile name (a custom profile's section in the
#: ``jobqueue`` config names one of these in ``cluster-type``, or starts with it)
JOBQUEUE_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "moab": "MoabCluster",
    "oar": "OARCluster",
}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _dashboard_address() -> str:
    """Dask's usual dashboard port when it is free, else any free port.

    (Asking Dask for a busy port makes it warn and leak the socket of its first try.)
    """
    return ":8787" if _port_free(8787) else ":0"


def client(
    spec: Any = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    processes: bool = False,
    memory_limit: str | float | None = "auto",
    timeout: float = CONNECT_TIMEOUT,
    jobs: int | None = None,
    adapt: tuple[int, int] | None = None,
    security: Any = None,
    **cluster_kwargs: Any,
) -> Any:
    """Return a ``distributed.Client``: re-used, connected, local, or on a batch system.

    Parameters
    ----------
    spec : None, str or Client, optional
        ``None``: the client already running in this process, else a new
        ``LocalCluster`` sized to the machine (threads by default: on a small
        machine they beat processes, see PERFORMANCE.md). A string with ``:``: the
        address of a running scheduler (``"tcp://host:8786"``). Any other string: a
        dask-jobqueue profile, ``"slurm"``, ``"pbs"`` (see :data:`JOBQUEUE_CLASSES`)
        or the name of a section of Dask's ``jobqueue`` config (see
        :func:`jobqueue_cluster`). A ``Client``: returned as is.
    n_workers, threads_per_worker, processes, memory_limit
        Sizing of a new ``LocalCluster`` (default: one worker with a thread per core).
    timeout : float, optional
        Seconds to wait for a scheduler address before raising ``TimeoutError``.
    jobs : int, optional
        For a profile: how many batch jobs to submit (default 1). Ignored otherwise.
    adapt : (int, int), optional
        For a profile: scale adaptively between ``adapt[0]`` and ``adapt[1]`` jobs
        with the load, instead of a fixed ``jobs``.
    security : path, distributed.Security or True, optional
        Require TLS: a certificate folder made by :func:`make_certificates` (or
        ``tilevision cluster certs``), a ``Security``, or ``True`` for throw-away
        certificates (a local cluster only: other processes cannot join it). The
        scheduler, workers and this client then only talk encrypted, to peers holding
        a certificate of the same authority.
    **cluster_kwargs
        Passed to ``LocalCluster``, or to the dask-jobqueue class of a profile
        (``cores``, ``memory``, ``queue``, ``walltime``, ``interface``, ...).

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
    security = _security(security)
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
        cluster_kwargs.setdefault("dashboard_address", _dashboard_address())
        if security is not None:
            cluster_kwargs.update(security=security, protocol="tls://")
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
            if security is not None:
                cluster_kwargs["security"] = security
            return _jobqueue_client(spec, jobs, adapt, cluster_kwargs)
        try:
            return Client(spec, timeout=timeout, security=security)
        except (OSError, TimeoutError) as exc:
            raise TimeoutError(
                f"no Dask scheduler answered at {spec} within {timeout:g} s ({exc}). Check the "
                "address and that the scheduler is running, or pass client=None to start a "
                "local cluster."
            ) from exc
    raise TypeError(
        f"client must be None, a scheduler address, a jobqueue profile name or a "
        f"distributed.Client, not {type(spec).__name__}."
    )


def _security(spec: Any) -> Any:
    """A ``distributed.Security`` requiring TLS, from what ``client(security=...)`` got."""
    from distributed import Security

    from ._tls import security

    if spec is None or spec is False:
        return None
    if spec is True:
        return Security.temporary()
    if isinstance(spec, Security):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return security(spec)
    raise TypeError(
        f"security must be a certificate folder, a distributed.Security or True, not "
        f"{type(spec).__name__}."
    )


def _import_jobqueue(profile: str) -> Any:
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ImportError(
            f"the {profile!r} profile needs dask-jobqueue: pip install 'tilevision[cluster]'."
        ) from exc
    return dask_jobqueue


def _profile_kind(profile: str) -> str:
    """The batch system (a key of :data:`JOBQUEUE_CLASSES`) of a profile."""
    import dask

    if profile in JOBQUEUE_CLASSES:
        return profile
    section = dask.config.get(f"jobqueue.{profile}", default=None)
    if not isinstance(section, dict):
        raise ValueError(
            f"{profile!r} is neither a scheduler address (such as 'tcp://10.0.0.5:8786') nor "
            f"a jobqueue profile: use one of {sorted(JOBQUEUE_CLASSES)}, or add a "
            f"'jobqueue: {profile}:' section to Dask's config (~/.config/dask/jobqueue.yaml)."
        )
    kind = section.get("cluster-type") or section.get("cluster_type")
    if kind is None:
        kind = next((k for k in JOBQUEUE_CLASSES if profile.startswith(k)), None)
    if kind not in JOBQUEUE_CLASSES:
        raise ValueError(
            f"the jobqueue config section {profile!r} does not say which batch system it is "
            f"for: add 'cluster-type: slurm' (one of {sorted(JOBQUEUE_CLASSES)}) to it."
        )
    # a custom section only sets what differs: the batch system's defaults fill in the
    # rest (as defaults, so the user's own values always win)
    base = dask.config.get(f"jobqueue.{kind}", default={})
    dask.config.update_defaults({"jobqueue": {profile: base}})
    return kind


def jobqueue_cluster(profile: str, **kwargs: Any) -> Any:
    """A dask-jobqueue cluster for ``profile``, not yet scaled (no job submitted).

    ``profile`` is ``"slurm"``, ``"pbs"`` (or another key of :data:`JOBQUEUE_CLASSES`),
    whose settings come from the same-named section of Dask's ``jobqueue`` config; or
    the name of another section of that config, which says its batch system in
    ``cluster-type`` (or starts with it, like ``slurm-gpu``). Keyword arguments
    override the config.

    Parameters
    ----------
    profile : str
        The profile name.
    **kwargs
        Passed to the dask-jobqueue class (``cores``, ``memory``, ``queue``,
        ``walltime``, ``interface``, ``log_directory``, ``job_extra_directives``, ...).

    Returns
    -------
    dask_jobqueue.JobQueueCluster
        Call ``scale(jobs=...)`` or ``adapt(...)`` to submit jobs; ``close()`` cancels them.

    Examples
    --------
    >>> cluster = jobqueue_cluster("slurm", cores=2, memory="4GiB", walltime="01:00:00")
    >>> print(cluster.job_script())  # doctest: +ELLIPSIS
    #!/usr/bin/env bash
    ...
    #SBATCH -t 01:00:00
    ...
    >>> cluster.close()
    """
    dask_jobqueue = _import_jobqueue(profile)  # first: it loads its config defaults
    name = JOBQUEUE_CLASSES[_profile_kind(profile)]
    import dask

    if profile not in JOBQUEUE_CLASSES:
        kwargs.setdefault("config_name", profile)
    section = dask.config.get(f"jobqueue.{profile}", default={})
    missing = [k for k in ("cores", "memory") if kwargs.get(k) is None and section.get(k) is None]
    if missing:
        # checked here: dask-jobqueue would fail half-way through building the cluster
        raise ValueError(
            f"the {profile!r} profile does not say how many cores and how much memory a "
            f"job has ({' and '.join(missing)} missing): pass cores= and memory=, or set them "
            f"in the 'jobqueue: {profile}:' section of Dask's config "
            "(~/.config/dask/jobqueue.yaml)."
        )
    options = dict(section.get("scheduler-options") or {})
    options.update(kwargs.get("scheduler_options") or {})
    options.setdefault("dashboard_address", _dashboard_address())
    kwargs["scheduler_options"] = options
    return getattr(dask_jobqueue, name)(**kwargs)


def _jobqueue_client(
    profile: str, jobs: int | None, adapt: tuple[int, int] | None, kwargs: dict[str, Any]
) -> Any:
    from distributed import Client

    cluster = jobqueue_cluster(profile, **kwargs)
    try:
        if adapt is not None:
            low, high = adapt
            cluster.adapt(minimum_jobs=low, maximum_jobs=high)
        else:
            cluster.scale(jobs=1 if jobs is None else jobs)
        return Client(cluster)
    except BaseException:
        cluster.close()
        raise


@contextmanager
def session(spec: Any = None, **kwargs: Any) -> Iterator[Any]:
    """:func:`client` as a context: on exit, close what it made (client and cluster).

    A client that was already running, or passed in, is left open.

    Parameters
    ----------
    spec, **kwargs
        As for :func:`client`.

    Examples
    --------
    >>> with session(n_workers=1, threads_per_worker=1) as c:
    ...     c.submit(sum, [1, 2]).result()
    3
    >>> current_client() is None
    True
    """
    from distributed import Client

    existing = spec if isinstance(spec, Client) else current_client() if spec is None else None
    c = client(spec, **kwargs)
    try:
        yield c
    finally:
        if c is not existing:
            cluster = c.cluster
            c.close()
            if cluster is not None:
                cluster.close()


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
