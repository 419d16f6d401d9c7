"""``tilevision bench``: run the benchmark scripts (``bench_NAME.py``) and show their tables.

The scripts are those of a source checkout's ``benchmarks/`` folder when tilevision runs
from one (an editable install), else the copy that the wheel installs in
``tilevision/_benchmarks``. Each runs in its own process with this Python interpreter;
its output is streamed as it comes.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["add_parser", "benchmark_folder", "benchmarks", "describe", "run_benchmarks"]

#: seconds a script gets after Ctrl-C to delete its (possibly GiB-sized) temporary files
CLEANUP_SECONDS = 60.0

_DESCRIPTION = """\
Run tilevision's benchmark scripts, each in its own process with this Python, and print
their tables: wall time, CPU time, peak memory, and PASS/FAIL against the targets.

Without NAME, every benchmark runs with --quick (small inputs): a few minutes in all on 2
cores. A named benchmark runs at its full size, that of the README's tables, unless
--quick: from minutes to tens of minutes each on 2 cores (all of them: an hour or more),
with temporary inputs of several GiB (up to about 8 GiB of disk in the temporary folder)
and up to about 5 GiB of memory for the in-memory references.

Exit code: 0 when every script passed, else that of the first one that failed (1: a
check failed, 2: an argument the script does not take)."""

_EPILOG = """\
examples:
  tilevision bench --list                  the benchmarks, with a line on each
  tilevision bench                         all of them, small inputs: a few minutes
  tilevision bench label ingest --quick    two of them, small inputs
  tilevision bench filters                 one at full size: minutes
  tilevision bench ingest -- --size-gib 0.5 4 --format npy
                                           arguments after -- go to the script; see
                                           python SCRIPT --help (SCRIPT from --list)
