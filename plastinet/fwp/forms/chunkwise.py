"""Chunkwise form: parallel inside chunks of ``C`` steps, recurrent across chunks.

The sequence is cut into chunks (the last one padded with steps that do not change the
state: zero keys, queries and learning rates, unit gates). Everything that does not depend
on the state entering a chunk is computed for all chunks at once with batched matrix
products; only a short loop over chunks carries the state.

Delta and gated delta rules use the WY/UT representation (Yang et al. 2024; for the gated
rule, Yang et al. 2025): inside a chunk with entering state ``S`` and inclusive decay
``g_t = prod_{s<=t} alpha_s`` (from the chunk start), the pseudo-values
``u_t = beta_t (v_t - alpha_t W_{t-1} k_t)`` satisfy

    (I + strict_tril(diag(beta) (K K^T * D))) U = diag(beta) (V - diag(g) K S^T),

with ``D_{t tau} = g_t / g_tau``. Writing ``T`` for the inverse of that unit-lower-triangular
matrix, ``U = T diag(beta) (V - diag(g) K S^T)``; only the small ``C x C`` matrix
``T diag(beta)`` is formed ahead of the loop over chunks (the WY factors ``T diag(beta) V``
and ``T diag(beta g) K`` are never needed). Then ``Y = diag(g) Q S^T + tril(Q K^T * D) U``
and the next state is ``g_C S + U^T diag(g_C / g) K``.

Every rule's chunk loop also exists compiled (:mod:`.native`), which is the default; the
numpy engines here (:func:`hebbian_engine`, :func:`decayed_hebbian_engine`,
:func:`gated_delta_engine`) are the reference and the fallback (``PLASTINET_NATIVE=0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plastinet._blas import chunk_grain, head_threads, map_heads, single_threaded_blas
from plastinet.fwp.forms.decay import cumulative_log_decay, decay_ratio, decayed_scores
from plastinet.fwp.forms.native import SCREEN_COLS, delta_kernel, hebbian_kernel
from plastinet.validation import check_finite

__all__ = ["hebbian", "decayed_hebbian", "delta", "gated_delta", "unit_lower_inverse",
           "hebbian_engine", "decayed_hebbian_engine", "gated_delta_engine", "LoopChecks"]


@dataclass
class LoopChecks:
    """The checks of one chunkwise call that the compiled chunk loops make as they run.

    The loops record each head's largest ``|entry|`` of the inputs, read-outs and final state
    and (delta rules) the largest ``beta_t ||k_t||^2`` while the numbers are in cache, so
    that the caller's checks need no pass over memory of their own. Where the numpy engine
    runs, nothing is recorded and the caller checks as before.

    Attributes
    ----------
    inputs : bool
        Check ``q``, ``k`` and ``v`` for NaN and infinity (raise
        :class:`~plastinet.errors.NonFiniteError` naming the entry); set by the caller.
    outputs_finite : bool
        Set by the call: True if the loops saw every read-out and the final state finite;
        False if not, or if they did not see all of them (the caller then checks).
    gain : float
        Set by the call (delta rules): the largest ``beta_t ||phi(k_t)||^2`` of the call
        (dimensionless; ``inf``: not recorded).
    gates_ok : bool
        Set by the call: True if the loops saw every decay gate ``alpha`` in ``[+0, 1]``
        (False: some is not, or not seen; the caller then checks them).
    """

    inputs: bool = False
    outputs_finite: bool = False
    gain: float = math.inf
    gates_ok: bool = False


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _chunk(x: np.ndarray, C: int, fill: float = 0.0) -> np.ndarray:
    """Reshape the time axis (axis 1) of ``x`` into ``(n_chunks, C)``, padding with ``fill``."""
    N, T = x.shape[:2]
    n = -(-T // C)
    if n * C != T:
        pad = np.full((N, n * C - T) + x.shape[2:], fill, dtype=x.dtype)
        x = np.concatenate([x, pad], axis=1)
    return x.reshape((N, n, C) + x.shape[2:])


def _unchunk(y: np.ndarray, T: int) -> np.ndarray:
    N, n, C = y.shape[:3]
    return y.reshape((N, n * C) + y.shape[3:])[:, :T]


def _diag_blocks(x: np.ndarray, s: int) -> np.ndarray:
    """Writable view ``(..., P // s, s, s)`` of the diagonal ``s``-blocks of contiguous ``x``."""
    P = x.shape[-1]
    st = x.strides
    return np.ndarray(x.shape[:-2] + (P // s, s, s), x.dtype, x, 0,
                      st[:-2] + (s * (st[-2] + st[-1]), st[-2], st[-1]))


def unit_lower_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of a batch of unit-lower-triangular matrices ``I + strict_tril(A)``.

    Only the strictly lower part of ``A`` is read. Float32 input is inverted in float64 and
    the result returned in float32: for the delta rule ``A = diag(beta) K K^T`` and, as
    ``|1 - beta ||k||^2|`` approaches 1 (``beta`` near 2, nearly parallel keys), the inverse's
    entries stop decaying along the diagonals and a float32 inversion loses up to ten times
    more accuracy than the rest of the form (measured: worst chunkwise-vs-float64 error
    1.3e-4 with a float32 inverse, 1.4e-5 with this one). See :func:`_inverse_of_negated`
    for the algorithm.
    """
    NL = _negated_lower(A)
    np.negative(A, out=NL[..., :A.shape[-1], :A.shape[-1]])
    inv = _inverse_of_negated(NL)[..., :A.shape[-1], :A.shape[-1]]
    return inv.astype(A.dtype) if A.dtype != np.float64 else np.ascontiguousarray(inv)


def _negated_lower(A: np.ndarray) -> np.ndarray:
    """A float64 buffer for ``-A``, padded to a power-of-two size ``>= 4`` (padding zero)."""
    C = A.shape[-1]
    P = max(4, 1 << max(0, (C - 1).bit_length()))
    shape = A.shape[:-2] + (P, P)
    return np.empty(shape, dtype=np.float64) if P == C else np.zeros(shape, dtype=np.float64)


def _inverse_of_negated(NL: np.ndarray) -> np.ndarray:
    """``(I - strict_tril(NL))^-1`` for float64 ``NL`` of a power-of-two size ``P >= 4``.

    The ``4 x 4`` diagonal blocks are inverted in closed form (elementwise over all blocks);
    then block doubling merges diagonal blocks of size ``b`` into blocks of size ``2b``
    with ``[[P, 0], [R, Q]]^{-1} = [[P^-1, 0], [-Q^-1 R P^-1, Q^-1]]``, all blocks of a
    level (and of the batch) in one pair of batched matrix products. Working on the negated
    strictly lower part ``NL = -L`` spares the products a sign.
    """
    P = NL.shape[-1]
    inv = np.zeros_like(NL)
    inv.reshape(inv.shape[:-2] + (P * P,))[..., ::P + 1] = 1.0
    # 4 x 4 blocks: [[1], [a, 1], [p + q a, q, 1], [c p + r + (c q + s) a, c q + s, c, 1]]
    X, L4 = _diag_blocks(inv, 4), _diag_blocks(NL, 4)
    a, c, p, q = L4[..., 1, 0], L4[..., 3, 2], L4[..., 2, 0], L4[..., 2, 1]
    X[..., 1, 0] = a
    X[..., 3, 2] = c
    X[..., 2, 1] = q
    np.multiply(q, a, out=X[..., 2, 0])
    X[..., 2, 0] += p
    cqs = X[..., 3, 1]
    np.multiply(c, q, out=cqs)
    cqs += L4[..., 3, 1]
    np.multiply(cqs, a, out=X[..., 3, 0])
    X[..., 3, 0] += L4[..., 3, 0]
    X[..., 3, 0] += c * p
    b = 4
    while b < P:
        blk, Lblk = _diag_blocks(inv, 2 * b), _diag_blocks(NL, 2 * b)
        np.matmul(blk[..., b:, b:] @ Lblk[..., b:, :b], blk[..., :b, :b], out=blk[..., b:, :b])
        b *= 2
    return inv


def hebbian(q, k, v, beta, W0, C, checks=None):
    """Chunkwise linear attention; see :func:`decayed_hebbian`."""
    return decayed_hebbian(q, k, v, beta, None, W0, C, checks)


def decayed_hebbian(q, k, v, beta, alpha, W0, C, checks=None):
    """Chunkwise (decayed) linear attention with scalar or per-key gates (``alpha=None``: none).

    Runs the compiled chunk loop of :mod:`.native` (one chunk at a time, heads spread over
    threads) unless ``PLASTINET_NATIVE=0`` or no C compiler is available; then
    :func:`hebbian_engine` or :func:`decayed_hebbian_engine`. Float32 calls below
    :data:`F64_WORK` flops or with one key unit, and heads whose state cancelled, are
    computed in float64 and rounded, as for :func:`gated_delta`. ``checks``: a
    :class:`LoopChecks` (None: none), see :func:`_record_checks`.
    """
    N, T, d_k = q.shape
    d_v = v.shape[-1]
    work = 2.0 * N * T * (2 * d_k * d_v + C * (d_k + d_v))
    args = (q, k, v, beta, alpha, W0, C)
    if q.dtype == np.float32 and (work < F64_WORK or d_k == 1):
        return _in_float64(decayed_hebbian, *args, checks=checks)
    kernel = hebbian_kernel(q.dtype)
    if kernel is None:
        if checks is not None and checks.inputs:
            _screen_inputs(q, k, v)
        if alpha is None:
            y, W, peak = hebbian_engine(q, k, v, beta, W0, C)
        else:
            y, W, peak = decayed_hebbian_engine(q, k, v, beta, alpha, W0, C)
        return _unless_cancelled(decayed_hebbian, args, y, W, peak)[:2]
    y = np.empty((N, -(-T // C) * C, d_v), dtype=q.dtype)
    ST = np.empty((N, d_k, d_v), dtype=q.dtype)         # the kernel's transposed working state
    W = np.empty((N, d_v, d_k), dtype=q.dtype)          # the final state, written by the kernel
    peak = np.zeros(N, dtype=q.dtype)
    found = np.zeros((N, SCREEN_COLS), dtype=q.dtype)
    chunks = [np.ascontiguousarray(_chunk(x, C)) for x in (q, k, v, beta)]
    gates = None if alpha is None else np.ascontiguousarray(_chunk(alpha, C, fill=1.0))
    with single_threaded_blas():           # the loops' own threads (their BLAS products: one each)
        kernel(*chunks, gates, ST, y.reshape(chunks[2].shape), peak=peak,
               W0=np.ascontiguousarray(W0, dtype=q.dtype), W=W, screen=found,
               threads=head_threads(N, work))
    return _record_checks(checks, found, q, k, v, *_unless_cancelled(
        decayed_hebbian, args, y[:, :T], W, peak, found[:, _SCREEN_W]), gain=False)


def _screen_inputs(q, k, v) -> None:
    """Raise :class:`~plastinet.errors.NonFiniteError` for the first of ``q``, ``k``, ``v``
    (in this order) with a NaN or infinite entry, naming it and the entry."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_finite(x, "fwp.forms.chunkwise", name)


#: columns of the compiled loops' checks (``found``, see delta_kernel_body.h): the largest
#: ``|entry|`` of q, k, v (0-2), of the read-outs, of the final state, the largest gain and
#: the largest gate by its bits
_SCREEN_INPUTS, _SCREEN_Y, _SCREEN_W, _SCREEN_GAIN, _SCREEN_GATE = slice(0, 3), 3, 4, 5, 6
#: per float dtype: the unsigned integer of its size (the columns' bit patterns), and the bit
#: patterns of its largest finite number and of 1
_BITS = {np.dtype(t): (u, int(np.array(np.finfo(t).max, t).view(u)), int(np.array(1, t).view(u)))
         for t, u in ((np.float32, np.uint32), (np.float64, np.uint64))}


def _record_checks(checks, found, q, k, v, y, W, redone: bool, gain: bool):
    """Report the compiled loops' checks ``found (N, SCREEN_COLS)`` in ``checks``; return ``(y, W)``.

    The loops record each head's largest ``|entry|`` of ``q``, ``k`` and ``v`` (NaN or
    infinite where an entry is), which spares the caller a pass over memory per array; only
    where one is not finite are the arrays searched, to raise as :func:`_screen_inputs` (the
    caller's ``apply`` then names the entry in its own arrays). Likewise the read-outs and
    final state: ``checks.outputs_finite`` unless heads were ``redone`` in float64 (which the
    loops did not see); ``gain``: record the largest ``beta ||k||^2`` (the delta rules). The
    gates lie in ``[+0, 1]`` if the largest of their bit patterns (sign included, see
    ``FN(track_bits)``) is at most that of 1 (a ``-0`` fails this and is left to the caller).
    """
    if checks is None:
        return y, W
    bits, finite, one = _BITS[found.dtype]
    top = found.view(bits).max(axis=0).tolist()        # the columns' largest bit patterns
    if checks.inputs and max(top[_SCREEN_INPUTS]) > finite:
        _screen_inputs(q, k, v)
    checks.outputs_finite = not redone and max(top[_SCREEN_Y], top[_SCREEN_W]) <= finite
    if gain:
        checks.gain = float(found[:, _SCREEN_GAIN].max())
    checks.gates_ok = top[_SCREEN_GATE] <= one
    return y, W


#: Float32 heads whose final state ends below this fraction of the largest state they had at
#: a chunk boundary (largest ``|entry|``) are recomputed in float64, see :func:`_unless_cancelled`.
CANCELLATION = 0.05


def _unless_cancelled(fn, args, y, W, peak, final=None):
    """``(y, W, redone)``, with the float32 heads whose state cancelled recomputed by ``fn`` in
    float64 (``redone``: whether any was).

    A float32 chunkwise form carries rounding of the size of the states it passes through
    (chunk sums; for the delta rules also the pseudo-values); where the final state ends much
    smaller than those (values written and later cancelled or overwritten), that rounding is
    large relative to it (measured: 2e-4 of ``max |W|`` for a delta rule whose state fell to
    1e-3 of the values written, 1e-2 for the Hebbian rules, whose writes can cancel exactly).
    Such heads (``max |W| < CANCELLATION * peak``) are recomputed in float64 and rounded.
    ``final``: each head's ``max |W|`` where the caller has it (None: taken from ``W``).
    """
    if y.dtype != np.float32:
        return y, W, False
    if final is None:
        final = np.abs(W).max(axis=(1, 2))
    small = np.flatnonzero(final < CANCELLATION * peak)
    if small.size:
        *arrays, C = args
        y = np.array(y)
        y[small], W[small] = _in_float64(fn, *(None if x is None else x[small] for x in arrays), C)
    return y, W, bool(small.size)


def _in_float64(fn, *args, checks=None):
    """``fn`` on the float64 copies of ``args`` (arrays or None; the last is ``C``), rounded to
    float32. ``checks``: its input check is made and the gain and gates recorded (the rounded
    outputs are not seen)."""
    *arrays, C = args
    inner = None if checks is None else LoopChecks(inputs=checks.inputs)
    y, W = fn(*(None if x is None else x.astype(np.float64) for x in arrays), C, inner)
    if checks is not None:
        checks.gain, checks.gates_ok = inner.gain, inner.gates_ok
    return y.astype(np.float32), W.astype(np.float32)


def hebbian_engine(q, k, v, beta, W0, C):
    """Chunkwise linear attention in numpy; the chunk states are an exclusive cumulative sum.

    Returns ``(y, W, peak)``, ``peak`` as in :func:`_unless_cancelled`.
    """
    T = q.shape[1]
    Q, K, V, b = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C)
    bV = b[..., None] * V
    intra = np.tril(Q @ _t(K)) @ bV
    dS = _t(bV) @ K                                                   # (N, n, d_v, d_k)
    S = np.empty_like(dS)
    S[:, 0] = W0
    np.cumsum(dS[:, :-1], axis=1, out=S[:, 1:])
    S[:, 1:] += W0[:, None]
    y = intra + Q @ _t(S)
    W = S[:, -1] + dS[:, -1]
    return _unchunk(y, T), W, _peak(S, W)


def _peak(S, W):
    """Largest ``|entry|`` of the chunk-entry states ``S (N, n, ...)`` and final states ``W``."""
    return np.maximum(np.abs(S).max(axis=(1, 2, 3)), np.abs(W).max(axis=(1, 2)))


def decayed_hebbian_engine(q, k, v, beta, alpha, W0, C):
    """Chunkwise decayed linear attention with scalar or per-key gates, in numpy; returns
    ``(y, W, peak)`` as :func:`hebbian_engine`."""
    T = q.shape[1]
    Q, K, V, b = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C)
    L, Z = cumulative_log_decay(_chunk(alpha, C, fill=1.0), axis=2)   # within each chunk
    dt = q.dtype
    bV = b[..., None] * V
    intra = decayed_scores(Q, K, L, Z, block=16) @ bV
    from_start = np.where(Z == 0, np.exp(L), 0.0).astype(dt)          # (N, n, C, 1|d)
    to_end = decay_ratio(L[:, :, -1:], Z[:, :, -1:], L, Z).astype(dt)  # (N, n, C, 1|d)
    dS = _t(bV) @ (K * to_end)
    total = from_start[:, :, -1][:, :, None, :]                       # (N, n, 1, 1|d)
    S = np.empty((q.shape[0], Q.shape[1]) + W0.shape[1:], dtype=dt)
    state = W0.copy()
    for c in range(Q.shape[1]):
        S[:, c] = state
        state = state * total[:, c] + dS[:, c]
    y = intra + (Q * from_start) @ _t(S)
    return _unchunk(y, T), state, _peak(S, state)


