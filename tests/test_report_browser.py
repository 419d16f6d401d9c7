"""The HTML report of ``tv.analyze(..., output=)`` opens in a headless Chromium without errors.

Two independent ways: ``chromium --dump-dom`` (the DOM after loading, and Chromium's
own log on stderr), and the DevTools protocol over ``--remote-debugging-pipe`` with the
standard library only (script errors, console errors, failed loads, the decoded image and
a screenshot compared pixel by pixel with ``heatmap.png``). A broken page shows that both
checks do see errors. Skipped when no Chromium is installed (``ci/install_browser.sh``
installs Debian's).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import html.parser
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

import tilevision as tv
from tilevision._image import make_image

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason=f"no headless browser ({', '.join(BROWSERS)}) on PATH; ci/install_browser.sh "
    "installs Debian's chromium",
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,1600",
)  # fmt: skip
TIMEOUT = 60  # seconds for one browser run (it takes 1-3 s)
#: what Chromium's log says when a page fails (script error, missing file, console.error)
LOG_ERRORS = ("Uncaught", "ERR_FILE_NOT_FOUND", "Failed to load resource", "net::ERR_")


# ---------------------------------------------------------------- the report under test


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """An ``analyze`` output folder of a tile-level model on a small image."""
    rng = np.random.default_rng(3)
    images, masks = [], []
    for i in range(4):
        data = rng.random((64, 64))
        mask = np.zeros((64, 64), dtype=np.uint8)
        data[16 * i : 16 * i + 16, :16] += 2
        mask[16 * i : 16 * i + 16, :16] = 1
        images.append(make_image(data, ("y", "x"), spacing=(0.5, 0.5), units="millimeter"))
        masks.append(mask)
    recipe = tv.Recipe(["intensity"], tile=16)
    out = tmp_path_factory.mktemp("report") / "analysis"
    with dask.config.set(scheduler="threads"):
        model = tv.fit(
            images, masks, recipe=recipe, estimator=LogisticRegression(max_iter=2000),
            level="tile",
        )  # fmt: skip
        result = tv.analyze(images[1], model=model, client=False, output=out, verbose=False)
    return out, result


def broken_page(folder: Path) -> Path:
    """A page with a script error, a console error and a missing image."""
    page = folder / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>broken</title>'
        '</head><body><h1>broken</h1><img alt="x" src="missing.png">'
        "<script>undefinedFunction();</script><script>console.error('boom')</script>"
        "</body></html>",
        encoding="utf-8",
    )
    return page


# ---------------------------------------------------------------- --dump-dom


def dump_dom(page: Path, profile: Path) -> tuple[str, str]:
    """The DOM Chromium built from ``page``, and its log (stderr)."""
    run = subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout, run.stderr


class Rows(html.parser.HTMLParser):
    """``<th>key</th><td>value</td>`` rows and ``<img>`` attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.images: list[dict[str, str | None]] = []
        self.headings: list[str] = []
        self._cell: str | None = None
        self._key = ""
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td", "h1", "h2"):
            self._cell, self._text = tag, ""
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        if self._cell:
            self._text += data

    def handle_endtag(self, tag):
        if tag != self._cell:
            return
        if tag == "th":
            self._key = self._text.strip()
        elif tag == "td":
            self.rows[self._key] = self._text.strip()
        else:
            self.headings.append(self._text.strip())
        self._cell = None


def chromium_errors(log: str, page: Path) -> list[str]:
    """Lines of Chromium's log about a failure of ``page`` or of what it loads."""
    lines = log.splitlines()
    return [
        line
        for line in lines
        if any(e in line for e in LOG_ERRORS) or ("CONSOLE" in line and page.name in line)
    ]


def test_dump_dom_shows_the_report(report, tmp_path):
    out, result = report
    dom, log = dump_dom(out / "report.html", tmp_path / "profile")
    parsed = Rows()
    parsed.feed(dom)
    assert parsed.headings[:2] == ["tilevision analysis", "Tile heatmap"]
    assert "Descriptor" in parsed.headings
    assert "Recipe" in parsed.headings
    assert parsed.rows["label"] == str(result["label"].item())
    for c, p in zip(result["class"].values.tolist(), result["probability"].values):
        assert parsed.rows[f"probability of {c}"] == f"{p:.3f}"
    assert parsed.rows["recipe hash"] == result.attrs["recipe_hash"]
    assert parsed.rows["model id"] == result.attrs["model_id"]
    valid = result["valid"]
    assert parsed.rows["tiles (valid / all)"] == f"{int(valid.sum())} / {valid.size}"
    mean = result["descriptor"].sel(feature="intensity.mean").item()
    assert parsed.rows["intensity.mean"] == f"{mean:.6g}"
    (img,) = parsed.images
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix)
    assert base64.b64decode(img["src"][len(prefix) :]) == (out / "heatmap.png").read_bytes()
    assert chromium_errors(log, out / "report.html") == []


