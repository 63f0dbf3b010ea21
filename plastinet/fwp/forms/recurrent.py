"""Recurrent form: the rules' definitions, one step at a time.

Each function loops over time with the batch*head axis vectorised. This is the reference
that the parallel and chunkwise forms are tested against. Shapes as in
:mod:`plastinet.fwp.forms`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hebbian", "decayed_hebbian", "delta", "gated_delta", "oja", "three_factor"]


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[:, :, None] * b[:, None, :]


def _read(W: np.ndarray, q_t: np.ndarray) -> np.ndarray:
    return (W @ q_t[:, :, None])[:, :, 0]


def hebbian(q, k, v, beta, W0):
    """``W_t = W_{t-1} + beta_t v_t k_t^T``."""
    W = W0.copy()
    y = np.empty(v.shape, dtype=v.dtype)
    bv = beta[:, :, None] * v
    for t in range(q.shape[1]):
        W += _outer(bv[:, t], k[:, t])
        y[:, t] = _read(W, q[:, t])
    return y, W


def decayed_hebbian(q, k, v, beta, alpha, W0):
    """``W_t = W_{t-1} diag(alpha_t) + beta_t v_t k_t^T`` (alpha of shape (N, T, 1) or (N, T, d_k))."""
    W = W0.copy()
    y = np.empty(v.shape, dtype=v.dtype)
    bv = beta[:, :, None] * v
    for t in range(q.shape[1]):
        W *= alpha[:, t, None, :]
        W += _outer(bv[:, t], k[:, t])
        y[:, t] = _read(W, q[:, t])
    return y, W


def delta(q, k, v, beta, W0):
    """``W_t = W_{t-1} + beta_t (v_t - W_{t-1} k_t) k_t^T``."""
    W = W0.copy()
    y = np.empty(v.shape, dtype=v.dtype)
    for t in range(q.shape[1]):
        err = v[:, t] - _read(W, k[:, t])
        W += _outer(beta[:, t, None] * err, k[:, t])
        y[:, t] = _read(W, q[:, t])
    return y, W


def gated_delta(q, k, v, beta, alpha, W0):
    """``W_t = alpha_t W_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T`` (scalar alpha (N, T, 1))."""
    W = W0.copy()
    y = np.empty(v.shape, dtype=v.dtype)
    for t in range(q.shape[1]):
        W *= alpha[:, t, :, None]
        err = v[:, t] - _read(W, k[:, t])
        W += _outer(beta[:, t, None] * err, k[:, t])
        y[:, t] = _read(W, q[:, t])
    return y, W


def oja(q, k, v, beta, W0):
    """Subspace Oja: ``u = W_{t-1} k_t``; ``W_t = W_{t-1} + beta_t (u k_t^T - u u^T W_{t-1})``."""
    W = W0.copy()
    y = np.empty(v.shape, dtype=v.dtype)
    for t in range(q.shape[1]):
        u = _read(W, k[:, t])
        uW = (u[:, None, :] @ W)[:, 0]                       # u^T W_{t-1}, (N, d_k)
        W += beta[:, t, None, None] * _outer(u, k[:, t] - uW)
        y[:, t] = _read(W, q[:, t])
    return y, W


def three_factor(q, k, v, beta, modulator, gamma, W0, E0):
    """``E_t = gamma E_{t-1} + beta_t v_t k_t^T``; ``W_t = W_{t-1} + m_t E_t``."""
    W = W0.copy()
    E = E0.copy()
    y = np.empty(v.shape, dtype=v.dtype)
    bv = beta[:, :, None] * v
    g = v.dtype.type(gamma)
    for t in range(q.shape[1]):
        E *= g
        E += _outer(bv[:, t], k[:, t])
        W += modulator[:, t, None, None] * E
        y[:, t] = _read(W, q[:, t])
    return y, W, E
