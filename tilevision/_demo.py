"""``tilevision demo``: sample data → OME-Zarr → lazy images, on a local Dask cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]


def _samples(quick: bool) -> list[tuple[str, str, Callable[[], Any], dict[str, Any]]]:
    from . import datasets

    phantom_shape = (32, 96, 96) if quick else (128, 384, 384)
    slide_shape = (1024, 1024) if quick else (8192, 8192)
    return [
        (
            "ct",
            "real CT (TotalSegmentator example, 3 mm, Hounsfield units)",
            lambda: datasets.data_path("ct-organs/example_ct.nii.gz"),
            {"chunks": 64},
        ),
        (
            "phantom",
            f"synthetic CT phantom {'×'.join(map(str, phantom_shape))}, made chunk by chunk",
            lambda: datasets.ct_phantom(phantom_shape, seed=0, chunks=64),
            {"chunks": 64},
        ),
        (
            "slide",
            f"synthetic texture slide {'×'.join(map(str, slide_shape))} (brick, grass, gravel)",
            lambda: datasets.texture_slide(slide_shape, seed=0, chunks=1024),
            {"chunks": 1024},
        ),
    ]


def run_demo(output: Path, *, use_cluster: bool = True, quick: bool = False) -> int:
    """Ingest three sample images into ``output`` and print what they hold.

    Parameters
    ----------
    output : Path
        Folder for the ``.zarr`` stores (created; stores in it are replaced).
    use_cluster : bool, optional
        Start (or re-use) an embedded ``LocalCluster`` and print its dashboard link;
        otherwise use Dask's threaded scheduler.
    quick : bool, optional
        Smaller synthetic images.

    Returns
    -------
    int
        0 on success (the CLI's exit code).
    """
    from .cluster import client, current_client, dashboard_link
    from .io import format_info, info, ingest

    start = time.perf_counter()
    output = output.expanduser().resolve()
    output.mkdir(parents=True, exist_ok=True)
    print(f"tilevision demo: outputs in {output}")
    dask_client = None
    owned = current_client() is None
    if use_cluster:
        dask_client = client()
        print(f"Dask dashboard: {dashboard_link(dask_client)}")
    else:
        print("Dask: threaded scheduler (no dashboard)")
    try:
        samples = _samples(quick)
        for i, (name, title, make, options) in enumerate(samples, 1):
            print(f"\n[{i}/{len(samples)}] {title}")
            t0 = time.perf_counter()
            source = make()
            dest = ingest(source, output / f"{name}.zarr", overwrite=True, **options)
            print(format_info(info(dest)))
            print(f"  ingested in {time.perf_counter() - t0:.1f} s")
    finally:
        if dask_client is not None and owned:
            cluster = dask_client.cluster
            dask_client.close()
            if cluster is not None:
                cluster.close()
    print(
        f"\nDone in {time.perf_counter() - start:.1f} s. Open an image lazily with:\n"
        f"  import tilevision as tv; img = tv.open({str(output / 'ct.zarr')!r})"
    )
    return 0
