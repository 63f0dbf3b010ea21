"""Chunkwise backward pass: matrix form inside chunks, a reverse scan across chunks.

The forward intermediates that do not depend on the carried state (scores, the WY/UT
factors) are recomputed for all chunks at once; the chunk-entry states ``S_c`` are
recomputed by the forward scan and kept (``ceil(T / C)`` states, never ``T``). A short
reverse loop over chunks carries the state cotangent ``dS`` from the end to the start;
everything else is batched matrix products. See ``docs/gradients.md`` for the derivations.

Decay gates enter through their within-chunk cumulative logarithm ``L_t``: the gradient is
first formed with respect to ``L_t`` (``dL``), then ``d log alpha_s = sum_{t >= s} dL_t``
within the chunk and ``d alpha = d log alpha / alpha``. This needs ``alpha > 0``; the caller
(:func:`plastinet.fwp.vjp`) routes gates below :data:`MIN_GATE` to the recurrent backward.

Shapes as in :mod:`plastinet.fwp.forms` (batch and head merged into ``N``).
"""

from __future__ import annotations

import numpy as np

from plastinet.fwp.forms.chunkwise import unit_lower_inverse
from plastinet.fwp.forms.decay import cumulative_log_decay, decay_ratio

__all__ = ["hebbian", "decayed_hebbian", "gated_delta", "MIN_GATE"]

#: Smallest decay gate the chunkwise backward accepts (smaller gates lose relative accuracy
#: in ``d log alpha / alpha``); below it :func:`plastinet.fwp.vjp` uses the recurrent pass.
MIN_GATE = 1e-3


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _chunk(x: np.ndarray, C: int, fill: float = 0.0) -> np.ndarray:
    """Time axis (axis 1) of ``x`` reshaped to ``(n_chunks, C)``, padded with ``fill``."""
    N, T = x.shape[:2]
    n = -(-T // C)
    if n * C != T:
        pad = np.full((N, n * C - T) + x.shape[2:], fill, dtype=x.dtype)
        x = np.concatenate([x, pad], axis=1)
    return x.reshape((N, n, C) + x.shape[2:])


def _unchunk(x: np.ndarray, T: int) -> np.ndarray:
    N, n, C = x.shape[:3]
    return x.reshape((N, n * C) + x.shape[3:])[:, :T]


def _reverse_cumsum(x: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)


def hebbian(q, k, v, beta, W0, dy, dW, C):
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
    A = np.tril(Q @ _t(K))
    dS = _t(bV) @ K                                                   # state increments
    S = np.cumsum(dS, axis=1)
    S -= dS
    S += W0[:, None]                                                  # chunk-entry states
    R = _t(dY) @ Q                                                    # (N, n, d_v, d_k)
    dSexit = _reverse_cumsum(R, axis=1)
    dSexit -= R
    dSexit += dW[:, None]                                             # cotangent of exit states
    dA = np.tril(dY @ _t(bV))
    dbV = _t(A) @ dY + K @ _t(dSexit)
    dQ = dA @ K + dY @ S
    dK = _t(dA) @ Q + bV @ dSexit
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "W0": dW + R.sum(axis=1)}


def decayed_hebbian(q, k, v, beta, alpha, W0, dy, dW, C):
    """Backward of chunkwise decayed linear attention (scalar or per-key gates > 0).

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` or ``(N, T, d_k)``.
    Chunks are processed one at a time with the dense ratio tensor
    ``R[t, tau, j] = prod_{s in (tau, t]} alpha_sj`` (memory ``N C^2 (1 | d_k)``).
    """
    N, T, _ = q.shape
    dt = q.dtype
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    Al = _chunk(alpha, C, fill=1.0)
    L, Z = cumulative_log_decay(Al, axis=2)                           # (N, n, C, e)
    g = np.exp(L).astype(dt)                                          # from the chunk start
    Dend = np.exp(L[:, :, -1:] - L).astype(dt)                        # to the chunk end
    n = Q.shape[1]
    bV = b[..., None] * V
    causal = np.tril(np.ones((C, C), dtype=bool))
    S = np.empty((N, n) + W0.shape[1:], dtype=dt)
    state = W0
    for c in range(n):
        S[:, c] = state
        state = state * g[:, c, -1][:, None, :] + _t(bV[:, c]) @ (K[:, c] * Dend[:, c])
    dQ, dK, dbV = np.empty_like(Q), np.empty_like(K), np.empty_like(V)
    dL = np.empty(L.shape, dtype=dt)
    per_key = L.shape[-1] > 1

    def red(a: np.ndarray) -> np.ndarray:
        return a if per_key else a.sum(-1, keepdims=True)

    dS = dW
    for c in reversed(range(n)):
        Qc, Kc, dYc, Sc, gc, De = Q[:, c], K[:, c], dY[:, c], S[:, c], g[:, c], Dend[:, c]
        Rt = np.where(causal[..., None], decay_ratio(L[:, c, :, None], Z[:, c, :, None],
                                                     L[:, c, None, :], Z[:, c, None, :]), 0.0)
        Rt = Rt.astype(dt)                                            # (N, C, C, e)
        A = (Qc[:, :, None, :] * Rt * Kc[:, None, :, :]).sum(-1)
        dA = np.tril(dYc @ _t(bV[:, c]))
        dAR = dA[..., None] * Rt                                      # (N, C, C, e)
        YS = dYc @ Sc                                                 # (N, C, d_k)
        KdS = bV[:, c] @ dS                                           # (N, C, d_k)
        dbV[:, c] = _t(A) @ dYc + (Kc * De) @ _t(dS)
        dQ[:, c] = (dAR * Kc[:, None, :, :]).sum(2) + gc * YS
        dK[:, c] = (dAR * Qc[:, :, None, :]).sum(1) + De * KdS
        M = dAR * Qc[:, :, None, :] * Kc[:, None, :, :]               # d/dlog R, (N, C, C, d)
        X = De * Kc * KdS
        dLc = red(M.sum(axis=2) - M.sum(axis=1) + gc * Qc * YS - X)
        dLc[:, -1] += red(X.sum(axis=1) + gc[:, -1] * (dS * Sc).sum(axis=1))
        dL[:, c] = dLc
        dS = dS * gc[:, -1][:, None, :] + _t(dYc) @ (Qc * gc)
    dalpha = _reverse_cumsum(dL, axis=2) / Al
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "alpha": _unchunk(dalpha, T), "W0": dS}


