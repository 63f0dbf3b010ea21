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
matrix, ``U = T diag(beta) V - T diag(beta g) K S^T``: two state-independent matrices. Then
``Y = diag(g) Q S^T + tril(Q K^T * D) U`` and the next state is
``g_C S + U^T diag(g_C / g) K``.
"""

from __future__ import annotations

import numpy as np

from plastinet.fwp.forms.decay import cumulative_log_decay, decay_ratio, decayed_scores

__all__ = ["hebbian", "decayed_hebbian", "delta", "gated_delta", "unit_lower_inverse"]


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


def unit_lower_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of a batch of unit-lower-triangular matrices by block doubling.

    Blocks of size ``b`` are merged into blocks of size ``2b`` with
    ``[[P, 0], [R, Q]]^{-1} = [[P^-1, 0], [-Q^-1 R P^-1, Q^-1]]``; every level is a pair of
    matrix products, so the cost is dominated by BLAS-3 calls. Only the strictly lower part
    of ``A`` is read.
    """
    C = A.shape[-1]
    inv = np.zeros_like(A)
    idx = np.arange(C)
    inv[..., idx, idx] = 1.0
    b = 1
    while b < C:
        for s in range(0, C - b, 2 * b):
            m, e = s + b, min(s + 2 * b, C)
            inv[..., m:e, s:m] = -(inv[..., m:e, m:e] @ A[..., m:e, s:m]) @ inv[..., s:m, s:m]
        b *= 2
    return inv


def hebbian(q, k, v, beta, W0, C):
    """Chunkwise linear attention; the chunk states are an exclusive cumulative sum."""
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
    return _unchunk(y, T), S[:, -1] + dS[:, -1]


def decayed_hebbian(q, k, v, beta, alpha, W0, C):
    """Chunkwise decayed linear attention with scalar or per-key gates."""
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
    return _unchunk(y, T), state


def gated_delta(q, k, v, beta, alpha, W0, C):
    """Chunkwise (gated) delta rule in the WY/UT representation; ``alpha=None``: no gate."""
    T = q.shape[1]
    dt = q.dtype
    Q, K, V, b = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C)
    KKt = K @ _t(K)
    QKt = Q @ _t(K)
    if alpha is None:
        bK = b[..., None] * K
        Qg = Q
        Kend = K
        total = None
    else:
        L, Z = cumulative_log_decay(_chunk(alpha, C, fill=1.0), axis=2)   # (N, n, C, 1)
        D = decay_ratio(L[..., :, None, 0], Z[..., :, None, 0],
                        L[..., None, :, 0], Z[..., None, :, 0]).astype(dt)
        KKt *= D
        QKt *= D
        g = np.where(Z == 0, np.exp(L), 0.0).astype(dt)                   # (N, n, C, 1)
        bK = (b[..., None] * g) * K
        Qg = Q * g
        Kend = K * decay_ratio(L[:, :, -1:], Z[:, :, -1:], L, Z).astype(dt)
        total = g[:, :, -1][:, :, None, :]                                # (N, n, 1, 1)
    Tinv = unit_lower_inverse(b[..., :, None] * KKt)
    Wy = Tinv @ bK                                                        # (N, n, C, d_k)
    Uy = Tinv @ (b[..., None] * V)                                        # (N, n, C, d_v)
    attn = np.tril(QKt)
    Qeff = Qg - attn @ Wy
    intra = attn @ Uy
    S = np.empty((q.shape[0], Q.shape[1]) + W0.shape[1:], dtype=dt)
    state = W0.copy()
    for c in range(Q.shape[1]):
        S[:, c] = state
        U = Uy[:, c] - Wy[:, c] @ _t(state)
        if total is None:
            state = state + _t(U) @ Kend[:, c]
        else:
            state = state * total[:, c] + _t(U) @ Kend[:, c]
    y = intra + Qeff @ _t(S)
    return _unchunk(y, T), state


def delta(q, k, v, beta, W0, C):
    """Chunkwise delta rule (the gated rule without a gate)."""
    return gated_delta(q, k, v, beta, None, W0, C)
