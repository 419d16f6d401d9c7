"""``tilevision bench``: listing, running and failing benchmark scripts, and the wheel's copy."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tilevision import _bench, cli

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture
def main(monkeypatch):
    """``cli.main`` with the ``bench`` command, whether or not cli.build_parser adds it."""
    original = cli.build_parser

    def build_parser() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "bench" not in sub.choices:
            _bench.add_parser(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)
    return cli.main


FAKE_SCRIPT = '''"""{name} benchmark: prints its arguments as JSON.

More text that --list does not show.
"""
import json
import sys

print("{name} argv " + json.dumps(sys.argv[1:]))
sys.exit({code})
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A folder of three tiny benchmark scripts; ``broken`` exits with 3."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "_measure.py").write_text("")
    for name, code in [("alpha", 0), ("broken", 3), ("zeta", 0)]:
        (folder / f"bench_{name}.py").write_text(FAKE_SCRIPT.format(name=name, code=code))
    monkeypatch.setattr(_bench, "benchmark_folder", lambda: folder)
    return folder


def _argvs(out: str) -> dict[str, list[str]]:
    """What each fake script printed: name → its arguments (in the order they ran)."""
    lines = [line.split(" argv ", 1) for line in out.splitlines() if " argv " in line]
    return {name: json.loads(args) for name, args in lines}


def test_list_names_every_script_with_its_description(main, capfd):
    scripts = sorted((CHECKOUT / "benchmarks").glob("bench_*.py"))
    assert len(scripts) >= 5
    assert _bench.benchmark_folder() == CHECKOUT / "benchmarks"  # the checkout's, not a copy
    assert main(["bench", "--list"]) == 0
    out = capfd.readouterr().out
    for script in scripts:
        first_line = script.read_text(encoding="utf-8").splitlines()[0].strip('"')
        line = next(ln for ln in out.splitlines() if ln.endswith(first_line))
        assert line.split()[0] == script.stem.removeprefix("bench_")
    assert str(CHECKOUT / "benchmarks") in out
    assert "== " not in out  # nothing ran


def test_unknown_name_is_a_usage_error_listing_the_names(main, capfd):
    assert main(["bench", "features", "no_such_bench"]) == 2
    captured = capfd.readouterr()
    assert captured.err.count("\n") == 1
    assert "unknown benchmark 'no_such_bench'" in captured.err
    for script in (CHECKOUT / "benchmarks").glob("bench_*.py"):
        assert script.stem.removeprefix("bench_") in captured.err
    assert "== features" not in captured.out  # nothing ran


def test_runs_a_real_benchmark_end_to_end(main, capfd):
    # the smallest setting: a 64×64×128 CT phantom in 64³ tiles, i.e. 2 tiles
    argv = ["bench", "features", "--quick", "--", "--shape", "64", "64", "128", "--tile", "64"]
    assert main([*argv, "--chunks", "64"]) == 0
    out = capfd.readouterr().out
    assert "bench_features.py --quick --shape 64 64 128 --tile 64 --chunks 64" in out
    assert "| volume GiB | tiles (valid) | descriptor length |" in out  # the script's table
    row = next(line for line in out.splitlines() if line.startswith("| 0.00 |"))
    assert row.split("|")[2].split()[0] == "2"  # (64 / 64) * (64 / 64) * (128 / 64) tiles
    assert "PASS: peak RSS" in out
    assert "== features: done after" in out


def test_a_bad_argument_for_the_script_fails_the_run(main, capfd):
    assert main(["bench", "features", "--", "--no-such-option"]) == 2
    captured = capfd.readouterr()
    assert "unrecognized arguments: --no-such-option" in captured.err  # from the script
    assert "== features: FAILED (exit code 2)" in captured.out


def test_without_names_all_run_quick_and_a_failure_gives_its_exit_code(main, fake, capfd):
    assert main(["bench"]) == 3
    out = capfd.readouterr().out
    argvs = _argvs(out)
    assert list(argvs) == ["alpha", "broken", "zeta"]  # the one that failed did not stop the rest
    assert all(args == ["--quick"] for args in argvs.values())
    summary = {ln.split()[0]: ln for ln in out[out.index("summary:") :].splitlines()[1:]}
    assert list(summary) == ["alpha", "broken", "zeta"]
    assert "passed" in summary["alpha"]
    assert "FAILED (exit code 3)" in summary["broken"]


def test_names_run_at_full_size_in_order_with_the_script_arguments(main, fake, capfd):
    assert main(["bench", "zeta", "bench_alpha.py", "--", "--size", "8", "--"]) == 0
    argvs = _argvs(capfd.readouterr().out)
    assert list(argvs) == ["zeta", "alpha"]
    assert argvs["zeta"] == argvs["alpha"] == ["--size", "8", "--"]  # a second -- is theirs
    assert main(["bench", "alpha", "--quick", "--", "--keep"]) == 0
    assert _argvs(capfd.readouterr().out) == {"alpha": ["--quick", "--keep"]}
    assert main(["bench", "--quick", "alpha", "zeta"]) == 0
    assert _argvs(capfd.readouterr().out) == {"alpha": ["--quick"], "zeta": ["--quick"]}
    assert main(["bench", "--full", "alpha"]) == 0
    assert _argvs(capfd.readouterr().out) == {"alpha": []}


def test_full_without_names_runs_all_at_full_size(main, fake, capfd):
    assert main(["bench", "--full"]) == 3
    argvs = _argvs(capfd.readouterr().out)
    assert argvs == {"alpha": [], "broken": [], "zeta": []}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--", "--keep"], "name them"),
        (["bench", "alpha", "--quick", "--full"], "not allowed with"),
        (["bench", "alpha", "--bogus"], "unrecognized arguments: --bogus"),
        (["bench", "alpha", "alpha2"], "choose from alpha, broken, zeta"),
    ],
)
def test_usage_errors_exit_with_2_and_run_nothing(main, fake, capfd, argv, message):
    assert main(argv) == 2
    captured = capfd.readouterr()
    assert captured.err.startswith("tilevision bench: error: ")
    assert captured.err.count("\n") == 1
    assert message in captured.err
    assert _argvs(captured.out) == {}


def test_list_of_some_names(main, fake, capfd):
    assert main(["bench", "--list", "zeta"]) == 0
    out = capfd.readouterr().out
    assert "zeta benchmark: prints its arguments as JSON." in out
    assert "More text" not in out
    assert "alpha" not in out
    assert _argvs(out) == {}


def test_the_installed_copy_is_used_outside_a_checkout(tmp_path, monkeypatch, main, capfd):
    package = tmp_path / "site-packages" / "tilevision"
    monkeypatch.setattr(_bench, "__file__", str(package / "_bench.py"))
    assert main(["bench", "--list"]) == 1
    err = capfd.readouterr().err
    assert "the benchmark scripts are not installed" in err
    assert "Reinstall tilevision" in err
    (package / "_benchmarks").mkdir(parents=True)
    (package / "_benchmarks" / "_measure.py").write_text("")
    assert _bench.benchmark_folder() == package / "_benchmarks"


def test_the_wheel_ships_the_scripts_and_bench_runs_from_it(tmp_path):
    pytest.importorskip("hatchling")
    build = subprocess.run(
        [sys.executable, "-c", "import sys; from hatchling.build import build_wheel; "
         "print(build_wheel(sys.argv[1]))", str(tmp_path)],
        cwd=CHECKOUT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    wheel = tmp_path / build.stdout.split()[-1]
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    for script in (CHECKOUT / "benchmarks").glob("*.py"):
        assert f"tilevision/_benchmarks/{script.name}" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("benchmarks/")]
    code = (
        "import sys; from tilevision import _bench; print(_bench.benchmark_folder()); "
        "sys.exit(_bench.run_benchmarks(['global_stats'], script_args=['--help']))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # the scripts import tilevision from it too
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=site, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(site / "tilevision" / "_benchmarks")
    assert "Global statistics benchmark" in run.stdout  # the script's own --help