def gated_delta(q, k, v, beta, alpha, W0, dy, dW, C):
    """Backward of the chunkwise (gated) delta rule in the WY/UT representation.

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` (gates > 0) or
    ``None`` for the plain delta rule.
    """
    N, T, _ = q.shape
    dt = q.dtype
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    n = Q.shape[1]
    KKt = K @ _t(K)
    QKt = Q @ _t(K)
    bb = b[..., None]
    if alpha is None:
        KKtD, QKtD, g, Dend = KKt, QKt, None, None
        del QKt
        bK, Qg, Kend = bb * K, Q, K
    else:
        Al = _chunk(alpha, C, fill=1.0)
        L, Z = cumulative_log_decay(Al, axis=2)                       # (N, n, C, 1)
        D = decay_ratio(L[..., :, None, 0], Z[..., :, None, 0],
                        L[..., None, :, 0], Z[..., None, :, 0]).astype(dt)
        KKtD, QKtD = KKt * D, QKt * D
        g = np.exp(L).astype(dt)                                      # (N, n, C, 1)
        Dend = np.exp(L[:, :, -1:] - L).astype(dt)
        bK, Qg, Kend = (bb * g) * K, Q * g, K * Dend
    Tinv = unit_lower_inverse(bb * KKtD)
    Wy = Tinv @ bK                                                    # (N, n, C, d_k)
    Uy = Tinv @ (bb * V)                                              # (N, n, C, d_v)
    del bK
    attn = np.tril(QKtD)
    del QKtD
    # forward scan: chunk-entry states
    S = np.empty((N, n) + W0.shape[1:], dtype=dt)
    state = W0
    for c in range(n):
        S[:, c] = state
        U = Uy[:, c] - Wy[:, c] @ _t(state)
        state = _t(U) @ Kend[:, c] + (state if g is None else state * g[:, c, -1, :, None])
    # reverse scan: cotangents of the chunk-exit states and of the pseudo-values
    P = _t(attn) @ dY                                                 # (N, n, C, d_v)
    del attn
    RQ = _t(dY) @ Qg                                                  # (N, n, d_v, d_k)
    dU = np.empty_like(Uy)
    dSexit = np.empty_like(S)
    dS = dW
    for c in reversed(range(n)):
        dSexit[:, c] = dS
        dU[:, c] = P[:, c] + Kend[:, c] @ _t(dS)
        carry = dS if g is None else dS * g[:, c, -1, :, None]
        dS = carry + RQ[:, c] - _t(dU[:, c]) @ Wy[:, c]
    del P, RQ
    U = Uy - Wy @ _t(S)
    dattn = np.tril(dY @ _t(U))
    dQg = dY @ S                                                      # (N, n, C, d_k)
    dKend = U @ dSexit                                                # (N, n, C, d_k)
    drhs_v = _t(Tinv) @ dU                                            # d(beta V)
    drhs_k = -(_t(Tinv) @ (dU @ S))                                   # d(beta g K)
    dM = np.tril(-(drhs_v @ _t(Uy) + drhs_k @ _t(Wy)), -1)            # d(strict lower part)
    del Tinv, dU, U
    dKKtD = bb * dM
    dbeta = (dM * KKtD).sum(-1) + (drhs_v * V).sum(-1)
    dV = bb * drhs_v
    if g is None:
        dKK, dQK = dKKtD, dattn
        dQ = dQK @ K + dQg
        dK = (dKK + _t(dKK)) @ K + _t(dQK) @ Q + bb * drhs_k + dKend
        dbeta += (drhs_k * K).sum(-1)
        out = {}
    else:
        dKK, dQK = dKKtD * D, dattn * D
        dQ = dQK @ K + g * dQg
        dK = (dKK + _t(dKK)) @ K + _t(dQK) @ Q + (bb * g) * drhs_k + Dend * dKend
        gk = g[..., 0] * (drhs_k * K).sum(-1)                         # d/dg through beta g K
        dbeta += gk
        E = dKK * KKt + dQK * QKt                                     # d/dlog D
        X = (Kend * dKend).sum(-1)
        dL = E.sum(-1) - E.sum(-2) + b * gk + (Qg * dQg).sum(-1) - X
        dL[..., -1] += X.sum(-1) + g[:, :, -1, 0] * (dSexit * S).sum(axis=(-1, -2))
        out = {"alpha": _unchunk((_reverse_cumsum(dL, axis=2) / Al[..., 0])[..., None], T)}
    out.update({"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(dV, T),
                "beta": _unchunk(dbeta, T), "W0": dS})
    return out
