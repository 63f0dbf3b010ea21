"""Compiled chunk loop of the delta rule (the fast path of :func:`.chunkwise.delta`).

The numpy chunkwise engine (:func:`.chunkwise.gated_delta_engine`) issues a few numpy calls
per chunk and forms the state-independent matrices of many chunks at once; both cost
memory traffic and Python time that holds the GIL, so that its two head threads reach about
1.5-1.9x one thread. ``delta_kernel.c`` does the same arithmetic one chunk at a time while
the chunk is in cache: two BLAS products for ``Q K^T`` and ``K K^T``, the UT inverse by
forward substitution in double precision (as the numpy engine forms it), and four BLAS
products for the pseudo-values, read-outs and state; it runs without the GIL.

The products call numpy's own BLAS (the ``cblas_?gemm`` of the OpenBLAS numpy loads; its
thread count is managed by :mod:`._blas`), so no BLAS is linked at build time. The C file
is compiled on first use with the system C compiler (``$CC``, else Python's, else ``cc``)
and cached in ``$PLASTINET_CACHE_DIR`` (default ``$XDG_CACHE_HOME/plastinet``, i.e.
``~/.cache/plastinet``), keyed by the source, compiler, flags, BLAS integer width and CPU.

Opt-in: ``PLASTINET_NATIVE=1`` (read on every call) enables it; by default the numpy engine
runs. It is not the default yet because only the forward pass is compiled (and the
backward's recomputation of the states): with it, a training step's backward costs 3.6x the
(now faster) forward at T = 8192 and its peak memory 2.2x, outside the training targets
(``docs/training.md``). Where there is no compiler, no OpenBLAS or the compilation fails,
:func:`delta_kernel` returns None (warning once, with the reason) and the numpy engine is
used: same results to rounding, slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from plastinet.fwp.forms._blas import _openblas_symbols

__all__ = ["delta_kernel", "native_status", "SOURCE"]

SOURCE = Path(__file__).with_name("delta_kernel.c")
#: ``(symbol pattern, BLAS integer C type)`` of ``cblas_?gemm``, most specific first
_GEMM_SYMBOLS = (("scipy_cblas_{}gemm64_", "long long"), ("cblas_{}gemm64_", "long long"),
                 ("scipy_cblas_{}gemm", "int"), ("cblas_{}gemm", "int"))   # {}: s or d
_FLAGS = (["-O3", "-march=native"], ["-O3"])

_lock = threading.Lock()
_loaded: dict | None = None          # {"f32": (fn, gemm), "f64": (fn, gemm)} or {} on failure
_reason = ""


def _enabled() -> bool:
    return os.environ.get("PLASTINET_NATIVE", "0").strip().lower() in ("1", "true", "yes", "on")


def _cache_dir() -> Path:
    env = os.environ.get("PLASTINET_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "plastinet"


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("model name", "flags")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _find_gemm() -> tuple[int, int, str]:
    """Addresses of numpy's BLAS ``cblas_sgemm``, ``cblas_dgemm`` and their integer C type."""
    for pattern, int_type in _GEMM_SYMBOLS:
        found = _openblas_symbols("s", "d", patterns=(pattern,))
        if found:
            s, d = (ctypes.cast(fn, ctypes.c_void_p).value for fn in found[0])
            return s, d, int_type
    raise RuntimeError("numpy does not use OpenBLAS (no cblas_sgemm found)")


