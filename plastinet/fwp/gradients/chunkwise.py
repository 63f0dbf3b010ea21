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


def decayed_hebbian(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                    alpha: np.ndarray, W0: np.ndarray, dy: np.ndarray, dW: np.ndarray,
                    C: int) -> dict[str, np.ndarray]:
    """Backward of chunkwise decayed linear attention (scalar or per-key gates > 0).

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` or ``(N, T, d_k)``.
    Scalar gates: batched over chunks with ``C x C`` decay matrices (as the forward).
    Per-key gates: one chunk at a time with the dense ratio tensor
    ``R[t, tau, j] = prod_{s in (tau, t]} alpha_sj`` (memory ``N C^2 d_k``).
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
    dbV = Kend @ _t(dSexit)
    dA = np.tril(dY @ _t(bV))
    dQ = g * YS
    X = Kend * KdS                                                    # d/dlog of the end decay
    dLj = Qg * YS - X                                                 # per key feature
    causal = np.tril(np.ones((C, C), dtype=bool))
    if L.shape[-1] == 1:
        D = np.where(causal, decay_ratio(L[..., :, None, 0], Z[..., :, None, 0],
                                         L[..., None, :, 0], Z[..., None, :, 0]), 0.0).astype(dt)
        QK = Q @ _t(K)
        dbV += _t(QK * D) @ dY
        dAD = dA * D
        dQ += dAD @ K
        dK = _t(dAD) @ Q
        M = dAD * QK                                                  # d/dlog D, (N, n, C, C)
        dL = (M.sum(-1) - M.sum(-2) + dLj.sum(-1))[..., None]
        del D, QK, dAD, M
    else:
        dK = np.empty_like(K)
        dL = dLj
        for c in range(n):
            Rt = np.where(causal[..., None], decay_ratio(L[:, c, :, None], Z[:, c, :, None],
                                                         L[:, c, None, :], Z[:, c, None, :]), 0.0)
            Rt = Rt.astype(dt)                                        # (N, C, C, d_k)
            QR = Q[:, c, :, None, :] * Rt
            dbV[:, c] += _t((QR * K[:, c, None, :, :]).sum(-1)) @ dY[:, c]
            dAR = dA[:, c, :, :, None] * Rt
            dQ[:, c] += (dAR * K[:, c, None, :, :]).sum(2)
            dK[:, c] = (dAR * Q[:, c, :, None, :]).sum(1)
            M = dAR * Q[:, c, :, None, :] * K[:, c, None, :, :]           # d/dlog R
            dL[:, c] += M.sum(axis=2) - M.sum(axis=1)
    dK += Dend * KdS
    end = X.sum(axis=2) + total[:, :, 0] * (dSexit * S).sum(axis=2)   # (N, n, d_k)
    dL[:, :, -1] += end if L.shape[-1] > 1 else end.sum(-1, keepdims=True)
    dalpha = _reverse_cumsum(dL, axis=2) / Al
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "alpha": _unchunk(dalpha, T), "W0": dS}


def gated_delta(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                alpha: np.ndarray | None, W0: np.ndarray, dy: np.ndarray, dW: np.ndarray,
                C: int) -> dict[str, np.ndarray]:
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
