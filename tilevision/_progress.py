"""Progress of long computations: one place decides how it is shown.

* on a ``distributed`` cluster in a Jupyter kernel: Dask's progress widget (when
  ``ipywidgets`` is installed; otherwise the dashboard link is the progress);
* on a cluster in a terminal: Dask's text progress bar, on standard output;
* on Dask's local schedulers: :class:`dask.diagnostics.ProgressBar`.

Nothing here computes anything that the caller did not ask for.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["in_notebook", "local_progress", "show_progress"]


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (where widgets can be shown).

    Examples
    --------
    >>> in_notebook()
    False
    """
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def show_progress(futures: Any) -> None:
    """Show the progress of cluster ``futures``; in a terminal, block until they finish.

    In a notebook the widget is displayed and the call returns at once; in a terminal
    Dask's text bar is drawn on standard output until every future is done (an error
    in a future shows in the bar and is raised later by ``result()``).

    Parameters
    ----------
    futures : distributed.Future or list of them
        What to follow.

    Examples
    --------
    >>> from distributed import Client
    >>> with Client(processes=False, n_workers=1, dashboard_address=":0") as c:
    ...     future = c.submit(sum, [1, 2])
    ...     show_progress(future)  # doctest: +ELLIPSIS
    ...     future.result()
    [...] | 100% Completed | ...
    3
    """
    from distributed import progress

    if in_notebook():
        if not _widgets_available():
            return
        from IPython.display import display

        display(progress(futures, notebook=True, multi=True))
        return
    progress(futures, notebook=False)
    print(flush=True)


@contextlib.contextmanager
def local_progress(enabled: bool = True, minimum: float = 1.0) -> Iterator[None]:
    """A progress bar for computations on Dask's local schedulers (no cluster).

    Parameters
    ----------
    enabled : bool, optional
        ``False`` makes this a no-op context.
    minimum : float, optional
        Computations shorter than this many seconds draw no bar.

    Examples
    --------
    >>> import dask.array as da
    >>> with local_progress(minimum=10):
    ...     int(da.ones(4, chunks=2).sum().compute())
    4
    """
    if not enabled:
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar(minimum=minimum, dt=0.5):
        yield