"""


def benchmark_folder() -> Path:
    """The folder of the benchmark scripts.

    A source checkout's ``benchmarks/`` folder when tilevision is imported from one (an
    editable install, or tests run from the checkout), else the copy the wheel installs
    in ``tilevision/_benchmarks``.

    Returns
    -------
    pathlib.Path
        The folder holding ``bench_*.py`` and their helper ``_measure.py``.

    Raises
    ------
    FileNotFoundError
        When neither folder is there (an installation without the scripts).

    Examples
    --------
    >>> from tilevision._bench import benchmark_folder
    >>> (benchmark_folder() / "_measure.py").is_file()
    True
    """
    package = Path(__file__).resolve().parent
    checkout = package.parent / "benchmarks"
    if (package.parent / "pyproject.toml").is_file() and (checkout / "_measure.py").is_file():
        return checkout
    installed = package / "_benchmarks"
    if (installed / "_measure.py").is_file():
        return installed
    raise FileNotFoundError(
        f"the benchmark scripts are not installed: neither {checkout} (a source checkout) "
        f"nor {installed} (a wheel) holds them. Reinstall tilevision from a wheel or a "
        "source checkout (python -m pip install tilevision)."
    )


def benchmarks(folder: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """The benchmark scripts by name: ``bench_NAME.py`` is ``NAME``, in name order.

    Parameters
    ----------
    folder : path, optional
        Where to look (default :func:`benchmark_folder`).

    Returns
    -------
    dict
        Name → path of the script.

    Examples
    --------
    >>> from tilevision._bench import benchmarks
    >>> scripts = benchmarks()
    >>> "filters" in scripts, scripts["filters"].name
    (True, 'bench_filters.py')
    """
    root = benchmark_folder() if folder is None else Path(folder)
    return {p.stem.removeprefix("bench_"): p for p in sorted(root.glob("bench_*.py"))}


def describe(script: str | os.PathLike[str]) -> str:
    """The first paragraph of a script's docstring, on one line (the script is not run).

    Parameters
    ----------
    script : path
        A Python script.

    Returns
    -------
    str
        Its description, or ``"(no description)"`` when it has no docstring.

    Examples
    --------
    >>> from tilevision._bench import benchmarks, describe
    >>> describe(benchmarks()["label"])
    'Labelling benchmark: connected components of a large 3-D blob mask stored in Zarr.'
    """
    doc = ast.get_docstring(ast.parse(Path(script).read_text(encoding="utf-8")))
    return " ".join(doc.split("\n\n")[0].split()) if doc else "(no description)"


def _exit_code(returncode: int) -> int:
    """A child's return code as a shell would report it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def _run_script(argv: list[str]) -> int:
    """Run one script, its output going straight to ours; its exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, env=env)
    try:
        return _exit_code(proc.wait())
    except KeyboardInterrupt:
        # Ctrl-C reached the script too (same process group): let it remove its files
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=CLEANUP_SECONDS)
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_benchmarks(
    names: Sequence[str],
    *,
    quick: bool = False,
    script_args: Sequence[str] = (),
    folder: str | os.PathLike[str] | None = None,
) -> int:
    """Run benchmark scripts one after the other, each in a fresh process.

    Parameters
    ----------
    names : sequence of str
        Benchmarks to run (names from :func:`benchmarks`), in this order.
    quick : bool
        Pass ``--quick`` to each script: small inputs.
    script_args : sequence of str
        More arguments for every script (after ``--quick``).
    folder : path, optional
        Where the scripts are (default :func:`benchmark_folder`).

    Returns
    -------
    int
        0 when every script exited with 0, else the exit code of the first that did not.

    Raises
    ------
    ValueError
        For a name that is not a benchmark (the message lists them).

    Examples
    --------
    A script that does not take an argument exits with 2, and so does the run:

    >>> from tilevision._bench import run_benchmarks
    >>> run_benchmarks(["features"], script_args=["--no-such-option"])  # doctest: +ELLIPSIS
    == features: ...bench_features.py --no-such-option
    == features: FAILED (exit code 2) after ... s
    2
    """
    scripts = benchmarks(folder)
    unknown = [n for n in names if n not in scripts]
    if unknown:
        raise ValueError(
            f"unknown benchmark {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(scripts)} (`tilevision bench --list` describes them)."
        )
    results: list[tuple[str, int, float]] = []
    for name in names:
        argv = [sys.executable, str(scripts[name]), *(["--quick"] if quick else []), *script_args]
        print(f"== {name}: {shlex.join(['python', *argv[1:]])}", flush=True)
        start = time.perf_counter()
        code = _run_script(argv)
        seconds = time.perf_counter() - start
        status = "done" if code == 0 else f"FAILED (exit code {code})"
        print(f"== {name}: {status} after {seconds:.1f} s", flush=True)
        results.append((name, code, seconds))
    if len(results) > 1:
        print("\nsummary:")
        for name, code, seconds in results:
            status = "passed" if code == 0 else f"FAILED (exit code {code})"
            print(f"  {name:<14} {status:<24} {seconds:8.1f} s")
    return next((code for _, code, _ in results if code != 0), 0)


def _usage_error(message: str) -> NoReturn:
    from .cli import UsageError  # cli imports this module: imported late

    raise UsageError(message)


class _ArgumentParser(argparse.ArgumentParser):
    """Parses what follows the first NAME; errors are usage errors (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        _usage_error(f"{message} (see `tilevision bench --help`)")


def _configure(parser: argparse.ArgumentParser, *, names_nargs: Any) -> None:
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the benchmarks (or the NAMEs given) with a line on each, and where "
        "their scripts are; runs nothing",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="small inputs: seconds to a couple of minutes per benchmark, memory bounds "
        "that are relative to the image size not checked (the default without NAME)",
    )
    size.add_argument(
        "--full",
        action="store_true",
        help="the benchmarks' own sizes, those of the README's tables: minutes to tens of "
        "minutes each (the default with NAMEs)",
    )
    parser.add_argument(
        "names",
        nargs=names_nargs,
        metavar="NAME",
        help="benchmarks to run, in this order (default: all, with --quick); then "
        "optionally -- and arguments for the scripts",
    )


