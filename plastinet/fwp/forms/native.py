"""Compiled chunk loops of the chunkwise rules (the fast path of :mod:`.chunkwise` and of its backward).

The numpy chunkwise engine (:func:`.chunkwise.gated_delta_engine`) issues a few numpy calls
per chunk and forms the state-independent matrices of many chunks at once; both cost
memory traffic and Python time that holds the GIL, so that its two head threads reach about
1.5-1.9x one thread. ``delta_kernel.c`` does the same arithmetic one chunk at a time while
the chunk is in cache: two BLAS products for ``Q K^T`` and ``K K^T``, the UT inverse by
forward substitution in double precision (as the numpy engine forms it), and four BLAS
products for the pseudo-values, read-outs and state; it runs without the GIL, and the
forward loops spread their heads over threads they start themselves (``threads``; built
with ``-pthread``).

The products call numpy's own BLAS (the ``cblas_?gemm`` of the OpenBLAS numpy loads; its
thread count is managed by :mod:`plastinet._blas`), so no BLAS is linked at build time;
where the compiler targets AVX2 and FMA, the float32 products whose results have a multiple
of 8 columns run instead in ``small_gemm.h`` (cache-resident tiles without OpenBLAS's
copies of the operands; triangular products at about their triangular cost). The C file
is compiled on first use and cached as :mod:`plastinet._native` describes (keyed by the
source, compiler, flags, BLAS integer width and CPU).

The gated delta rule runs the same loops with gate factors, and the Hebbian rules (linear
attention, scalar and per-key decay) have their own (:func:`hebbian_kernel`). The backward
passes have their compiled counterparts (:func:`delta_backward_kernel`,
:func:`hebbian_backward_kernel`: the reverse sweeps of
:mod:`plastinet.fwp.gradients.chunkwise`), so that training keeps its cost and memory
relative to the forward. Where there is no compiler, no OpenBLAS or the compilation
fails, the functions return None (warning once, with the reason) and the numpy engine is
used: same results to rounding, slower. ``PLASTINET_NATIVE=0`` (read on every call) selects
the numpy engine explicitly.
"""

from __future__ import annotations

import ctypes
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from plastinet._blas import _openblas_symbols
from plastinet._native import compile_library
from plastinet._native import native_enabled as _enabled

__all__ = ["delta_kernel", "delta_backward_kernel", "hebbian_kernel", "hebbian_backward_kernel",
           "native_status", "SOURCE", "BODIES", "SCREEN_COLS"]

SOURCE = Path(__file__).with_name("delta_kernel.c")
#: the headers SOURCE includes: the bodies (twice, float and double) and the small products
BODIES = tuple(Path(__file__).with_name(name) for name in ("delta_kernel_body.h",
                                                           "hebbian_kernel_body.h", "small_gemm.h"))
#: ``(symbol pattern, BLAS integer C type)`` of ``cblas_?gemm``, most specific first
_GEMM_SYMBOLS = (("scipy_cblas_{}gemm64_", "long long"), ("cblas_{}gemm64_", "long long"),
                 ("scipy_cblas_{}gemm", "int"), ("cblas_{}gemm", "int"))   # {}: s or d
_FLAGS = (["-O3", "-march=native"], ["-O3"])
#: numbers per head of the forward loops' checks (``screen``; SCREEN_COLS of delta_kernel.c)
SCREEN_COLS = 7

_lock = threading.Lock()
_loaded: dict | None = None          # {"f32"/"f64": (*kernels, gemm)}, {} on failure
_reason = ""


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
    return compile_library(SOURCE, BODIES, _FLAGS, [f"-DBLAS_INT={int_type}", "-pthread"])


def _load() -> dict:
    global _loaded, _reason
    with _lock:
        if _loaded is None:
            try:
                sgemm, dgemm, int_type = _find_gemm()
                lib = ctypes.CDLL(str(_compile(int_type)))
                _loaded = {}
                for name, gemm in (("f32", sgemm), ("f64", dgemm)):
                    fns = tuple(getattr(lib, f"{fn}_{name}") for fn in
                                ("delta", "delta_backward", "hebbian", "hebbian_backward"))
                    for fn, sizes, pointers in zip(fns, (7, 6, 8, 7), (14, 15, 12, 14)):
                        fn.restype = ctypes.c_int
                        fn.argtypes = [ctypes.c_void_p] + [ctypes.c_longlong] * sizes + [ctypes.c_void_p] * pointers
                    _loaded[name] = (*fns, gemm)
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                _loaded, _reason = {}, str(err)
                warnings.warn(f"plastinet: the compiled chunk loops are unavailable ({err}); "
                              "using the numpy engine (same results, slower). Set "
                              "PLASTINET_NATIVE=0 to silence this.", RuntimeWarning, stacklevel=4)
        return _loaded


