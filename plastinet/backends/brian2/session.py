"""Running a Brian2 network cleanly: target selection, preference restore, clear errors."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from typing import Any, Iterator

from plastinet.errors import BackendError, UnsupportedError

__all__ = ["TARGETS", "check_target", "brian2_run", "run_network", "build_failure_message", "cython_cache_dir"]

TARGETS = ("numpy", "cython", "cpp_standalone")


def check_target(target: str) -> str:
    """Validate a code-generation target name."""
    if target not in TARGETS:
        raise UnsupportedError("brian2 backend", "target", target, "allowed targets: " + ", ".join(TARGETS))
    return target


_BUILD_WORDS = ("compil", "cython", "gcc", "g++", "cc1", "clang", "linker", "ld returned", "makefile",
                "distutils", "setuptools", "no such file", "permission denied",
                "not a directory", "invalid elf", "file too short", "undefined symbol")


def _chain(err: BaseException | None) -> list[BaseException]:
    """``err`` and every exception it wraps (``__cause__`` / ``__context__``)."""
    seen: list[BaseException] = []
    while err is not None and all(err is not e for e in seen):
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


def _text(err: BaseException) -> str:
    return f"{type(err).__module__}.{type(err).__name__}: {err}"


def _looks_like_build_failure(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it wraps) comes from compiling or loading generated code."""
    return any(word in _text(e).lower() for e in _chain(err) for word in _BUILD_WORDS)


def cython_cache_dir() -> str | None:
    """The directory where Brian2 keeps compiled Cython extensions (None without Cython)."""
    try:
        from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

        return get_cython_cache_dir()
    except Exception:   # pragma: no cover - Brian2 internals moved: fall back on the preference
        import brian2

        return brian2.prefs.codegen.runtime.cython.cache_dir


def build_failure_message(err: BaseException, target: str, cache_dir: str | None) -> str | None:
    """The message (what failed, and the fix) for a failed build on a compiled ``target``.

    None when ``err`` does not come from compiling or loading generated code, or when
    ``target`` is ``"numpy"`` (nothing is compiled).
    """
    if target == "numpy" or not _looks_like_build_failure(err):
        return None
    chain = _chain(err)
    cause = chain[-1]
    first = (f"{type(cause).__name__}: {cause}".strip().splitlines() or [type(cause).__name__])[0][:300]
    if target == "cython" and cache_dir and any(cache_dir in str(e) for e in chain):
        return (f"Brian2's Cython cache {cache_dir} is broken or not usable ({first}). "
                f"Fix: delete it (rm -rf {cache_dir}; Brian2 compiles again on the next run), or set "
                "brian2.prefs.codegen.runtime.cython.cache_dir to a writable directory, "
                "or use target='numpy', which needs no compiler.")
    needs = "a working C++ compiler and Cython" if target == "cython" else "a working C++ compiler and make"
    cache = f"; if the compiler works, Brian2's cache may be stale: delete {cache_dir}" \
        if target == "cython" and cache_dir else ""
    return (f"Brian2 could not compile the network for target={target!r} ({first}). "
            f"Fix: install {needs} (check the CC/CXX environment variables){cache}, "
            "or use target='numpy', which needs no compiler.")


def run_network(network: Any, duration: Any, **kwargs: Any) -> None:
    """``network.run(duration, **kwargs)``; on failure its objects are marked as used.

    Brian2 warns about every object "never included in a network" when objects of a
    network whose preparation failed are garbage-collected; that noise would bury the
    actual error, so the objects are marked as belonging to ``network`` first.
    """
    try:
        network.run(duration, **kwargs)
    except BaseException:
        for obj in list(network.objects):
            obj._network = network.id
        raise


@contextlib.contextmanager
def brian2_run(target: str) -> Iterator[Any]:
    """Context for one Brian2 run on ``target``; yields the ``brian2`` module.

    Sets ``prefs.codegen.target`` (runtime targets) or a fresh ``cpp_standalone`` device in
    its own temporary build directory, restores the previous preferences and device
    afterwards, and turns failures to compile or load generated code into
    :class:`BackendError` whose message names the cause and the fix (a compiler, a broken
    cache directory, or ``target="numpy"``).
    """
    import brian2

    check_target(target)
    old_target = brian2.prefs.codegen.target
    build_dir = None
    message = None
    try:
        if target == "cpp_standalone":
            build_dir = tempfile.mkdtemp(prefix="plastinet-brian2-")
            brian2.set_device("cpp_standalone", directory=build_dir, build_on_run=True, debug=False)
        else:
            brian2.prefs.codegen.target = target
        try:
            yield brian2
        except Exception as err:
            message = build_failure_message(err, target, cython_cache_dir())
            if message is None:
                raise
            original = err
        if message is not None:
            error = BackendError(message)
            error.original = original      # the exception raised inside Brian2, for debugging
            raise error from None
    finally:
        if target == "cpp_standalone":
            brian2.device.reinit()
            brian2.device.activate()
            brian2.set_device("runtime")
            if build_dir is not None:
                shutil.rmtree(build_dir, ignore_errors=True)
        brian2.prefs.codegen.target = old_target
