"""A Brian2 that cannot compile (no compiler, no Cython, broken cache) gives a clear error.

Each scenario runs in a fresh interpreter (the environment variables ``CC``/``CXX`` and the
Cython cache preference are per process) and must end in a :class:`BackendError` whose
message names the cause and the fix, without Brian2's traceback or its warnings about
"unused" objects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

brian2 = pytest.importorskip("brian2")

from plastinet.backends.brian2.session import build_failure_message  # noqa: E402

_SCRIPT = textwrap.dedent("""
    import sys
    if {no_cython}:
        sys.modules["Cython"] = None          # as if Cython were not installed
    import numpy as np, brian2
    brian2.prefs.codegen.runtime.cython.cache_dir = {cache!r}
    from plastinet.backends import get_backend
    from plastinet.errors import BackendError
    be = get_backend("brian2", target={target!r})
    try:
        if {path!r} == "rate":
            from plastinet.fwp import Delta
            k = np.ones((1, 1, 3, 2)) / np.sqrt(2)
            be.apply_fwp(Delta(), k, k, np.ones((1, 1, 3, 1)))
        else:
            from plastinet.testing.checks import spiking_cases
            be.simulate(spiking_cases()["pair_all_additive"](), 0.005, seed=0)
        print("RAN")
    except BackendError as err:
        assert err.__cause__ is None and err.__suppress_context__
        assert err.original is not None
        print("BACKEND_ERROR", err)
    """)


def _run(path, target, cache, env=None, no_cython=False):
    script = _SCRIPT.format(path=path, target=target, cache=str(cache), no_cython=no_cython)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("BACKEND_ERROR", "RAN"))]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "never included in a network" not in proc.stderr, proc.stderr[-2000:]
    return lines[0], proc


NO_COMPILER = {"CC": "/nonexistent/cc", "CXX": "/nonexistent/c++"}


@pytest.mark.parametrize("path, target", [("rate", "cython"), ("spiking", "cython"),
                                          ("spiking", "cpp_standalone")])
def test_broken_compiler_gives_a_clear_error_with_the_fix(tmp_path, path, target):
    line, _ = _run(path, target, tmp_path / "cache", env=NO_COMPILER)
    assert line.startswith("BACKEND_ERROR"), line
    assert "could not compile" in line and f"target={target!r}" in line
    assert "C++ compiler" in line and "CC/CXX" in line and "target='numpy'" in line


def test_missing_cython_gives_a_clear_error_with_the_fix(tmp_path):
    line, _ = _run("spiking", "cython", tmp_path / "cache", no_cython=True)
    assert line.startswith("BACKEND_ERROR"), line
    assert "Cython is not available" in line and "install" in line and "target='numpy'" in line


@pytest.mark.parametrize("path", ["rate", "spiking"])
def test_cache_directory_that_is_not_a_directory_names_the_cache_and_the_fix(tmp_path, path):
    cache = tmp_path / "cache"
    cache.write_text("not a directory")
    line, _ = _run(path, "cython", cache)
    assert line.startswith("BACKEND_ERROR"), line
    assert f"Cython cache {cache} is broken" in line
    assert f"rm -rf {cache}" in line and "cache_dir" in line and "target='numpy'" in line


def test_messages_classify_causes():
    assert build_failure_message(RuntimeError("boom"), "cython", "/c") is None       # not a build failure
    assert build_failure_message(OSError("compiler missing"), "numpy", "/c") is None   # nothing compiled
    wrapped = RuntimeError("An error occurred when preparing an object")
    wrapped.__cause__ = ImportError("/c/_cython_magic_1.so: invalid ELF header")
    msg = build_failure_message(wrapped, "cython", "/c")
    assert msg.startswith("Brian2's Cython cache /c is broken") and "invalid ELF header" in msg
    msg = build_failure_message(RuntimeError("Project compilation failed (error code: 512)"),
                                "cpp_standalone", "/c")
    assert "could not compile" in msg and "make" in msg and "/c" not in msg


@pytest.mark.slow
def test_corrupted_compiled_extensions_in_the_cache_name_the_cache(tmp_path):
    cache = tmp_path / "cache"
    line, proc = _run("rate", "cython", cache)                      # a real compile fills the cache
    assert line == "RAN", proc.stderr[-2000:]
    modules = [p for p in cache.iterdir() if p.suffix == ".so"]
    assert modules
    for p in modules:
        p.write_bytes(b"not a shared object")
    line, _ = _run("rate", "cython", cache)
    assert line.startswith("BACKEND_ERROR"), line
    assert f"Cython cache {cache} is broken" in line and f"rm -rf {cache}" in line
    shutil.rmtree(cache)
    line, _ = _run("rate", "cython", cache)                         # the fix works
    assert line == "RAN"