def native_status() -> str:
    """``"enabled"``, ``"disabled (PLASTINET_NATIVE=0)"`` or ``"unavailable: <reason>"``."""
    if not _enabled():
        return "disabled (PLASTINET_NATIVE=0)"
    return "enabled" if _load() else f"unavailable: {_reason}"


def _functions(dtype: np.dtype) -> tuple | None:
    """``(delta, delta_backward, hebbian, hebbian_backward, gemm)`` for ``dtype``, or None."""
    if not _enabled():
        return None
    kernels = _load()
    name = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}.get(np.dtype(dtype))
    return kernels[name] if name is not None and kernels else None


def _call(fn, gemm, dtype: np.dtype, dims: tuple[int, ...], arrays,
          name: str = "delta kernel") -> int:
    """Check ``arrays`` (``(array or None, expected shape[, dtype])``; the C code trusts
    them), call, and return the kernel's status (0: done; 2: see
    :func:`hebbian_backward_kernel`)."""
    for a, shape, *kind in arrays:
        want = kind[0] if kind else dtype
        if a is not None and (a.shape != shape or a.dtype != want or not a.flags.c_contiguous):
            raise ValueError(f"{name}: expected a C-contiguous {want} array "
                             f"of shape {shape}, got {a.dtype} {a.shape}")
    status = fn(gemm, *dims, *(None if a[0] is None else a[0].ctypes.data for a in arrays))
    if status == 1:
        raise MemoryError(f"{name}: could not allocate its chunk buffers")
    return status


def _threads(threads: int) -> int:
    if not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"kernel: threads must be a positive integer, got {threads!r}")
    return int(threads)


def _every(every: int) -> int:
    if not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"delta kernel: every must be a positive integer, got {every!r}")
    return int(every)