def test_dump_dom_log_shows_errors_of_a_broken_page(tmp_path):
    page = broken_page(tmp_path)
    _, log = dump_dom(page, tmp_path / "profile")
    errors = chromium_errors(log, page)
    assert any("Uncaught ReferenceError: undefinedFunction" in e for e in errors), log[-3000:]
    assert any('"boom"' in e for e in errors), log[-3000:]


# ---------------------------------------------------------------- DevTools protocol


#: run by a child Python: pipe ends to fds 3 and 4, then become the browser
TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class DevTools:
    """A headless Chromium driven over ``--remote-debugging-pipe`` (JSON messages, NUL ends)."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # the browser reads fd 3 and writes fd 4: a small Python trampoline puts the pipe
        # ends there (moved above 10 first, so that one cannot clobber the other)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", TRAMPOLINE, *map(str, high), BROWSER, *FLAGS,
                 f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                pass_fds=high, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            for fd in high:
                os.close(fd)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._next(deadline)
            if answer.get("id") == self._id:
                assert "error" not in answer, f"{method}: {answer['error']}"
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, event: str, after: int = 0) -> dict:
        """The first ``event`` among the events from number ``after`` on (waits for it)."""
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == event for e in self.events[after:]):
            self.events.append(self._next(deadline))
        return next(e for e in self.events[after:] if e.get("method") == event)

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._read], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"chromium did not answer within {TIMEOUT} s")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise EOFError(f"chromium closed the pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def open(self, url: str) -> None:
        """A new tab with Page, Runtime, Log and Network events on; load ``url``."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1200, "height": 1600, "deviceScaleFactor": 1, "mobile": False},
        )
        mark = len(self.events)
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired", after=mark)
        assert self.evaluate("[document.URL, document.readyState]") == [url, "complete"]

    def evaluate(self, expression: str):
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return answer["result"]["value"]

    def screenshot(self, clip: dict | None = None) -> np.ndarray:
        params = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)

    def errors(self) -> list[str]:
        """Script errors, console errors, error log entries and failed loads, as text."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"{details['text']} {details.get('exception', {})}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(f"console.error {params['args']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                found.append(f"loading failed: {params['errorText']}")
        return found

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, AssertionError):
            self.send("Browser.close", session=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


@pytest.fixture
def browser(tmp_path):
    devtools = DevTools(tmp_path / "profile")
    try:
        yield devtools
    finally:
        devtools.close()


IMAGES = """JSON.stringify(Array.from(document.images, i => {
  const r = i.getBoundingClientRect();
  return {complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
          x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height};
}))"""


def on_white(png: Path, size: tuple[int, int]) -> np.ndarray:
    """``png`` as the page shows it: composited over white, at ``size`` (width, height)."""
    with Image.open(png) as im:
        rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    shown = Image.alpha_composite(white, rgba).convert("RGB")
    if shown.size != size:
        shown = shown.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(shown, dtype=np.int16)


def test_report_loads_without_errors_and_shows_the_heatmap(report, browser):
    out, result = report
    browser.open((out / "report.html").as_uri())
    assert browser.errors() == []
    assert browser.evaluate("document.title") == "tilevision analysis"
    text = browser.evaluate("document.body.innerText")
    assert f"probability of 1\t{result['probability'].values[1]:.3f}" in text
    (img,) = json.loads(browser.evaluate(IMAGES))
    with Image.open(out / "heatmap.png") as im:
        png_size = im.size
    assert img["complete"]
    assert (img["width"], img["height"]) == png_size  # the PNG was decoded
    assert img["w"] > 300  # and laid out at a visible size
    assert img["h"] > 200
    clip = {"x": img["x"], "y": img["y"], "width": img["w"], "height": img["h"]}
    shot = browser.screenshot(clip)
    expected = on_white(out / "heatmap.png", (shot.shape[1], shot.shape[0]))
    difference = np.abs(shot - expected)
    assert difference.mean() < 3, difference.mean()  # the pixels of heatmap.png
    assert np.percentile(difference, 99) < 40
    page = browser.screenshot()
    assert page.shape[0] > img["y"] + img["h"]  # the whole page, below the image too
    assert (page < 250).any(axis=-1).mean() > 0.05  # not a blank page
    assert browser.errors() == []


def test_devtools_see_the_errors_of_a_broken_page(tmp_path, browser):
    browser.open(broken_page(tmp_path).as_uri())
    errors = " | ".join(browser.errors())
    assert "Uncaught" in errors
    assert "undefinedFunction" in errors
    assert "boom" in errors
    assert "ERR_FILE_NOT_FOUND" in errors
    assert "missing.png" in errors
    (img,) = json.loads(browser.evaluate(IMAGES))
    assert img["width"] == 0  # a missing image is not decoded
