"""Thread use of the numpy engines: single-threaded BLAS calls, heads spread over threads.

The chunkwise and parallel engines issue many small matrix products (one chunk of one head
at a time). OpenBLAS splits even those over its thread pool, and the synchronisation costs
more than the product, badly so when another process occupies a core. The engines therefore
run their products with one BLAS thread (:func:`single_threaded_blas`) and spread groups of
heads over a small pool of Python threads instead (:func:`map_heads`; numpy releases the GIL
inside matrix products; ``PLASTINET_NUM_THREADS`` sets their number, see :func:`n_workers`);
the compiled forward chunk loops start threads of their own for their groups, as many as
:func:`head_threads` says. Both are pure performance measures: results do not depend on them.

The BLAS thread count is changed through the OpenBLAS library that numpy (and scipy) load;
if no OpenBLAS is found (another BLAS), :func:`single_threaded_blas` does nothing. The count
is process-wide, so it is set on entry of the outermost engine call and restored on exit of
the last one.

Kernel choice. OpenBLAS picks its kernels from the CPU, unless ``OPENBLAS_CORETYPE`` is set
in the environment before Python starts. :func:`openblas_cores` says which kernels are in use
(``plastinet info`` and the benchmarks print it): on an AVX-512 CPU pinned to the AVX2
``Haswell`` kernels, float32 products run at about half the rate of the ``SkylakeX`` ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = ["single_threaded_blas", "map_heads", "head_threads", "chunk_grain", "n_workers",
           "openblas_cores"]

_PREFIXES = ("scipy_openblas_{}64_", "scipy_openblas_{}", "openblas_{}64_", "openblas_{}")
_controls: list[tuple[Callable[[int], None], Callable[[], int]]] | None = None
_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Callable[[int], None], int]] = []
_pool: ThreadPoolExecutor | None = None


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (Linux), else numpy's copy."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    if not paths:
        import glob
        base = os.path.dirname(np.__file__)
        for pattern in (os.path.join(base, os.pardir, "numpy.libs", "*openblas*"),
                        os.path.join(base, ".dylibs", "*openblas*")):
            paths.extend(glob.glob(pattern))
    return paths


def _openblas_symbols(*names: str, patterns: Sequence[str] = _PREFIXES) -> list[tuple[Callable, ...]]:
    """For each loaded OpenBLAS library, its functions ``names`` (with the library's prefix:
    the first of ``patterns`` under which it has them all)."""
    found = []
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in patterns:
            try:
                found.append(tuple(getattr(lib, prefix.format(name)) for name in names))
                break
            except AttributeError:
                continue
    return found


def _find_controls() -> list[tuple[Callable[[int], None], Callable[[], int]]]:
    found = _openblas_symbols("set_num_threads", "get_num_threads")
    for setter, getter in found:
        setter.argtypes, setter.restype = [ctypes.c_int], None
        getter.argtypes, getter.restype = [], ctypes.c_int
    return found


def openblas_cores() -> list[str]:
    """Kernel families (e.g. ``"Haswell"``, ``"SkylakeX"``) of the OpenBLAS copies loaded.

    Returns
    -------
    list of str
        One entry per OpenBLAS library found (numpy's and scipy's may differ); empty when
        numpy uses another BLAS.
    """
    cores = []
    for (fn,) in _openblas_symbols("get_corename"):
        fn.argtypes, fn.restype = [], ctypes.c_char_p
        cores.append(fn().decode())
    return cores


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed numpy products with one OpenBLAS thread (re-entrant, thread-safe)."""
    global _controls, _depth, _saved
    with _lock:
        if _controls is None:
            try:
                _controls = _find_controls()
            except Exception:  # pragma: no cover - exotic platforms: leave BLAS alone
                _controls = []
        if _depth == 0:
            _saved = [(setter, int(getter())) for setter, getter in _controls]
            for setter, n in _saved:
                if n != 1:
                    setter(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for setter, n in _saved:
                    if n != 1:
                        setter(n)
                _saved = []


def n_workers() -> int:
    """Number of Python threads the engines spread heads over.

    The usable cores, at most 8; the environment variable ``PLASTINET_NUM_THREADS`` (read on
    every call) sets it explicitly, e.g. ``1`` on a machine shared with other jobs.
    """
    env = os.environ.get("PLASTINET_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"PLASTINET_NUM_THREADS must be a positive integer, got {env!r}") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < workers:  # noqa: SLF001 - sizing only
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plastinet-fwp")
        return _pool


#: Smallest total flops of a call, and smallest "grain" (flops of the typical work per chunk
#: and head, see :func:`chunk_grain`), for which heads are spread over threads. Below the
#: grain, numpy's per-call overhead (which holds the GIL) outweighs the products and a second
#: thread slows the call down. Measured on two cores (chunkwise delta rule, forward, float32,
#: 2026-12-02, with the UT inverse formed once per call): one thread is faster or equal at
#: grain <= 1.7e5 (d = 16 / 32 / 48 with C = 32), two threads 1.2-2.1x faster at grain
#: >= 2.1e5 (d = 64 with C = 32; d >= 16 with C = 64, where the C^3 inverse dominates).
MIN_WORK = 2e7
MIN_GRAIN = 1.8e5


def chunk_grain(C: int, d_k: int, d_v: int, dtype) -> float:
    """The ``grain`` of :func:`map_heads` for the chunkwise forms.

    The flops of one chunk product ``(C x d_k) @ (d_k x d_v)``, counted at float32 cost
    (times itemsize / 4), plus those of the chunk's share of the UT inverse (``C^3 / 3``
    multiply-adds, always computed in float64).
    """
    return 2.0 * C * d_k * d_v * np.dtype(dtype).itemsize / 4 + 2.0 * C ** 3 / 3


def head_threads(N: int, work: float, grain: float = float("inf")) -> int:
    """How many threads ``N`` heads are spread over: :func:`n_workers` (at most ``N``) where
    ``work`` and ``grain`` (see :func:`map_heads`) make threads pay off, else 1."""
    return min(n_workers(), N) if work >= MIN_WORK and grain >= MIN_GRAIN else 1


def map_heads(fn: Callable[..., tuple], arrays: Sequence[np.ndarray | None], *extra,
              work: float, grain: float = float("inf")) -> tuple:
    """``fn(*arrays, *extra)`` with the arrays' leading (head) axis split over threads.

    ``fn`` returns a tuple of arrays whose leading axis is the head axis; the pieces are
    concatenated. A ``fn`` that writes its results into (slices of) output arrays passed
    among ``arrays`` returns an empty tuple, which saves the concatenation. ``None`` entries
    of ``arrays`` are passed through. ``work`` (about the flops of the call) and ``grain``
    (about the flops of its typical work per chunk and head, see :func:`chunk_grain`;
    default: large) decide whether threads pay off (:data:`MIN_WORK`, :data:`MIN_GRAIN`);
    ``PLASTINET_NUM_THREADS`` caps their number.
    """
    N = next(a for a in arrays if a is not None).shape[0]
    groups = head_threads(N, work, grain)
    if groups <= 1:
        with single_threaded_blas():
            return fn(*arrays, *extra)
    bounds = [g * N // groups for g in range(groups + 1)]
    parts = [[None if a is None else a[s:e] for a in arrays] for s, e in zip(bounds[:-1], bounds[1:])]
    with single_threaded_blas():
        pool = _get_pool(groups - 1)
        futures = [pool.submit(fn, *p, *extra) for p in parts[1:]]
        first = fn(*parts[0], *extra)
        rest = [f.result() for f in futures]
    return tuple(np.concatenate(pieces, axis=0) for pieces in zip(first, *rest))
