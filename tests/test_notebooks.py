"""The notebooks run top to bottom in a real Jupyter kernel, on their quick settings.

Each notebook is executed with nbclient in a fresh ``python3`` kernel (this
interpreter, checked below) with ``TILEVISION_NOTEBOOK_QUICK=1``. The tests check that
no cell fails, that every cell that draws shows its figure, that the numbers the
notebook prints are sane, that its files went to the temporary folder (not the
repository) and that it closed its Dask client.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: seconds one cell may take (each quick notebook takes well under a minute in all)
CELL_TIMEOUT = 300
#: a cell that draws: a new figure, a tilevision plot or a PNG read from disk
DRAWS = re.compile(r"plt\.subplots\(|\btv\.plot\.\w+\(|\.plot_(roc|confusion)\(|\bImage\(")
#: appended to each notebook: what the kernel ran on, and whether a client is still open
PROBE = """
import json, sys
import distributed
try:
    distributed.default_client()
    open_client = True
except ValueError:
    open_client = False
print("PROBE" + json.dumps({"executable": sys.executable, "open_client": open_client}))
"""


def _number(text: str, pattern: str) -> list[float]:
    match = re.search(pattern, text)
    assert match, f"the notebook did not print {pattern!r}; its output:\n{text[-3000:]}"
    return [float(g) for g in match.groups()]


def _check_quickstart(text: str) -> None:
    right, tiles = _number(text, r"(\d+\.\d)% of (\d+) tiles classified right")
    assert tiles == (2048 // 128) ** 2  # the quick slide's tile grid
    assert right >= 90, "the texture classifier should get nearly every tile right"
    assert "same inputs key: True" in text
    assert "re-using the finished results" in text


def _check_ct(text: str) -> None:
    (percent,) = _number(text, r"edge voxels: \d+ \((\d+\.\d)% of the volume\)")
    assert 2 < percent < 25, "quantile thresholds 0.85/0.95 keep a few percent as edges"
    n, accuracy = _number(text, r"held-out tiles: (\d+); accuracy (\d\.\d+)")
    assert n > 500
    # more than half the body tiles are background: a model must beat that clearly
    assert accuracy > 0.65


def _check_adrenal(text: str) -> None:
    auc, accuracy, majority = _number(
        text, r"val ROC AUC (\d\.\d+), accuracy (\d\.\d+) \(always 'normal': accuracy (\d\.\d+)\)"
    )
    assert auc > 0.65, "shape features separate the classes (published AUC about 0.83)"
    assert 0 < majority < 1
    assert 0 < accuracy <= 1
    probabilities = [float(p) for p in re.findall(r"P\(hyperplasia\) = (\d\.\d\d)", text)]
    assert len(probabilities) == 8
    assert all(0 <= p <= 1 for p in probabilities)


def _check_cluster(text: str) -> None:
    assert re.search(r"scheduler \w+://\S+, 2 workers", text)
    assert "4 of 4 images already analysed" in text  # the second run computed nothing
    assert "same table: True" in text
    assert "#SBATCH -t 00:30:00" in text
    assert "#SBATCH --mem=4G" in text
    assert "#PBS -q bigmem" in text  # the profile read from the YAML text


CHECKS = {
    "01_quickstart": _check_quickstart,
    "02_ct_volume": _check_ct,
    "03_train_and_evaluate": _check_adrenal,
    "04_cluster": _check_cluster,
}


def test_every_notebook_is_checked():
    assert sorted(CHECKS) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    # the kernel inherits this environment: quick settings, this checkout, temp files
    # under tmp_path; figures inline (Agg would turn every figure into no output)
    monkeypatch.setenv("TILEVISION_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    print(f"{path.stem}: {time.perf_counter() - start:.1f} s")

    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in cells)
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors
    blank = [
        c.source.splitlines()[0]
        for c in cells
        if DRAWS.search(c.source) and not any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    assert not blank, f"cells that draw but show no figure: {blank}"

    text = "".join(
        o.get("text", "") for c in cells for o in c.outputs if o.output_type == "stream"
    )
    probe = json.loads(text.rsplit("PROBE", 1)[1].splitlines()[0])
    assert Path(probe["executable"]).resolve() == Path(sys.executable).resolve()
    assert not probe["open_client"], "the notebook should close its Dask client"
    CHECKS[path.stem](text)
    # files went to the temporary folder, none into the repository
    assert any(scratch.glob("tilevision-*/*")), "the notebook should write to a temp folder"
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before
