"""Running a Brian2 network cleanly: target selection, preference restore, clear errors."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from typing import Any, Iterator

from plastinet.errors import BackendError, UnsupportedError

__all__ = ["TARGETS", "check_target", "brian2_run"]

TARGETS = ("numpy", "cython", "cpp_standalone")


def check_target(target: str) -> str:
    """Validate a code-generation target name."""
    if target not in TARGETS:
        raise UnsupportedError("brian2 backend", "target", target, "allowed targets: " + ", ".join(TARGETS))
    return target


_BUILD_WORDS = ("compil", "cython", "gcc", "g++", "cc1", "linker", "ld returned", "no such file",
                "make", "distutils", "setuptools", "permission denied")


def _looks_like_build_failure(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it wraps) comes from compiling generated code."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = f"{type(err).__module__}.{type(err).__name__}: {err}".lower()
        if any(word in text for word in _BUILD_WORDS):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def brian2_run(target: str) -> Iterator[Any]:
    """Context for one Brian2 run on ``target``; yields the ``brian2`` module.

    Sets ``prefs.codegen.target`` (runtime targets) or a fresh ``cpp_standalone`` device in
    its own temporary build directory, restores the previous preferences and device
    afterwards, and turns compilation failures into :class:`BackendError` with the fix.
    """
    import brian2

    check_target(target)
    old_target = brian2.prefs.codegen.target
    build_dir = None
    try:
        if target == "cpp_standalone":
            build_dir = tempfile.mkdtemp(prefix="plastinet-brian2-")
            brian2.set_device("cpp_standalone", directory=build_dir, build_on_run=True, debug=False)
        else:
            brian2.prefs.codegen.target = target
        try:
            yield brian2
        except Exception as err:
            text = f"{type(err).__name__}: {err}"
            if target != "numpy" and _looks_like_build_failure(err):
                raise BackendError(
                    f"Brian2 could not compile the network for target={target!r} ({text.splitlines()[0][:200]}). "
                    "Fix: install a C/C++ compiler (and Cython for target='cython'), clear Brian2's cache "
                    "(~/.cython/brian_extensions), or use target='numpy', which needs no compiler."
                ) from err
            raise
    finally:
        if target == "cpp_standalone":
            brian2.device.reinit()
            brian2.device.activate()
            brian2.set_device("runtime")
            if build_dir is not None:
                shutil.rmtree(build_dir, ignore_errors=True)
        brian2.prefs.codegen.target = old_target