def _compile(int_type: str) -> Path:
    """Compile :data:`SOURCE` (once per key) and return the shared library's path."""
    source = SOURCE.read_bytes()
    cc = _compiler()
    errors = []
    for flags in _FLAGS:
        args = cc + flags + ["-fPIC", "-shared", f"-DBLAS_INT={int_type}"]
        key = hashlib.sha256(repr((source, args, sys.platform, platform.machine(), _cpu())).encode())
        target = _cache_dir() / f"delta_kernel-{key.hexdigest()[:16]}.so"
        if target.exists():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError:                                       # read-only home: this process only
            target = Path(tempfile.mkdtemp(prefix="plastinet-")) / target.name
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            run = subprocess.run(args + [str(SOURCE), "-o", tmp], capture_output=True, text=True)
            if run.returncode == 0:
                os.replace(tmp, target)                       # atomic: safe for parallel processes
                return target
            errors.append(f"{' '.join(args)}: {run.stderr.strip()[-400:]}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError("compilation failed: " + " | ".join(errors))


def _load() -> dict:
    global _loaded, _reason
    with _lock:
        if _loaded is None:
            try:
                sgemm, dgemm, int_type = _find_gemm()
                lib = ctypes.CDLL(str(_compile(int_type)))
                _loaded = {}
                for name, gemm in (("f32", sgemm), ("f64", dgemm)):
                    fn = getattr(lib, f"delta_{name}")
                    fn.restype = ctypes.c_int
                    fn.argtypes = [ctypes.c_void_p] + [ctypes.c_longlong] * 5 + [ctypes.c_void_p] * 8
                    _loaded[name] = (fn, gemm)
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                _loaded, _reason = {}, str(err)
                warnings.warn(f"plastinet: the compiled delta-rule kernel is unavailable ({err}); "
                              "using the numpy engine (same results, slower). Unset "
                              "PLASTINET_NATIVE to silence this.", RuntimeWarning, stacklevel=4)
        return _loaded


def native_status() -> str:
    """``"enabled"``, ``"disabled (PLASTINET_NATIVE=1 enables it)"`` or ``"unavailable: <reason>"``."""
    if not _enabled():
        return "disabled (PLASTINET_NATIVE=1 enables it)"
    return "enabled" if _load() else f"unavailable: {_reason}"


def delta_kernel(dtype: np.dtype) -> Callable[..., None] | None:
    """The compiled chunk loop for ``dtype`` (float32/float64), or None (use numpy).

    The returned ``run(Q, K, V, beta, ST, Y, states=None, pseudo=None)`` takes C-contiguous
    arrays of that dtype, ``Q, K (N, n, C, d_k)``, ``V (N, n, C, d_v)``, ``beta (N, n, C)``,
    the transposed states ``ST (N, d_k, d_v)`` (updated in place) and the read-outs
    ``Y (N, n, C, d_v)`` (written; None: not formed); ``states (N, n, d_k, d_v)`` and
    ``pseudo (N, n, C, d_v)``, if given, receive the transposed chunk-entry states and the
    pseudo-values (as :func:`.chunkwise.gated_delta_engine` does for the backward pass).
    """
    if not _enabled():
        return None
    kernels = _load()
    name = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}.get(np.dtype(dtype))
    if name is None or not kernels:
        return None
    fn, gemm = kernels[name]
    dtype = np.dtype(dtype)

    def run(Q, K, V, beta, ST, Y, states=None, pseudo=None) -> None:
        N, n, C, d_k = Q.shape
        d_v = V.shape[-1]
        shapes = ((Q, (N, n, C, d_k)), (K, (N, n, C, d_k)), (V, (N, n, C, d_v)), (beta, (N, n, C)),
                  (ST, (N, d_k, d_v)), (Y, (N, n, C, d_v)), (states, (N, n, d_k, d_v)),
                  (pseudo, (N, n, C, d_v)))
        for a, shape in shapes:         # the C code trusts these: check, never crash
            if a is not None and (a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous):
                raise ValueError(f"delta kernel: expected a C-contiguous {dtype} array "
                                 f"of shape {shape}, got {a.dtype} {a.shape}")
        pointers = [None if a is None else a.ctypes.data for a in (Q, K, V, beta, ST, Y, states, pseudo)]
        if fn(gemm, N, n, C, d_k, d_v, *pointers):
            raise MemoryError("delta kernel: could not allocate its chunk buffers")

    return run
