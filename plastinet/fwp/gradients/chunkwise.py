"""Chunkwise backward pass: matrix form inside chunks, a reverse scan across chunks.

A forward sweep recomputes the chunk-entry states ``S_c`` and keeps only them
(``ceil(T / C)`` states, never ``T``). A reverse sweep carries the state cotangent ``dS``
from the end to the start, one short matrix update per chunk; everything else is batched
matrix products over chunks. The state-independent matrices (scores, WY/UT factors) are
recomputed: for the (gated) delta rule one segment of :data:`SEGMENT` steps at a time, so
that their memory does not grow with ``T``; for the Hebbian rules for all chunks at once
(as the forward does). See ``docs/gradients.md`` for the derivations.

Decay gates enter through their within-chunk cumulative logarithm ``L_t``: the gradient is
first formed with respect to ``L_t`` (``dL``), then ``d log alpha_s = sum_{t >= s} dL_t``
within the chunk and ``d alpha = d log alpha / alpha``. This needs ``alpha > 0``; the caller
(:func:`plastinet.fwp.vjp`) routes gates below :data:`MIN_GATE` to the recurrent backward.

Shapes as in :mod:`plastinet.fwp.forms` (batch and head merged into ``N``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from plastinet.fwp.forms.chunkwise import unit_lower_inverse
from plastinet.fwp.forms.decay import cumulative_log_decay, decay_ratio, decayed_scores

__all__ = ["hebbian", "decayed_hebbian", "gated_delta", "MIN_GATE", "SEGMENT"]

#: Smallest decay gate the chunkwise backward accepts (smaller gates lose relative accuracy
#: in ``d log alpha / alpha``); below it :func:`plastinet.fwp.vjp` uses the recurrent pass.
MIN_GATE = 1e-3


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _mt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b^T`` (batched); a contiguous ``b^T`` keeps numpy's matmul on its BLAS path."""
    return a @ np.ascontiguousarray(_t(b))


def _chunk(x: np.ndarray, C: int, fill: float = 0.0) -> np.ndarray:
    """Time axis (axis 1) of ``x`` reshaped to ``(n_chunks, C)``, padded with ``fill``."""
    N, T = x.shape[:2]
    n = -(-T // C)
    if n * C != T:
        pad = np.full((N, n * C - T) + x.shape[2:], fill, dtype=x.dtype)
        x = np.concatenate([x, pad], axis=1)
    return x.reshape((N, n, C) + x.shape[2:])


def _unchunk(x: np.ndarray, T: int) -> np.ndarray:
    """Inverse of :func:`_chunk`: merge ``(n_chunks, C)`` back into ``T`` steps."""
    N, n, C = x.shape[:3]
    return x.reshape((N, n * C) + x.shape[3:])[:, :T]


def _reverse_cumsum(x: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)


def hebbian(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray, W0: np.ndarray,
            dy: np.ndarray, dW: np.ndarray, C: int) -> dict[str, np.ndarray]:
    """Backward of chunkwise linear attention.

    Parameters
    ----------
    q, k : ndarray, shape (N, T, d_k)
        Queries and keys after phi.
    v : ndarray, shape (N, T, d_v)
    beta : ndarray, shape (N, T)
    W0 : ndarray, shape (N, d_v, d_k)
        Initial state.
    dy : ndarray, shape (N, T, d_v)
        Cotangent of the read-outs.
    dW : ndarray, shape (N, d_v, d_k)
        Cotangent of the final state.
    C : int
        Chunk length.

    Returns
    -------
    dict
        ``q, k, v, beta`` gradients (merged layout) and ``W0``.
    """
    T = q.shape[1]
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    bV = b[..., None] * V
    A = np.tril(_mt(Q, K))
    dS = _t(bV) @ K                                                   # state increments
    S = np.cumsum(dS, axis=1)
    S -= dS
    S += W0[:, None]                                                  # chunk-entry states
    R = _t(dY) @ Q                                                    # (N, n, d_v, d_k)
    dSexit = _reverse_cumsum(R, axis=1)
    dSexit -= R
    dSexit += dW[:, None]                                             # cotangent of exit states
    dA = np.tril(_mt(dY, bV))
    dbV = _t(A) @ dY + _mt(K, dSexit)
    dQ = dA @ K + dY @ S
    dK = _t(dA) @ Q + bV @ dSexit
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "W0": dW + R.sum(axis=1)}


#: Row-block size of the per-key decayed scores (memory ``block**2 d`` per chunk).
_BLOCK = 16


