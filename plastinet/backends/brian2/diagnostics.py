"""What the brian2 backend reports in ``plastinet info``: whether its compiled targets can build."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

__all__ = ["diagnostics"]


def _cxx_compiler() -> str | None:
    """The C++ compiler Brian2 would use (``$CXX``, else ``c++``/``g++``/``clang++`` on PATH)."""
    env = os.environ.get("CXX")
    if env and shutil.which(env.split()[0]):
        return shutil.which(env.split()[0])
    for name in ("c++", "g++", "clang++"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _check_cython() -> tuple[bool, str]:
    """Whether Brian2's own Cython test compilation succeeds (cached by Brian2 after the first run)."""
    if importlib.util.find_spec("Cython") is None:
        return False, "Cython is not installed (pip install cython)"
    import logging

    try:
        from brian2.codegen.runtime.cython_rt.cython_rt import CythonCodeObject
    except Exception as err:  # brian2 import problems are reported, not raised
        return False, f"brian2's Cython runtime cannot be imported ({type(err).__name__}: {err})"
    logger = logging.getLogger("brian2")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        ok = bool(CythonCodeObject.is_available())
    finally:
        logger.setLevel(level)
    import Cython

    return ok, (f"Brian2's test extension built with Cython {Cython.__version__}" if ok else
                "Brian2's test compilation failed; install a C/C++ compiler or set CC/CXX")


def _check_cpp() -> tuple[bool, str]:
    """Whether a small C++ program compiles and runs (what ``cpp_standalone`` needs, plus make)."""
    import subprocess
    import tempfile

    cxx = _cxx_compiler()
    if cxx is None:
        return False, "no C++ compiler on PATH (install g++ or clang++, or set CXX)"
    if shutil.which("make") is None:
        return False, f"C++ compiler {cxx} found but 'make' is missing"
    with tempfile.TemporaryDirectory(prefix="plastinet-cxx-") as tmp:
        src, exe = Path(tmp) / "t.cpp", Path(tmp) / "t"
        src.write_text("#include <vector>\nint main() { std::vector<double> v(3, 1.0); return v.size() == 3 ? 0 : 1; }\n")
        try:
            proc = subprocess.run([cxx, "-O0", "-std=c++11", str(src), "-o", str(exe)], capture_output=True,
                                  text=True, timeout=120)
            ok = proc.returncode == 0 and subprocess.run([str(exe)], timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError) as err:
            return False, f"{cxx} could not be run ({err})"
    return ok, (f"{cxx} builds and runs a test program" if ok else
                f"{cxx} failed on a test program: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '?'}")


def diagnostics(compile: bool = True) -> list[str]:
    """Lines on the code-generation targets: whether Cython and C++ builds work here.

    Parameters
    ----------
    compile : bool
        Build Brian2's Cython test extension and a small C++ program (a few seconds the
        first time); ``False`` only looks for a C++ compiler.
    """
    if importlib.util.find_spec("brian2") is None:
        return ["brian2 compilation: brian2 is not installed"]
    if not compile:
        cxx = _cxx_compiler()
        return [f"brian2 compilation: not tested (--no-compile); C++ compiler {'found at ' + cxx if cxx else 'NOT found'}"]
    lines = []
    results = {"cython": _check_cython(), "cpp_standalone": _check_cpp()}
    for target, (ok, detail) in results.items():
        lines.append(f"  target {target:<15} {'can compile' if ok else 'CANNOT compile'}: {detail}")
    usable = ["numpy"] + [t for t, (ok, _) in results.items() if ok]
    return (["brian2 compilation: tested (a few seconds the first time)"] + lines
            + ["  target numpy           needs no compiler (always available)",
               "brian2 targets usable here: " + ", ".join(usable)])
