"""Progress display: text bar on a cluster, local bar without one, widget in a notebook."""

from __future__ import annotations

import sys
import types

import dask
import numpy as np
import pytest

import tilevision as tv
from tilevision import _progress
from tilevision._image import make_image

RECIPE = tv.Recipe(["intensity"], tile=8)


def image(seed=0):
    data = np.random.default_rng(seed).random((32, 32))
    return make_image(data, ("y", "x")).rename(f"im{seed}")


@pytest.fixture
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_analyze_on_a_cluster_draws_a_text_bar_unless_asked_not_to(client, capsys):
    tv.analyze(image(), recipe=RECIPE, client=client, verbose=False, progress=True)
    out = capsys.readouterr().out
    assert "100% Completed" in out
    tv.analyze(image(1), recipe=RECIPE, client=client, verbose=False)  # progress = verbose
    assert "Completed" not in capsys.readouterr().out


def test_analyze_many_prints_a_line_per_finished_image(client, capsys):
    images = [image(i) for i in range(3)]
    tv.analyze_many(images, recipe=RECIPE, client=client, verbose=False, progress=True)
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    counters = sorted(line.split("]")[0] + "]" for line in lines if line.startswith("["))
    assert counters == ["[1/3]", "[2/3]", "[3/3]"]
    names = {line.split()[1] for line in lines if line.startswith("[")}
    assert names == {"im0", "im1", "im2"}


def test_local_scheduler_bar(capsys):
    with dask.config.set(scheduler="threads"):
        tv.analyze(image(), recipe=RECIPE, client=False, verbose=False, progress=True)
        # the bar is drawn only for computations longer than a second
        with _progress.local_progress(minimum=0):
            dask.array.ones(8, chunks=2).sum().compute()
    assert "100% Completed" in capsys.readouterr().out


class _FakeShell:
    kernel = object()


@pytest.fixture
def fake_notebook(monkeypatch):
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: _FakeShell()
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    return ipython


def test_in_notebook_detects_a_kernel(fake_notebook, monkeypatch):
    assert _progress.in_notebook()
    monkeypatch.setattr(fake_notebook, "get_ipython", lambda: None)  # plain terminal IPython
    assert not _progress.in_notebook()


def test_notebook_without_widgets_shows_nothing_and_does_not_block(
    fake_notebook, monkeypatch, client, capsys
):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed
    future = client.submit(sum, [1, 2])
    _progress.show_progress(future)
    assert capsys.readouterr().out == ""
    assert future.result() == 3


def test_notebook_with_widgets_displays_dask_widget(fake_notebook, monkeypatch, client):
    shown = []
    display_module = types.ModuleType("IPython.display")
    display_module.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    monkeypatch.setattr(_progress, "_widgets_available", lambda: True)

    def fake_progress(futures, notebook=None, multi=True):
        return ("widget", notebook, futures)

    monkeypatch.setattr("distributed.progress", fake_progress)
    future = client.submit(sum, [1, 2])
    _progress.show_progress(future)
    assert shown == [("widget", True, future)]