#: Steps per segment of the (gated) delta engine: the state-independent matrices of a
#: segment are formed just before the loop over its chunks, so that they are still in cache.
SEGMENT = 256
#: Steps per block of the UT transform (the ``C x C`` inverses, formed ahead of the segments
#: of the block): bounds its memory (``UT_STEPS * C`` float64 numbers per head and temporary)
#: while keeping its number of numpy calls small.
UT_STEPS = 1024


def gated_delta_engine(q, k, v, beta, alpha, W0, y, peak, C, states=None, pseudo=None):
    """The (gated) delta rule on one group of heads; see :func:`gated_delta`. Returns ``(W,)``.

    ``y`` ``(N, n * C, d_v)`` receives the read-outs (of the padded sequence); with
    ``y=None`` they are not formed. ``states`` ``(N, n, d_k, d_v)`` and ``pseudo``
    ``(N, n, C, d_v)``, if given, are filled with the transposed chunk-entry states and the
    pseudo-values (the backward pass needs them); ``peak`` ``(N,)``, if given, is raised to the
    largest ``|entry|`` of a state at a chunk boundary (see :func:`_unless_cancelled`).
    """
    N, T, d_k = q.shape
    d_v = v.shape[-1]
    dt = q.dtype
    readout = y is not None
    Q, K, V, bb = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C)
    n = Q.shape[1]
    G = max(1, min(n, SEGMENT // C))
    causal = _causal(C, dt)
    if alpha is not None:
        L, Z = cumulative_log_decay(_chunk(alpha, C, fill=1.0)[..., 0], axis=2)   # (N, n, C)
    # Per segment: B = [Q g; K g], the masked scores attn and KE = K_end^T. Each chunk needs
    # one product with the state, [Q g S^T; K g S^T], then the pseudo-values
    # U = T diag(beta) (V - K g S^T) and the state increment K_end^T U. The intra-chunk
    # read-outs attn U of a whole segment follow in one batched product. The UT transforms
    # T diag(beta) are formed per block of GB chunks (a multiple of the segment), see
    # _ut_transform.
    rows = 2 * C if readout else C
    GB = max(1, UT_STEPS // (G * C)) * G                 # chunks per block of the UT transform
    B = np.empty((N, G, rows, d_k), dtype=dt)
    KE = np.empty((N, G, d_k, C), dtype=dt)
    attn = np.empty((N, G, C, C), dtype=dt) if readout else None
    if readout:
        y = y.reshape(N, n, C, d_v)
    ST = np.array(_t(W0), dtype=dt, order="C")                               # state^T (d_k, d_v)
    P = np.empty((N, G, rows, d_v), dtype=dt)
    R = np.empty((N, d_k, d_v), dtype=dt)
    X = np.empty((N, C, d_v), dtype=dt)
    Useg = np.empty((N, G, C, d_v), dtype=dt) if pseudo is None else None
    for s in range(0, n, G):
        if s % GB == 0:
            s0 = s
            TB, D_blk = _ut_transform(K[:, s:s + GB], bb[:, s:s + GB],
                                      None if alpha is None else (L[:, s:s + GB], Z[:, s:s + GB]))
        e = min(s + G, n)
        m = e - s
        bq, ke, tb, ps = B[:, :m], KE[:, :m], TB[:, s - s0:e - s0], P[:, :m]
        us = pseudo[:, s:e] if pseudo is not None else Useg[:, :m]
        Kc, Vc = K[:, s:e], V[:, s:e]
        bk = bq[:, :, -C:]
        np.copyto(bk, Kc)
        if alpha is not None:
            Ls, Zs = L[:, s:e], Z[:, s:e]
            g = np.where(Zs == 0, np.exp(Ls), 0.0).astype(dt)[..., None]      # (N, m, C, 1)
            to_end = decay_ratio(Ls[..., -1:], Zs[..., -1:], Ls, Zs).astype(dt)
            np.multiply(_t(Kc), to_end[..., None, :], out=ke)
            total = g[..., -1, 0]                                             # (N, m)
        else:
            np.copyto(ke, _t(Kc))
        if readout:
            at = attn[:, :m]
            np.copyto(bq[:, :, :C], Q[:, s:e])
            np.matmul(bq[:, :, :C], _t(bk), out=at)                           # Q K^T
            at *= causal if alpha is None else D_blk[:, s - s0:e - s0].astype(dt) * causal
        if alpha is not None:                                                 # [Q g; K g]
            bk *= g
            if readout:
                bq[:, :, :C] *= g
        for j in range(m):
            if states is not None:
                states[:, s + j] = ST
            if peak is not None:
                np.maximum(peak, np.abs(ST).max(axis=(1, 2)), out=peak)
            np.matmul(bq[:, j], ST, out=ps[:, j])              # [Q g S^T; K g S^T]
            np.subtract(Vc[:, j], ps[:, j, -C:], out=X)
            np.matmul(tb[:, j], X, out=us[:, j])               # pseudo-values of the chunk
            np.matmul(ke[:, j], us[:, j], out=R)               # K_end^T U
            if alpha is not None:
                ST *= total[:, j, None, None]
            ST += R
        if readout:                                            # Q g S^T + attn U, per segment
            ys = y[:, s:e]
            np.matmul(at, us, out=ys)
            ys += ps[:, :, :C]
    if peak is not None:
        np.maximum(peak, np.abs(ST).max(axis=(1, 2)), out=peak)
    return (np.ascontiguousarray(_t(ST)),)


def _ut_transform(K, beta, decay=None):
    """``T diag(beta)`` of every chunk of ``K`` ``(N, m, C, d_k)``, and the decay ratios ``D``.

    ``T = (I + strict_tril(diag(beta) (K K^T * D)))^-1`` with ``D_{t tau} = g_t / g_tau``
    from ``decay = (L, Z)`` (:mod:`.decay`; ``D`` is None without a gate). Formed for a
    block of chunks at once: the inverse consists of many small operations, which would
    otherwise recur for every segment.
    """
    KK = K @ _t(K)                                                           # (N, m, C, C)
    D = None
    if decay is not None:
        L, Z = decay
        D = decay_ratio(L[..., :, None], Z[..., :, None], L[..., None, :], Z[..., None, :])
        KK *= D.astype(KK.dtype)
    C = KK.shape[-1]
    # -diag(beta) K K^T in float64 (one pass), inverted, times diag(beta) into the input dtype
    NL = _negated_lower(KK)
    np.multiply(KK, -beta[..., None].astype(np.float64), out=NL[..., :C, :C])
    TB = np.multiply(_inverse_of_negated(NL)[..., :C, :C], beta[..., None, :], dtype=KK.dtype)
    return TB, D


def _causal(C: int, dtype) -> np.ndarray:
    return np.tril(np.ones((C, C), dtype=dtype))


#: Float32 calls of the (gated) delta rule with fewer flops than this (about 0.2 ms of
#: float32 GEMM) are computed in float64 and rounded, as are those with ``d_k = 1``.
F64_WORK = 2e7


def gated_delta(q, k, v, beta, alpha, W0, C, checks=None):
    """Chunkwise (gated) delta rule in the WY/UT representation; ``alpha=None``: no gate.

    Heads are spread over threads (each with single-threaded BLAS), see :mod:`plastinet._blas`.
    The compiled chunk loop of :mod:`.native` runs instead of :func:`gated_delta_engine` (same
    arithmetic, one chunk at a time, no GIL) unless ``PLASTINET_NATIVE=0`` or no C compiler
    is available.

    Float32 inputs are computed in float32 (the fast path), except for calls below
    :data:`F64_WORK` flops or with one key unit, which are computed in float64 and rounded
    (well under a millisecond), and for heads whose state cancelled (see
    :func:`_unless_cancelled`). Where the delta update barely contracts
    (``|1 - beta ||k||^2|`` near 1: ``beta`` near 2, or learning rates of exactly 0 and 2 on
    a rank-1 key space) the state can cancel to much less than the values written into it; the
    recurrent form then stays accurate relative to the small state, while the chunk sums
    of a float32 chunkwise form carry rounding of the size of the values (measured: 8e-4
    relative to ``max |W|`` with ``d_k = d_v = 1``, T = 170). ``checks``: as for
    :func:`decayed_hebbian` (the compiled loops also record the largest gain).
    """
    N, T, d_k = q.shape
    work = 2.0 * N * T * (3 * d_k * v.shape[-1] + 4 * C * (d_k + v.shape[-1]))
    args = (q, k, v, beta, alpha, W0, C)
    if q.dtype == np.float32 and (work < F64_WORK or d_k == 1):
        return _in_float64(gated_delta, *args, checks=checks)
    y = np.empty((N, -(-T // C) * C, v.shape[-1]), dtype=q.dtype)      # written by the groups
    peak = np.zeros(N, dtype=q.dtype)
    kernel = delta_kernel(q.dtype)
    if kernel is not None:                  # the compiled chunk loop runs without the GIL
        ST = np.empty((N, d_k, v.shape[-1]), dtype=q.dtype)   # the kernel's transposed state
        W = np.empty((N, v.shape[-1], d_k), dtype=q.dtype)
        found = np.zeros((N, SCREEN_COLS), dtype=q.dtype)
        chunks = [np.ascontiguousarray(_chunk(x, C)) for x in (q, k, v, beta)]
        gates = None if alpha is None else np.ascontiguousarray(_chunk(alpha[..., 0], C, fill=1.0))
        with single_threaded_blas():       # the loops' own threads (their BLAS products: one each)
            kernel(*chunks, ST, y.reshape(chunks[2].shape), alpha=gates, peak=peak,
                   W0=np.ascontiguousarray(W0, dtype=q.dtype), W=W, screen=found,
                   threads=head_threads(N, work))
        return _record_checks(checks, found, q, k, v, *_unless_cancelled(
            gated_delta, args, y[:, :T], W, peak, found[:, _SCREEN_W]), gain=True)
    if checks is not None and checks.inputs:
        _screen_inputs(q, k, v)
    W, = map_heads(gated_delta_engine, (q, k, v, beta, alpha, W0, y, peak), C, work=work,
                   grain=chunk_grain(C, d_k, v.shape[-1], q.dtype))
    return _unless_cancelled(gated_delta, args, y[:, :T], W, peak)[:2]


def delta(q, k, v, beta, W0, C, checks=None):
    """Chunkwise delta rule (the gated rule without a gate)."""
    return gated_delta(q, k, v, beta, None, W0, C, checks)
