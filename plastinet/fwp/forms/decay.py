"""Products of decay gates, computed stably and with exact zeros.

A decayed rule needs ``prod_{s=tau+1..t} alpha_s`` for every pair ``tau <= t``. Ratios of
cumulative products under- and overflow for long sequences, and ``alpha_s = 0`` makes
logarithms infinite. We therefore keep, in float64, the inclusive cumulative sum ``L`` of
``log alpha`` over the *non-zero* gates and the cumulative count ``Z`` of zero gates: the
product over ``(tau, t]`` is ``exp(L_t - L_tau)`` when ``Z_t == Z_tau`` and exactly 0
otherwise. Every factor we form is ``<= 1``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cumulative_log_decay", "decay_ratio", "decayed_scores"]


def cumulative_log_decay(alpha: np.ndarray, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive cumulative ``(L, Z)`` of the gates ``alpha`` (in ``[0, 1]``) along ``axis``."""
    a = np.asarray(alpha, dtype=np.float64)
    zero = a == 0.0
    logs = np.log(np.where(zero, 1.0, a))
    return np.cumsum(logs, axis=axis), np.cumsum(zero, axis=axis, dtype=np.int64)


def decay_ratio(L_t: np.ndarray, Z_t: np.ndarray, L_r: np.ndarray, Z_r: np.ndarray) -> np.ndarray:
    """``prod alpha`` over ``(r, t]`` from cumulative ``(L, Z)`` at ``t`` and at ``r <= t``.

    Arrays broadcast; pairs with ``r > t`` must be masked by the caller (their value is
    clipped to 1 here so that no overflow occurs).
    """
    return np.where(Z_t == Z_r, np.exp(np.minimum(L_t - L_r, 0.0)), 0.0)


def decayed_scores(q: np.ndarray, k: np.ndarray, L: np.ndarray, Z: np.ndarray,
                   block: int = 64) -> np.ndarray:
    """Causal decayed attention scores within one segment.

    ``A[..., t, tau] = sum_j q_tj k_tauj prod_{s=tau+1..t} alpha_sj`` for ``tau <= t`` and 0
    above the diagonal.

    Parameters
    ----------
    q, k : ndarray, shape (..., T, d)
        Queries and keys of the segment.
    L, Z : ndarray, shape (..., T, 1) or (..., T, d)
        Inclusive cumulative log-decays and zero counts *relative to the segment* (from
        :func:`cumulative_log_decay`); a last axis of 1 means a scalar decay per step.
    block : int
        Row-block size for per-key decays (memory ``block**2 * d`` per leading index).

    Returns
    -------
    ndarray, shape (..., T, T)
        In the dtype of ``q``.
    """
    T = q.shape[-2]
    dtype = q.dtype
    causal = np.tril(np.ones((T, T), dtype=bool))
    if L.shape[-1] == 1:
        D = decay_ratio(L[..., :, None, 0], Z[..., :, None, 0], L[..., None, :, 0], Z[..., None, :, 0])
        return (q @ np.swapaxes(k, -1, -2)) * np.where(causal, D, 0.0).astype(dtype)
    A = np.zeros(q.shape[:-1] + (T,), dtype=dtype)
    for s in range(0, T, block):
        e = min(s + block, T)
        # diagonal block: per-dimension ratios, (.., c, c, d)
        r = decay_ratio(L[..., s:e, None, :], Z[..., s:e, None, :], L[..., None, s:e, :], Z[..., None, s:e, :])
        diag = np.einsum("...td,...ud,...tud->...tu", q[..., s:e, :], k[..., s:e, :], r.astype(dtype))
        A[..., s:e, s:e] = np.where(causal[: e - s, : e - s], diag, 0.0)
        if s == 0:
            continue
        # earlier columns: factor through the reference step s-1, both factors <= 1
        Lr, Zr = L[..., s - 1: s, :], Z[..., s - 1: s, :]
        qf = q[..., s:e, :] * decay_ratio(L[..., s:e, :], Z[..., s:e, :], Lr, Zr).astype(dtype)
        kf = k[..., :s, :] * decay_ratio(Lr, Zr, L[..., :s, :], Z[..., :s, :]).astype(dtype)
        A[..., s:e, :s] = qf @ np.swapaxes(kf, -1, -2)
    return A
