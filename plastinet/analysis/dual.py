"""The dual (attention) form of a fast-weight read-out: which past writes a query retrieves.

With ``W_0 = 0``, every read-out of the additive, decayed and delta rules is a linear
combination of the stored values, ``y = sum_tau M[query, tau] v_tau``, with weights that
depend on the keys, queries and gates only (never on the values):

* additive: ``M[t, tau] = beta_tau <phi(k_tau), phi(q_t)>``; with the attention
  normaliser each row is divided by ``sum_{tau <= t} <phi(k_tau), phi(q_t)> + eps``;
* decayed: ``M[t, tau] = beta_tau sum_j phi(q_t)_j phi(k_tau)_j prod_{s=tau+1..t} alpha_sj``
  (scalar or per-key gates);
* delta: the pseudo-values ``u = S v`` with ``S = (I + tril(diag(beta) K K^T, -1))^{-1}
  diag(beta)`` (unit lower-triangular solve) give ``M = <q, k> S``: negative weights are
  overwritten (erased) memories.

``causal=True`` reads ``y_t = W_t phi(q_t)`` at every step (the engine's convention: the
read-out includes step ``t``'s write, so ``M`` is lower triangular with its diagonal);
otherwise the queries read the memory after the last write.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.linalg import solve_triangular

from plastinet.errors import ShapeError, UnsupportedError, ValidationError
from plastinet.fwp.forms.decay import cumulative_log_decay, decay_ratio, decayed_scores
from plastinet.fwp.rules import DecayedHebbian, Delta, Hebbian, Rule

__all__ = ["attention_weights"]

_OBJ = "attention_weights"


def attention_weights(rule: Rule, k: Any, q: Any, *, beta: Any = None, alpha: Any = None,
                      causal: bool = False) -> xr.DataArray:
    """Weights of the stored values in the read-out of a query.

    Parameters
    ----------
    rule : Hebbian, DecayedHebbian or Delta
        The rule (its feature map is applied to ``k`` and ``q``).
    k : ndarray, shape (T, d_k)
        Keys written at steps ``0..T-1``.
    q : ndarray, shape (n_q, d_k)
        Queries; with ``causal=True`` one per step (``n_q = T``).
    beta : ndarray, shape (T,), optional
        Learning rates (default 1).
    alpha : ndarray, shape (T,) or (T, d_phi), optional
        Decays of DecayedHebbian (default: the rule's ``decay``).
    causal : bool
        Read at every step (``y_t = W_t phi(q_t)``) instead of after the last write.

    Returns
    -------
    xarray.DataArray
        ``M (query, write)`` with ``y = M @ v`` (``W_0 = 0``), dimensionless.

    Raises
    ------
    UnsupportedError
        For rules without this dual form (GatedDelta, Oja, ThreeFactor).
    ValidationError
        For inconsistent shapes.
    """
    if not isinstance(rule, (Hebbian, DecayedHebbian, Delta)):
        raise UnsupportedError(_OBJ, "rule", rule, "the dual form is implemented for Hebbian, "
                                                   "DecayedHebbian and Delta")
    k, q = np.asarray(k, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if k.ndim != 2 or q.ndim != 2 or k.shape[1] != q.shape[1] or min(k.shape + q.shape) < 1:
        raise ShapeError(_OBJ, "k/q", (np.shape(k), np.shape(q)),
                         "expected k (T, d_k) and q (n_q, d_k) with T, n_q, d_k >= 1")
    for name, arr in (("k", k), ("q", q)):
        if not np.isfinite(arr).all():
            raise ValidationError(_OBJ, name, arr, "all entries must be finite")
    K, Q = rule.phi(k), rule.phi(q)
    T = K.shape[0]
    if causal and Q.shape[0] != T:
        raise ShapeError(_OBJ, "q", q, f"causal read-out needs one query per write step ({T})")
    b = np.ones(T) if beta is None else np.asarray(beta, dtype=np.float64)
    if b.shape != (T,):
        raise ShapeError(_OBJ, "beta", beta, f"expected shape ({T},), one learning rate per write")
    if not np.isfinite(b).all():
        raise ValidationError(_OBJ, "beta", b, "all entries must be finite")
    scores = Q @ K.T
    if isinstance(rule, DecayedHebbian):
        a = alpha if alpha is not None else rule.decay
        if a is None:
            raise ValidationError(_OBJ, "alpha", None, "DecayedHebbian needs alpha or a rule decay")
        a = np.asarray(a, dtype=np.float64)
        a = np.broadcast_to(a, (T,)) if a.ndim == 0 else a
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[0] != T or a.shape[1] not in (1, K.shape[1]):
            raise ShapeError(_OBJ, "alpha", a, f"expected a scalar, shape ({T},) or ({T}, {K.shape[1]}) "
                                               "(one decay per write, scalar or per feature)")
        if not (np.isfinite(a).all() and np.all(a > 0)):
            raise ValidationError(_OBJ, "alpha", a, "decays must be finite and > 0")
        L, Z = cumulative_log_decay(a, axis=0)
        if causal:
            scores = decayed_scores(Q, K, L, Z)
        else:
            scores = Q @ (K * decay_ratio(L[-1:], Z[-1:], L, Z)).T
    elif causal:
        scores = np.tril(scores)
    M = scores * b[None, :]
    if isinstance(rule, Delta):
        system = np.tril(b[:, None] * (K @ K.T), -1) + np.eye(T)
        M = scores @ solve_triangular(system, np.diag(b), lower=True, unit_diagonal=True)
    if isinstance(rule, Hebbian) and rule.normalize:
        M = M / (scores.sum(axis=1, keepdims=True) + rule.eps)
    return xr.DataArray(M, dims=("query", "write"), name="attention_weights",
                        coords={"query": ("query", np.arange(Q.shape[0]), {"units": "1", "long_name": "query"}),
                                "write": ("write", np.arange(T), {"units": "1", "long_name": "write step"})},
                        attrs={"units": "1", "long_name": "weight of the stored value in the read-out",
                               "rule": type(rule).__name__, "causal": int(causal)})
