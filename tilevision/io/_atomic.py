"""Write-then-rename: outputs appear under their final name only when complete."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_directory", "check_destination", "remove_stale"]

PARTIAL_MARKER = ".tilevision-partial-"
#: an output being replaced is first renamed to this (removed once the new one is in place)
OLD_MARKER = ".tilevision-old-"
#: the end of a temporary name: random tag, id and host (hashed) of the writing process
_OWNER = re.compile(r"-[0-9a-f]{12}-(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{8})$")
#: temporaries of another host, or of unknown owner, older than this are stale (seconds)
STALE_AFTER = 24 * 3600.0


def check_destination(dest: str | os.PathLike[str], overwrite: bool) -> Path:
    """Validate an output path and return it as a :class:`~pathlib.Path`.

    Raises ``FileExistsError`` when ``dest`` exists and ``overwrite`` is false, and
    ``ValueError`` for a remote URL (outputs are written locally, then renamed).
    """
    text = os.fspath(dest)
    if "://" in text and not text.startswith("file://"):
        raise ValueError(
            f"cannot write to {text!r}: tilevision writes outputs to a local path (then "
            "renames them into place, so that an interrupted run leaves nothing behind). "
            "Write locally and copy the finished store, e.g. with fsspec or `aws s3 sync`."
        )
    path = Path(text.removeprefix("file://")).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it, "
            "or choose another destination."
        )
    if not path.parent.exists():
        raise FileNotFoundError(
            f"cannot write {path}: the folder {path.parent} does not exist; create it first."
        )
    return path


@contextlib.contextmanager
def atomic_directory(dest: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces ``dest`` when the block succeeds.

    On any exception (including ``KeyboardInterrupt``) the temporary folder is
    removed and ``dest`` is left as it was. The temporary name starts with a dot
    and contains ``.tilevision-partial-`` so a killed process leaves nothing that
    looks like a finished output; it ends with the id and host of the writing process,
    so that :func:`remove_stale` can tell what a killed process left behind.
    """
    tag = _tag()
    tmp = dest.parent / f".{dest.name}{PARTIAL_MARKER}{tag}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove_until_gone(tmp)
        raise
    if dest.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{dest} appeared while it was being written; not replaced.")
        trash = dest.parent / f".{dest.name}{OLD_MARKER}{tag}"
        os.replace(dest, trash)
        os.replace(tmp, dest)
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)
    else:
        os.replace(tmp, dest)


def _remove_until_gone(path: Path, settle: float = 0.2, timeout: float = 10.0) -> None:
    """Remove ``path`` and keep removing it until it stays gone for ``settle`` seconds.

    When one task of a threaded Dask computation fails, the call returns at once while
    tasks already running on other threads finish — and may write another chunk into
    the folder after it was removed. Waiting until nothing reappears leaves no
    half-written output behind.
    """
    deadline = time.monotonic() + timeout
    while True:
        shutil.rmtree(path, ignore_errors=True)
        quiet_until = time.monotonic() + settle
        while time.monotonic() < quiet_until and not path.exists():
            time.sleep(0.02)
        if not path.exists() or time.monotonic() > deadline:
            return


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _tag() -> str:
    """The unique end of a temporary name: ``<random>-<process id>-<host hash>``."""
    return f"{uuid.uuid4().hex[:12]}-{os.getpid()}-{_host()}"


def _is_stale(path: Path, now: float, max_age: float) -> bool:
    owner = _OWNER.search(path.name)
    if owner is not None and owner["host"] == _host():
        import psutil

        return not psutil.pid_exists(int(owner["pid"]))
    try:  # another host's (a shared file system), or of unknown owner: by age
        return now - path.lstat().st_mtime >= max_age
    except FileNotFoundError:
        return False


def remove_stale(
    folder: Path, name: str | None = None, max_age: float = STALE_AFTER
) -> list[Path]:
    """Remove the temporaries that killed writers left in ``folder``; return them.

    A process killed inside :func:`atomic_directory` (SIGKILL, a node failure, a job
    past its wall time) leaves its hidden ``.<name>.tilevision-partial-…`` folder
    (and, when killed while replacing, ``.<name>.tilevision-old-…``). They are never
    read as results; this removes those whose writer is gone: on this host, those of
    a process that no longer runs; otherwise those at least ``max_age`` seconds old.
    The temporaries of writers still running are left alone.

    Parameters
    ----------
    folder : Path
        The folder holding the outputs.
    name : str, optional
        Only the temporaries of the output ``folder / name``.
    max_age : float, optional
        Age in seconds from which a temporary of another host (or of unknown
        owner) is stale.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / ".out.tilevision-partial-0123456789ab-999999999-00000000").mkdir()
    >>> [p.name for p in remove_stale(root, max_age=0)]
    ['.out.tilevision-partial-0123456789ab-999999999-00000000']
    >>> list(root.iterdir())
    []
    >>> root.rmdir()
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefix = "." if name is None else f".{name}."
    now = time.time()
    removed = []
    for path in folder.iterdir():
        marked = PARTIAL_MARKER in path.name or OLD_MARKER in path.name
        if not (marked and path.name.startswith(prefix) and _is_stale(path, now, max_age)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed
