"""Remote Zarr stores (``s3://``, ``gs://``, … through fsspec): clear errors before reading.

tilevision configures nothing for a storage service: credentials and the endpoint
come from where the storage library looks for them. For ``s3://`` (s3fs, which
uses aiobotocore/botocore):

- credentials: ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (and
  ``AWS_SESSION_TOKEN``), or ``AWS_PROFILE`` with ``~/.aws/credentials``, or an
  instance role;
- an S3-compatible server (MinIO, Ceph, a local ``moto_server``): ``AWS_ENDPOINT_URL``
  (botocore ≥ 1.31 honours it), or fsspec's configuration ``FSSPEC_S3_ENDPOINT_URL``
  (read when fsspec is imported), or ``storage_options={"endpoint_url": ...}``;
- retries: ``AWS_MAX_ATTEMPTS`` (botocore).

fsspec caches one filesystem per set of arguments and process, so credentials
changed in ``os.environ`` after the first access are not seen until
``fsspec.AbstractFileSystem.clear_instance_cache()`` (or a new process).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["check_remote_store"]

#: files whose presence makes a folder a Zarr store (v3, then v2 group and array)
ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")

#: how to install the fsspec implementation of a protocol
_PACKAGES = {"s3": "'tilevision[s3]' (s3fs)", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}


def _hints(protocol: str) -> tuple[str, str]:
    """What to check for wrong credentials, and for an unreachable or wrong endpoint."""
    if protocol in ("s3", "s3a"):
        return (
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or "
            "storage_options={'key': ..., 'secret': ...}",
            "AWS_ENDPOINT_URL for an S3-compatible server (or storage_options="
            "{'endpoint_url': ...})",
        )
    return (
        f"the credentials of the {protocol}:// filesystem (see its fsspec documentation), "
        "or storage_options",
        "the URL and the network",
    )


def _endpoint(fs: Any) -> str:
    url = getattr(fs, "endpoint_url", None) or (getattr(fs, "client_kwargs", None) or {}).get(
        "endpoint_url"
    )
    url = url or os.environ.get("AWS_ENDPOINT_URL")
    return f" at {url}" if url else ""


def _filesystem(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    protocol = url.split("://", 1)[0]
    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:
        package = _PACKAGES.get(protocol, f"the fsspec implementation of {protocol}://")
        raise ImportError(
            f"cannot read {url}: {protocol}:// URLs need an extra package ({exc}). "
            f"Install it: pip install {package}."
        ) from exc
    except ValueError as exc:
        raise ValueError(
            f"cannot read {url}: {exc}. Use a path or an fsspec URL such as s3://bucket/image.zarr."
        ) from exc


def _probe(fs: Any, url: str, path: str, protocol: str) -> int | None:
    """The Zarr format of the store at ``path`` (None: no marker file); access problems raise."""
    credentials, endpoint = _hints(protocol)
    for marker in ZARR_MARKERS:
        try:
            fs.info(f"{path}/{marker}")
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            raise PermissionError(
                f"access to {url} was refused{_endpoint(fs)} ({exc}). Check the credentials "
                f"({credentials}) and that they may read this bucket."
            ) from exc
        except Exception as exc:  # connection errors are library-specific (botocore, aiohttp)
            raise OSError(
                f"cannot reach {url}{_endpoint(fs)}: {type(exc).__name__}: {exc}. Check "
                f"{endpoint}; the server must be running and reachable."
            ) from exc
        return 3 if marker == "zarr.json" else 2
    return None


def check_remote_store(url: str, storage_options: Mapping[str, Any] | None = None) -> int:
    """Check that ``url`` is a readable Zarr store and return its Zarr format (3 or 2).

    One small request (the store's ``zarr.json``) when all is well; only when it is
    missing does it look further, to tell a wrong bucket from a wrong key, and raise
    an error that names the fix. Passing the format on to ``zarr.open`` spares it
    looking for the other format's metadata files: on S3 each missing key costs
    a HEAD and a LIST request.

    Parameters
    ----------
    url : str
        An fsspec URL, e.g. ``s3://bucket/image.zarr``.
    storage_options : dict, optional
        Passed to fsspec (credentials, ``endpoint_url``); default: the environment.

    Returns
    -------
    int
        3 for a store with ``zarr.json``, 2 for ``.zgroup``/``.zarray``.

    Raises
    ------
    ImportError
        The protocol's fsspec package (e.g. s3fs) is not installed.
    PermissionError
        The server refused the credentials.
    OSError
        The server could not be reached (``FileNotFoundError`` when it holds no
        such bucket or store).

    Examples
    --------
    >>> import fsspec
    >>> from tilevision.io._remote import check_remote_store
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe("/tv-doctest/a.zarr/zarr.json", b"{}")
    >>> check_remote_store("memory://tv-doctest/a.zarr")
    3
    >>> check_remote_store("memory://tv-doctest/b.zarr")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: no Zarr store at memory://tv-doctest/b.zarr: ... holds ['a.zarr']...
    >>> fs.rm("/tv-doctest", recursive=True)
    """
    protocol = url.split("://", 1)[0]
    fs, path = _filesystem(url, storage_options)
    path = path.rstrip("/")
    zarr_format = _probe(fs, url, path, protocol)
    if zarr_format is not None:
        return zarr_format
    credentials, endpoint = _hints(protocol)
    stripped = path.lstrip("/")
    bucket = stripped.split("/", 1)[0]
    root = path[: len(path) - len(stripped) + len(bucket)]
    if "/" in stripped and not fs.exists(root):
        raise FileNotFoundError(
            f"cannot read {url}: the bucket {bucket!r} does not exist{_endpoint(fs)}, or these "
            f"credentials cannot see it. Check the bucket name, {endpoint}, and {credentials}."
        )
    if fs.exists(path):
        raise FileNotFoundError(
            f"{url} is not a Zarr store (it has none of {list(ZARR_MARKERS)}). tilevision "
            "opens remote OME-Zarr stores: copy other files locally and ingest them with "
            "tilevision.ingest()."
        )
    parent = fs._parent(path)
    try:
        names = sorted(os.path.basename(p.rstrip("/")) for p in fs.ls(parent, detail=False))
    except (FileNotFoundError, PermissionError):
        names = []
    held = f"{protocol}://{parent.lstrip('/')} holds {names[:20]}" if names else "nothing is there"
    raise FileNotFoundError(
        f"no Zarr store at {url}: {held}. Check the key, or upload the store first "
        f"(e.g. fsspec.filesystem({protocol!r}).put(local_store, {url!r}, recursive=True))."
    )
