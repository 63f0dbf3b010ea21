#!/usr/bin/env python3
"""One-command developer tasks for plastinet (standard library only).

Each task bootstraps itself: it creates ``.venv`` beside this file on first use, installs
plastinet into it in editable mode with the extras the task needs, and re-installs only
when ``pyproject.toml`` changes.

Usage::

    python3 tasks.py demo        # install, then run the demo model and write results + PNG
    python3 tasks.py test        # install, then lint (ruff) and run the default test suite (and the notebooks)
    python3 tasks.py test-slow   # the slow reproductions and compiled-target runs
    python3 tasks.py docs        # build the documentation (notebooks executed) into docs/_build/html
    python3 tasks.py bench NAME  # run benchmarks/bench_NAME.py (e.g. fwp)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

TASK_EXTRAS = {"demo": "", "test": "test,notebooks,docs", "test-slow": "test,notebooks,docs",
               "docs": "test,notebooks,docs", "bench": "test"}
NOTEBOOK_BUILD = ROOT / "build" / "notebooks"
#: Tasks that also install NEST (the ``nest`` extra) where the platform has a wheel of it.
WITH_NEST = ("test", "test-slow", "bench")


def _ensure_env(extras: str, with_nest: bool = False) -> None:
    """Create the virtual environment and install plastinet with ``extras`` if needed.

    ``with_nest`` also installs the ``nest`` extra when pip finds a wheel of NEST.
    """
    if not PYTHON.exists():
        print(f"[plastinet] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    spec = "." + (f"[{extras}]" if extras else "")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()
                            + str(with_nest).encode()).hexdigest()[:16]
    stamp = VENV / f".plastinet-installed-{digest}"
    if stamp.exists():
        return
    print(f"[plastinet] installing plastinet{spec[1:]} (editable) into {VENV}", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run(pip + ["-e", spec], check=True, cwd=ROOT)
    if with_nest:   # optional: a wheel only (NEST's sources need CMake and take long to build)
        done = subprocess.run(pip + ["--only-binary=nest-simulator", "-e", ".[nest]"], cwd=ROOT)
        if done.returncode:
            print("[plastinet] no NEST wheel for this platform: the NEST backend's tests will skip", flush=True)
    for old in VENV.glob(".plastinet-installed-*"):
        old.unlink()
    stamp.touch()


def _run(args: list[str]) -> int:
    env = dict(os.environ, MPLBACKEND=os.environ.get("MPLBACKEND", "Agg"))
    return subprocess.run([str(PYTHON)] + args, cwd=ROOT, env=env).returncode


def _workers(rest: list[str]) -> list[str]:
    """pytest-xdist options: one worker per core (files kept whole, so module fixtures run once),
    unless the caller chose ``-n`` or the machine has a single core. Workers use one BLAS
    thread each so that they do not oversubscribe the cores (results do not depend on it)."""
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in rest) or (os.cpu_count() or 1) < 2:
        return []
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return ["-n", "auto", "--dist", "loadfile"]


def _convert_notebooks() -> list[str]:
    """Convert the jupytext sources ``notebooks/NN_*.py`` to ``build/notebooks/*.ipynb``."""
    NOTEBOOK_BUILD.mkdir(parents=True, exist_ok=True)
    for old in NOTEBOOK_BUILD.glob("*.ipynb"):
        old.unlink()
    sources = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
    for src in sources:
        out = NOTEBOOK_BUILD / (src.stem + ".ipynb")
        subprocess.run([str(BIN / "jupytext"), "--quiet", "--to", "ipynb", "-o", str(out), str(src)],
                       check=True, cwd=ROOT)
    return [str(NOTEBOOK_BUILD)] if sources else []


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TASK_EXTRAS:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    _ensure_env(TASK_EXTRAS[task], with_nest=task in WITH_NEST)
    if task == "demo":
        return _run(["-m", "plastinet", "demo", *rest])
    if task == "docs":
        os.environ.setdefault("PLASTINET_QUICK", "1")
        out = ROOT / "docs" / "_build"
        code = _run(["-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(out / "doctrees"),
                     str(ROOT / "docs"), str(out / "html"), *rest])
        if code == 0:
            print(f"[plastinet] documentation in {out / 'html' / 'index.html'}")
        return code
    if task == "test":
        lint = _run(["-m", "ruff", "check", "."])          # configuration: [tool.ruff] in pyproject.toml
        if lint != 0:
            print("[plastinet] ruff found problems (above); fix them before the tests run")
            return lint
    if task in ("test", "test-slow"):
        os.environ.setdefault("PLASTINET_QUICK", "1" if task == "test" else "0")
        notebooks = _convert_notebooks()
        marker = "not slow" if task == "test" else "slow"
        nbmake = ["--nbmake", "--nbmake-timeout=600"] if notebooks else []
        return _run(["-m", "pytest", "-m", marker, *_workers(rest), *nbmake, "tests", "plastinet/testing",
                     *notebooks, *rest])
    if not rest:
        print("usage: python3 tasks.py bench NAME   (NAME: " + ", ".join(
            p.stem.removeprefix("bench_") for p in sorted((ROOT / "benchmarks").glob("bench_*.py"))) + ")")
        return 2
    return _run([str(ROOT / "benchmarks" / f"bench_{rest[0]}.py"), *rest[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