def delta_kernel(dtype: np.dtype) -> Callable[..., None] | None:
    """The compiled forward chunk loop for ``dtype`` (float32/float64), or None (use numpy).

    The returned ``run(Q, K, V, beta, ST, Y, states=None, pseudo=None, every=1, alpha=None,
    peak=None)`` takes
    C-contiguous arrays of that dtype, ``Q, K (N, n, C, d_k)``, ``V (N, n, C, d_v)``,
    ``beta (N, n, C)``, the gates ``alpha (N, n, C)`` (None: the plain delta rule; else the
    gated delta rule), the transposed states ``ST (N, d_k, d_v)`` (updated in place) and the
    read-outs ``Y (N, n, C, d_v)`` (written; None: not formed); ``states
    (N, ceil(n / every), d_k, d_v)`` and ``pseudo (N, n, C, d_v)``, if given, receive the
    transposed entering states of every ``every``-th chunk and all pseudo-values (for
    :func:`delta_backward_kernel`); ``peak (N,)``, if given, is raised to the largest ``|entry|``
    of a state at a chunk boundary (entering states and the final one). ``inv``, an array
    shaped as ``Q`` (needs ``C <= d_k``), receives each chunk's ``C x C`` matrix ``T`` in the
    first ``C * C`` numbers of the chunk's rows, for :func:`delta_backward_kernel`. ``W0`` and ``W``
    ``(N, d_v, d_k)``, the states in the caller's layout, if given: each head's ``ST`` is first
    read from ``W0`` and its final state written to ``W`` (transposed in cache, per head).
    ``screen (N, SCREEN_COLS)``, if given (zeros on entry), receives each head's largest
    ``|entry|`` of ``Q``, ``K``, ``V``, the read-outs and the final state, NaN or infinite
    where one is, the largest ``beta_t ||k_t||^2`` and the largest gate by its bits with the
    sign (above 1 if a gate lies outside ``[+0, 1]`` or is NaN): the checks of the inputs,
    gates and outputs and of the update's expansion, made while the loop has the numbers in
    cache. ``threads``: the heads are split into that many contiguous groups, each on a
    thread of its own started by the call (the first on the calling thread; none outlives
    the call), with the same results for any number.
    """
    functions = _functions(dtype)
    if functions is None:
        return None
    fwd, *_, gemm = functions
    dtype = np.dtype(dtype)

    def run(Q, K, V, beta, ST, Y, states=None, pseudo=None, every: int = 1, alpha=None,
            peak=None, inv=None, W0=None, W=None, screen=None, threads: int = 1) -> None:
        N, n, C, d_k = Q.shape
        d_v = V.shape[-1]
        _call(fwd, gemm, dtype, (_threads(threads), N, n, C, d_k, d_v, _every(every)),
              ((Q, (N, n, C, d_k)), (K, (N, n, C, d_k)), (V, (N, n, C, d_v)), (beta, (N, n, C)),
               (alpha, (N, n, C)), (ST, (N, d_k, d_v)), (Y, (N, n, C, d_v)),
               (states, (N, -(-n // every), d_k, d_v)), (pseudo, (N, n, C, d_v)), (peak, (N,)))
              + (_inv_array(inv, (N, n, C, d_k)),)
              + ((W0, (N, d_v, d_k)), (W, (N, d_v, d_k)), (screen, (N, SCREEN_COLS))))

    return run


def delta_backward_kernel(dtype: np.dtype) -> Callable[..., None] | None:
    """The compiled reverse sweep of the chunkwise delta rule's backward, or None (use numpy).

    The returned ``run(Q, K, V, beta, dY, states, pseudo, dST, dQ, dK, dB, every, alpha=None,
    carry=None, dalpha=None, inv=None)`` takes the
    chunked inputs as :func:`delta_kernel`, the read-out cotangents ``dY (N, n, C, d_v)``, the
    states (of every ``every``-th chunk; the others are rebuilt from them and the
    pseudo-values) and pseudo-values the forward kernel recorded (``pseudo`` is
    overwritten by the value gradients), ``dST (N, d_k, d_v)``: the transposed cotangent of
    the final state on entry, of the initial state on return; it writes the gradients
    ``dQ, dK (N, n, C, d_k)`` and ``dB (N, n, C)``. ``alpha (N, n, C)``: the gates of the
    gated delta rule (None: the plain delta rule); then ``carry (N,)`` (float64, in:
    ``<dW, W_T>``) and ``dalpha (N, n, C)`` (written: the gates' gradient, see
    ``delta_kernel_body.h``) are needed. ``inv``: the array :func:`delta_kernel` filled
    (None: the backward forms each chunk's ``T`` again); it may be ``dK`` itself (each
    chunk's ``T`` is read before its gradients are written). The arithmetic is that of
    :func:`plastinet.fwp.gradients.chunkwise.gated_delta`.
    """
    functions = _functions(dtype)
    if functions is None:
        return None
    _, bwd, *_, gemm = functions
    dtype = np.dtype(dtype)

    def run(Q, K, V, beta, dY, states, pseudo, dST, dQ, dK, dB, every: int, alpha=None,
            carry=None, dalpha=None, inv=None) -> None:
        N, n, C, d_k = Q.shape
        d_v = V.shape[-1]
        qk, cv = (N, n, C, d_k), (N, n, C, d_v)
        _gate_outputs(alpha, carry, dalpha)
        _call(bwd, gemm, dtype, (N, n, C, d_k, d_v, _every(every)),
              ((Q, qk), (K, qk), (V, cv), (beta, (N, n, C)), (alpha, (N, n, C)), (dY, cv),
               (states, (N, -(-n // every), d_k, d_v)),
               (pseudo, cv), (dST, (N, d_k, d_v)), (dQ, qk), (dK, qk), (dB, (N, n, C))) +
              _gate_arrays(carry, dalpha, (N,), (N, n, C)) + (_inv_array(inv, qk),))

    return run


def hebbian_kernel(dtype: np.dtype) -> Callable[..., None] | None:
    """The compiled forward chunk loop of the Hebbian rules for ``dtype``, or None (use numpy).

    The returned ``run(Q, K, V, beta, alpha, ST, Y, states=None, every=1, peak=None)`` takes
    C-contiguous arrays of that dtype, ``Q, K (N, n, C, d_k)``, ``V (N, n, C, d_v)``, ``beta (N, n, C)``, the gates
    ``alpha (N, n, C, 1)`` (scalar), ``(N, n, C, d_k)`` (per key) or None (no decay), the
    transposed states ``ST (N, d_k, d_v)`` (updated in place) and the read-outs
    ``Y (N, n, C, d_v)`` (written; None: not formed); ``states (N, ceil(n / every), d_k, d_v)``,
    if given, receives the transposed entering states of every ``every``-th chunk (for
    :func:`hebbian_backward_kernel`); ``peak (N,)``, ``W0``, ``W`` and ``screen (N, SCREEN_COLS)`` as
    for :func:`delta_kernel` (its gain column stays 0), and ``threads`` as there. The
    arithmetic is that of :func:`.chunkwise.decayed_hebbian` (:func:`.chunkwise.hebbian`
    without gates).
    """
    functions = _functions(dtype)
    if functions is None:
        return None
    heb, gemm = functions[2], functions[-1]
    dtype = np.dtype(dtype)

    def run(Q, K, V, beta, alpha, ST, Y, states=None, every: int = 1, peak=None, W0=None,
            W=None, screen=None, threads: int = 1) -> None:
        N, n, C, d_k = Q.shape
        d_v = V.shape[-1]
        d_a = _gate_units(alpha, d_k)
        _call(heb, gemm, dtype, (_threads(threads), N, n, C, d_k, d_v, d_a, _every(every)),
              ((Q, (N, n, C, d_k)), (K, (N, n, C, d_k)), (V, (N, n, C, d_v)), (beta, (N, n, C)),
               (alpha, (N, n, C, d_a)), (ST, (N, d_k, d_v)), (Y, (N, n, C, d_v)),
               (states, (N, -(-n // every), d_k, d_v)), (peak, (N,)), (W0, (N, d_v, d_k)),
               (W, (N, d_v, d_k)), (screen, (N, SCREEN_COLS))), "hebbian kernel")

    return run


def _gate_outputs(alpha, carry, dalpha) -> None:
    """Gates need the ``carry`` and ``dalpha`` arrays of the backward kernels."""
    if alpha is not None and (carry is None or dalpha is None):
        raise ValueError("kernel: gates need the carry and dalpha arrays")


def _gate_arrays(carry, dalpha, carry_shape, dalpha_shape) -> tuple:
    """The ``_call`` entries of ``carry`` (float64) and ``dalpha``."""
    return (carry, carry_shape, np.dtype(np.float64)), (dalpha, dalpha_shape)


def _inv_array(inv, shape) -> tuple:
    """The ``_call`` entry of the delta kernels' ``inv`` (each chunk's ``T``; or of None)."""
    if inv is not None and shape[2] > shape[3]:
        raise ValueError(f"delta kernel: the chunk's T needs C <= d_k, got C = {shape[2]}, "
                         f"d_k = {shape[3]}")
    return inv, shape


def _gate_units(alpha, d_k: int) -> int:
    d_a = 0 if alpha is None else alpha.shape[-1]
    if d_a not in (0, 1, d_k):
        raise ValueError(f"hebbian kernel: gates must have 1 or d_k = {d_k} units, got {d_a}")
    return d_a


def hebbian_backward_kernel(dtype: np.dtype) -> Callable[..., bool] | None:
    """The compiled reverse sweep of the Hebbian rules' backward, or None (use numpy).

    The returned ``run(Q, K, V, beta, alpha, dY, states, dST, dQ, dK, dV, dB, every,
    carry=None, dalpha=None)`` takes
    the chunked inputs as :func:`hebbian_kernel`, the read-out cotangents ``dY (N, n, C, d_v)``,
    the states :func:`hebbian_kernel` kept (every ``every``-th chunk), ``dST (N, d_k, d_v)``:
    the transposed cotangent of the final state on entry, of the initial state on return; it
    writes the gradients ``dQ, dK (N, n, C, d_k)``, ``dV (N, n, C, d_v)`` and ``dB (N, n, C)``;
    with gates also ``dalpha`` (shaped as ``alpha``) from ``carry (N, d_a)`` (float64, in:
    ``<dW, W_T>`` per gate unit; see ``hebbian_kernel_body.h``). It returns False, with the
    outputs incomplete, if per-key gates decay by more than ``1e-12`` over a chunk (the numpy
    engine then does the call).
    """
    functions = _functions(dtype)
    if functions is None:
        return None
    bwd, gemm = functions[3], functions[-1]
    dtype = np.dtype(dtype)

    def run(Q, K, V, beta, alpha, dY, states, dST, dQ, dK, dV, dB, every: int, carry=None,
            dalpha=None) -> bool:
        N, n, C, d_k = Q.shape
        d_v = V.shape[-1]
        d_a = _gate_units(alpha, d_k)
        qk, cv = (N, n, C, d_k), (N, n, C, d_v)
        _gate_outputs(alpha, carry, dalpha)
        return _call(bwd, gemm, dtype, (N, n, C, d_k, d_v, d_a, _every(every)),
                     ((Q, qk), (K, qk), (V, cv), (beta, (N, n, C)), (alpha, (N, n, C, d_a)),
                      (dY, cv), (states, (N, -(-n // every), d_k, d_v)), (dST, (N, d_k, d_v)),
                      (dQ, qk), (dK, qk), (dV, cv), (dB, (N, n, C))) +
                     _gate_arrays(carry, dalpha, (N, d_a), (N, n, C, d_a)),
                     "hebbian kernel") == 0

    return run