_PARSER_OPTIONS: dict[str, Any] = {
    "description": _DESCRIPTION,
    "epilog": _EPILOG,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
    "usage": "%(prog)s [-h] [--list] [--quick | --full] [NAME ...] [-- SCRIPT_ARG ...]",
}


def add_parser(sub: Any) -> None:
    """Add the ``bench`` command to the ``tilevision`` subparsers ``sub``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Examples
    --------
    >>> import argparse
    >>> from tilevision._bench import add_parser
    >>> parser = argparse.ArgumentParser(prog="tilevision")
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["bench", "--quick", "label", "--", "--keep"])
    >>> args.quick, args.names
    (True, ['label', '--', '--keep'])
    """
    bench = sub.add_parser(
        "bench",
        help="run the benchmark scripts (time, memory, PASS/FAIL); --list shows them",
        **_PARSER_OPTIONS,
    )
    # everything from the first NAME on is parsed by run_command, so that options may
    # follow the names and the arguments after -- reach the scripts untouched
    _configure(bench, names_nargs=argparse.REMAINDER)
    bench.set_defaults(func=run_command)


def _parse(args: argparse.Namespace) -> tuple[list[str], list[str], argparse.Namespace]:
    """(names, script arguments, options) from what ``add_parser``'s parser gave."""
    tokens = list(args.names)
    split = tokens.index("--") if "--" in tokens else len(tokens)
    own, script_args = tokens[:split], tokens[split + 1 :]
    parser = _ArgumentParser(prog="tilevision bench", **_PARSER_OPTIONS)
    _configure(parser, names_nargs="*")
    options = parser.parse_args(own)
    for flag in ("list", "quick", "full"):
        setattr(options, flag, getattr(options, flag) or getattr(args, flag, False))
    if options.quick and options.full:
        _usage_error("--quick and --full do not go together; pick one.")
    # bench_NAME and bench_NAME.py (the script's file name) are taken for NAME
    names = list(
        dict.fromkeys(n.removesuffix(".py").removeprefix("bench_") for n in options.names)
    )
    scripts = benchmarks()
    unknown = [n for n in names if n not in scripts]
    if unknown:
        _usage_error(
            f"unknown benchmark {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(scripts)} (`tilevision bench --list` describes them)."
        )
    if script_args and not names:
        _usage_error(
            f"arguments after -- ({shlex.join(script_args)}) go to the named benchmarks; "
            "name them: tilevision bench NAME [NAME ...] -- ARGS"
        )
    return names, script_args, options


def _print_list(names: Sequence[str]) -> None:
    scripts = benchmarks()
    shown = names or list(scripts)
    width = max(map(len, shown))
    folder = benchmark_folder()
    print(f"benchmarks (scripts in {folder}):")
    for name in shown:
        print(f"  {name:<{width}}  {describe(scripts[name])}")
    print(
        "\nrun them: tilevision bench [NAME ...] [--quick | --full] [-- SCRIPT_ARG ...]\n"
        f"a script's own options: python {folder / 'bench_NAME.py'} --help"
    )


def run_command(args: argparse.Namespace) -> int:
    """``tilevision bench``: list the benchmarks, or run them; the exit code."""
    names, script_args, options = _parse(args)
    if options.list:
        _print_list(names)
        return 0
    quick = options.quick or (not names and not options.full)
    if not names:
        names = list(benchmarks())
        size = (
            "small inputs (--quick): a few minutes"
            if quick
            else "full size (--full): hours on 2 cores"
        )
        print(
            f"running all {len(names)} benchmarks, {size}. `tilevision bench --list` lists them."
        )
    return run_benchmarks(names, quick=quick, script_args=script_args)
