from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import tilevision as tv
from tilevision.cli import main

from .conftest import no_leftovers


def test_ingest_and_info(tmp_path, capsys):
    src = tmp_path / "vol.npy"
    data = np.arange(6 * 20 * 30, dtype="uint16").reshape(6, 20, 30)
    np.save(src, data)
    dest = tmp_path / "vol.zarr"
    code = main(
        ["ingest", str(src), str(dest), "--chunks", "4,8,8", "--spacing", "3,0.5,0.5",
         "--units", "millimeter", "--quiet"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "z=6 × y=20 × x=30" in out
    assert "z=3 mm, y=0.5 mm, x=0.5 mm" in out
    np.testing.assert_array_equal(tv.open(dest).values, data)
    assert main(["info", str(dest), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chunks"] == {"z": 4, "y": 8, "x": 8}
    assert summary["spacing"] == {"z": 3.0, "y": 0.5, "x": 0.5}
    assert summary["provenance"]["source_format"] == "npy"


def test_errors_are_one_line_with_exit_code_1(tmp_path, capsys):
    code = main(["ingest", str(tmp_path / "missing.tif"), str(tmp_path / "out.zarr")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("tilevision ingest: error: no such file or folder")
    assert "Traceback" not in err
    assert no_leftovers(tmp_path) == []


def test_existing_destination_needs_overwrite(tmp_path, capsys):
    src = tmp_path / "a.npy"
    np.save(src, np.zeros((4, 4), "uint8"))
    assert main(["ingest", str(src), str(tmp_path / "a.zarr"), "--quiet"]) == 0
    assert main(["ingest", str(src), str(tmp_path / "a.zarr"), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["ingest", str(src), str(tmp_path / "a.zarr"), "--quiet", "--overwrite"]) == 0


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "info", str(tmp_path / "nothing.zarr")])


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["ingest"])
    assert excinfo.value.code == 2
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2


def test_console_script_help():
    result = subprocess.run(
        [sys.executable, "-m", "tilevision.cli", "--help"], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    for command in ("demo", "ingest", "info"):
        assert command in result.stdout


@pytest.mark.parametrize("cluster", [False, True], ids=["threads", "local-cluster"])
def test_demo_quick(tmp_path, capsys, cluster):
    args = ["demo", "--quick", "--output", str(tmp_path / "demo")]
    if not cluster:
        args.append("--no-cluster")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert ("Dask dashboard: http" in out) == cluster
    for name in ("ct", "phantom", "slide"):
        img = tv.open(tmp_path / "demo" / f"{name}.zarr")
        assert img.attrs["n_levels"] >= 1
    ct = tv.open(tmp_path / "demo" / "ct.zarr")
    assert ct.attrs["spacing"] == {"z": 3.0, "y": 3.0, "x": 3.0}
    assert ct.shape == (112, 101, 122)
    assert "Done in" in out
    # a second run replaces its own outputs
    assert main(args) == 0