def _decayed_scores_vjp(dA: np.ndarray, Q: np.ndarray, K: np.ndarray, L: np.ndarray,
                        Z: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Pull ``dA`` back through :func:`~plastinet.fwp.forms.decay.decayed_scores` (per key).

    ``A[t, tau] = sum_j Q_tj K_tauj R_{t tau j}`` with ``R`` the per-feature decay over
    ``(tau, t]``; returns ``dQ_tj = sum_tau dA_{t tau} K_tauj R_{t tau j}`` and
    ``dK_tauj = sum_t dA_{t tau} Q_tj R_{t tau j}``, with the block structure of the forward:
    dense ratios on diagonal blocks, and earlier columns factored through the step before
    the block (both factors <= 1). ``dA`` must be lower triangular.
    """
    C = Q.shape[-2]
    dt = Q.dtype
    causal = np.tril(np.ones((block, block), dtype=bool))[..., None]
    dQ = np.zeros_like(Q)
    dK = np.zeros_like(K)
    for s in range(0, C, block):
        e = min(s + block, C)
        r = decay_ratio(L[..., s:e, None, :], Z[..., s:e, None, :], L[..., None, s:e, :], Z[..., None, s:e, :])
        r = np.where(causal[: e - s, : e - s], r, 0.0).astype(dt) * dA[..., s:e, s:e, None]
        dQ[..., s:e, :] += (r * K[..., None, s:e, :]).sum(-2)
        dK[..., s:e, :] += (r * Q[..., s:e, None, :]).sum(-3)
        if s == 0:
            continue
        Lr, Zr = L[..., s - 1: s, :], Z[..., s - 1: s, :]
        rq = decay_ratio(L[..., s:e, :], Z[..., s:e, :], Lr, Zr).astype(dt)   # (..., b, d)
        rk = decay_ratio(Lr, Zr, L[..., :s, :], Z[..., :s, :]).astype(dt)     # (..., s, d)
        dA_off = dA[..., s:e, :s]
        dQ[..., s:e, :] += rq * (dA_off @ (K[..., :s, :] * rk))
        dK[..., :s, :] += rk * (_t(dA_off) @ (Q[..., s:e, :] * rq))
    return dQ, dK


def decayed_hebbian(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                    alpha: np.ndarray, W0: np.ndarray, dy: np.ndarray, dW: np.ndarray,
                    C: int) -> dict[str, np.ndarray]:
    """Backward of chunkwise decayed linear attention (scalar or per-key gates > 0).

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` or ``(N, T, d_k)``.
    Scalar gates: ``C x C`` decay matrices. Per-key gates: the blocked decayed scores of
    the forward (:func:`~plastinet.fwp.forms.decay.decayed_scores`) and their pull-back.
    Both batched over all chunks, as the forward.
    """
    N, T, _ = q.shape
    dt = q.dtype
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    Al = _chunk(alpha, C, fill=1.0)
    L, Z = cumulative_log_decay(Al, axis=2)                           # (N, n, C, e)
    g = np.exp(L).astype(dt)                                          # from the chunk start
    Dend = np.exp(L[:, :, -1:] - L).astype(dt)                        # decay to the chunk end
    Kend = K * Dend
    total = g[:, :, -1][:, :, None, :]                                # (N, n, 1, e)
    n = Q.shape[1]
    bV = b[..., None] * V
    # forward scan (chunk-entry states) and reverse scan (cotangents of chunk-exit states)
    S = np.empty((N, n) + W0.shape[1:], dtype=dt)
    state = W0
    for c in range(n):
        S[:, c] = state
        state = state * total[:, c] + _t(bV[:, c]) @ Kend[:, c]
    Qg = Q * g
    RQ = _t(dY) @ Qg                                                  # (N, n, d_v, d_k)
    dSexit = np.empty_like(S)
    dS = dW
    for c in reversed(range(n)):
        dSexit[:, c] = dS
        dS = dS * total[:, c] + RQ[:, c]
    del RQ
    YS = dY @ S                                                       # (N, n, C, d_k)
    KdS = bV @ dSexit                                                 # d Kend, (N, n, C, d_k)
    dbV = _mt(Kend, dSexit)
    dA = np.tril(_mt(dY, bV))
    dQ = g * YS
    X = Kend * KdS                                                    # d/dlog of the end decay
    dLj = Qg * YS - X                                                 # per key feature
    if L.shape[-1] == 1:
        causal = np.tril(np.ones((C, C), dtype=bool))
        D = np.where(causal, decay_ratio(L[..., :, None, 0], Z[..., :, None, 0],
                                         L[..., None, :, 0], Z[..., None, :, 0]), 0.0).astype(dt)
        QK = _mt(Q, K)
        dbV += _t(QK * D) @ dY
        dAD = dA * D
        dQ += dAD @ K
        dK = _t(dAD) @ Q
        M = dAD * QK                                                  # d/dlog D, (N, n, C, C)
        dL = (M.sum(-1) - M.sum(-2) + dLj.sum(-1))[..., None]
        del D, QK, dAD, M
    else:
        dbV += _t(decayed_scores(Q, K, L, Z, block=_BLOCK)) @ dY
        dQA, dK = _decayed_scores_vjp(dA, Q, K, L, Z, _BLOCK)
        dQ += dQA
        dL = dLj + Q * dQA - K * dK                                   # d/dlog D, row - column sums
    dK += Dend * KdS
    end = X.sum(axis=2) + total[:, :, 0] * (dSexit * S).sum(axis=2)   # (N, n, d_k)
    dL[:, :, -1] += end if L.shape[-1] > 1 else end.sum(-1, keepdims=True)
    dalpha = _reverse_cumsum(dL, axis=2) / Al
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "alpha": _unchunk(dalpha, T), "W0": dS}


#: Steps per segment of the (gated) delta backward: the state-independent matrices are
#: recomputed one segment of chunks at a time, so their memory does not grow with T.
SEGMENT = 128


class _Factors(NamedTuple):
    """State-independent matrices of a group of ``m`` chunks, shapes ``(N, m, C, ...)``."""

    KKt: np.ndarray             # K K^T
    QKt: np.ndarray             # Q K^T
    D: np.ndarray | None        # decay ratios prod_{(tau, t]} alpha (None: no gate)
    g: np.ndarray | None        # decay from the chunk start, (N, m, C, 1)
    Dend: np.ndarray | None     # decay to the chunk end, (N, m, C, 1)
    Tinv: np.ndarray            # (I + strict_tril(diag(beta) K K^T * D))^-1
    Wy: np.ndarray              # Tinv diag(beta g) K
    Uy: np.ndarray              # Tinv diag(beta) V
    Qg: np.ndarray              # diag(g) Q
    Kend: np.ndarray            # diag(Dend) K


def _factors(Q: np.ndarray, K: np.ndarray, V: np.ndarray, b: np.ndarray, L: np.ndarray | None,
             Z: np.ndarray | None) -> _Factors:
    """The WY/UT factors of the chunkwise (gated) delta rule for a group of chunks."""
    dt = Q.dtype
    bb = b[..., None]
    KKt = _mt(K, K)
    QKt = _mt(Q, K)
    if L is None:
        D = g = Dend = None
        A, bK, Qg, Kend = bb * KKt, bb * K, Q, K
    else:
        D = decay_ratio(L[..., :, None, 0], Z[..., :, None, 0],
                        L[..., None, :, 0], Z[..., None, :, 0]).astype(dt)
        g = np.exp(L).astype(dt)
        Dend = np.exp(L[:, :, -1:] - L).astype(dt)
        A, bK, Qg, Kend = (bb * KKt) * D, (bb * g) * K, Q * g, K * Dend
    Tinv = unit_lower_inverse(A)
    return _Factors(KKt, QKt, D, g, Dend, Tinv, Tinv @ bK, Tinv @ (bb * V), Qg, Kend)


def gated_delta(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                alpha: np.ndarray | None, W0: np.ndarray, dy: np.ndarray, dW: np.ndarray,
                C: int) -> dict[str, np.ndarray]:
    """Backward of the chunkwise (gated) delta rule in the WY/UT representation.

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` (gates > 0) or
    ``None`` for the plain delta rule. Chunks are handled in segments of about
    :data:`SEGMENT` steps: a forward sweep keeps the chunk-entry states, a reverse sweep
    recomputes each segment's factors and pulls the cotangents through it.
    """
    N, T, _ = q.shape
    dt = q.dtype
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    n = Q.shape[1]
    G = max(1, SEGMENT // C)
    if alpha is None:
        Al = L = Z = None
    else:
        Al = _chunk(alpha, C, fill=1.0)
        L, Z = cumulative_log_decay(Al, axis=2)                       # (N, n, C, 1)

    def factors(s: int, e: int) -> _Factors:
        return _factors(Q[:, s:e], K[:, s:e], V[:, s:e], b[:, s:e],
                        None if L is None else L[:, s:e], None if Z is None else Z[:, s:e])

    # forward sweep: chunk-entry states
    S = np.empty((N, n) + W0.shape[1:], dtype=dt)
    state = W0
    for s in range(0, n, G):
        f = factors(s, min(s + G, n))
        for i in range(f.Wy.shape[1]):
            S[:, s + i] = state
            U = f.Uy[:, i] - _mt(f.Wy[:, i], state)
            carry = state if f.g is None else state * f.g[:, i, -1, :, None]
            state = carry + _t(U) @ f.Kend[:, i]
    # reverse sweep
    dQ, dK, dV = np.empty_like(Q), np.empty_like(K), np.empty_like(V)
    dbeta = np.empty_like(b)
    dL = None if L is None else np.empty(b.shape, dtype=dt)
    tril = np.tril(np.ones((C, C), dtype=dt))
    strict = np.tril(np.ones((C, C), dtype=dt), -1)
    dS = dW
    for s in reversed(range(0, n, G)):
        e = min(s + G, n)
        f = factors(s, e)
        dYs, Ss, Ks, bs = dY[:, s:e], S[:, s:e], K[:, s:e], b[:, s:e, :, None]
        attn = f.QKt * tril if f.D is None else f.QKt * f.D * tril
        P = _t(attn) @ dYs                                            # (N, m, C, d_v)
        RQ = _t(dYs) @ f.Qg                                           # (N, m, d_v, d_k)
        dU = np.empty_like(f.Uy)
        dSexit = np.empty_like(Ss)
        for i in reversed(range(e - s)):
            dSexit[:, i] = dS
            dU[:, i] = P[:, i] + _mt(f.Kend[:, i], dS)
            carry = dS if f.g is None else dS * f.g[:, i, -1, :, None]
            dS = carry + RQ[:, i] - _t(dU[:, i]) @ f.Wy[:, i]
        del P, RQ
        # through the read-out Y = attn U + Qg S^T and the write S' = total S + U^T Kend
        U = f.Uy - _mt(f.Wy, Ss)                                      # pseudo-values
        dattn = _mt(dYs, U) * tril
        dKend = U @ dSexit                                            # (N, m, C, d_k)
        dQg = dYs @ Ss                                                # (N, m, C, d_k)
        if f.D is not None:
            dattn *= f.D
            E = dattn * f.QKt                                         # d/dlog D (read-out part)
            dLs = E.sum(-1) - E.sum(-2) + (f.Qg * dQg).sum(-1)
            dQg *= f.g
            X = (f.Kend * dKend).sum(-1)                              # d/dlog of the end decay
            dLs -= X
            dLs[..., -1] += X.sum(-1) + f.g[:, :, -1, 0] * (dSexit * Ss).sum(axis=(-1, -2))
            dKend *= f.Dend
        dQ[:, s:e] = dattn @ Ks + dQg
        dKs = _t(dattn) @ Q[:, s:e] + dKend
        # through the solves Tinv^-1 Uy = diag(beta) V and Tinv^-1 Wy = diag(beta g) K
        drhs_v = _t(f.Tinv) @ dU                                      # d(beta V)
        drhs_k = -(_t(f.Tinv) @ (dU @ Ss))                            # d(beta g K)
        dM = (_mt(drhs_v, f.Uy) + _mt(drhs_k, f.Wy)) * -strict        # d(strict lower part)
        dbs = (drhs_v * V[:, s:e]).sum(-1)
        dV[:, s:e] = bs * drhs_v
        hk = (drhs_k * Ks).sum(-1)                                    # d/d(beta g) through K
        if f.D is None:
            dbs += (dM * f.KKt).sum(-1) + hk
            dKK = bs * dM
            dKs += bs * drhs_k
        else:
            dKK = (bs * dM) * f.D
            dbs += (dM * f.KKt * f.D).sum(-1) + f.g[..., 0] * hk
            dKs += (bs * f.g) * drhs_k
            E = dKK * f.KKt                                           # d/dlog D (solve part)
            dLs += E.sum(-1) - E.sum(-2) + b[:, s:e] * f.g[..., 0] * hk
            dL[:, s:e] = dLs
        dK[:, s:e] = dKs + (dKK + _t(dKK)) @ Ks
        dbeta[:, s:e] = dbs
    out = {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(dV, T),
           "beta": _unchunk(dbeta, T), "W0": dS}
    if dL is not None:
        out["alpha"] = _unchunk((_reverse_cumsum(dL, axis=2) / Al[..., 0])[..., None], T)
    return out
