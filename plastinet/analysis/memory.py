"""Transition spectra of the delta and gated-delta rules.

The delta and gated-delta transitions ``A_t = alpha_t (I - beta_t k_t k_t^T)`` have the
eigenvalue ``alpha_t (1 - beta_t ||k_t||^2)`` along ``k_t`` and ``alpha_t`` elsewhere
(:func:`transition_spectrum`): contractive for ``0 < beta ||k||^2 < 2`` (reflecting, i.e.
negative, for ``beta ||k||^2 > 1``), expanding beyond 2. Capacity and forgetting curves,
which run the rules, are in :mod:`plastinet.experiments.memory_curves`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import ShapeError, UnsupportedError, ValidationError
from plastinet.fwp.rules import Delta, GatedDelta, Rule

__all__ = ["transition_spectrum"]


def transition_spectrum(rule: Rule, k: Any, *, beta: Any = None, alpha: Any = None) -> xr.Dataset:
    """Eigen-spectrum of the delta / gated-delta transitions over a run.

    The transition of step ``t`` is ``A_t = alpha_t (I - beta_t k_t k_t^T)`` (``k_t`` after
    the rule's feature map; ``W_t = W_{t-1} A_t + beta_t v_t k_t^T``).

    Parameters
    ----------
    rule : Delta or GatedDelta
        The rule (its feature map is applied to ``k``).
    k : ndarray, shape (T, d_k)
        Keys of the run.
    beta : ndarray, shape (T,), optional
        Learning rates (default 1).
    alpha : ndarray, shape (T,), optional
        Decays of GatedDelta (default: the rule's ``decay``, else 1).

    Returns
    -------
    xarray.Dataset
        ``eig_key (time)`` = ``alpha (1 - beta ||k||^2)``, ``eig_other (time)`` = ``alpha``,
        ``regime (time)`` in ``{"identity", "contractive", "reflecting", "expanding"}`` (of
        the key direction), and ``singular_values (time, mode)`` of the cumulative transition
        ``A_1 ... A_t`` (how much of the initial memory survives, per direction).

    Raises
    ------
    UnsupportedError
        For rules other than Delta and GatedDelta.
    """
    if not isinstance(rule, (Delta, GatedDelta)):
        raise UnsupportedError("transition_spectrum", "rule", rule,
                               "needs a Delta or GatedDelta rule (their transitions are I - beta k k^T)")
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] < 1 or k.shape[1] < 1:
        raise ValidationError("transition_spectrum", "k", k, "expected keys of shape (T, d_k) with T, d_k >= 1")
    if not np.isfinite(k).all():
        raise ValidationError("transition_spectrum", "k", k, "all keys must be finite")
    kf = rule.phi(k)
    T, d = kf.shape

    def gate(value: Any, name: str, default: float) -> np.ndarray:
        if value is None:
            return np.full(T, default)
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != T):
            raise ShapeError("transition_spectrum", name, arr, f"expected a scalar or shape ({T},), one per key")
        if not np.isfinite(arr).all():
            raise ValidationError("transition_spectrum", name, arr, "all entries must be finite")
        return np.broadcast_to(arr, (T,))

    b = gate(beta, "beta", 1.0)
    default = rule.decay if isinstance(rule, GatedDelta) and rule.decay is not None else 1.0
    a = np.full(T, default) if isinstance(rule, Delta) else gate(alpha, "alpha", default)
    gain = b * (kf * kf).sum(-1)
    eig_key = a * (1 - gain)
    regime = np.where(np.isclose(eig_key, a) & np.isclose(a, 1.0), "identity",
                      np.where(np.abs(eig_key) > 1 + 1e-12, "expanding",
                               np.where(eig_key < 0, "reflecting", "contractive")))
    P = np.eye(d)
    sv = np.empty((T, d))
    for t in range(T):
        P = P @ (a[t] * (np.eye(d) - b[t] * np.outer(kf[t], kf[t])))
        sv[t] = np.linalg.svd(P, compute_uv=False)
    return xr.Dataset(
        {"eig_key": ("time", eig_key, {"units": "1", "long_name": "eigenvalue along k_t"}),
         "eig_other": ("time", a.copy(), {"units": "1", "long_name": "eigenvalue orthogonal to k_t"}),
         "regime": ("time", regime.astype(str), {"units": "1", "long_name": "regime of the key direction"}),
         "singular_values": (("time", "mode"), sv, {"units": "1",
                                                    "long_name": "singular values of A_1 ... A_t"})},
        coords={"time": ("time", np.arange(T), {"units": "1", "long_name": "step"}),
                "mode": ("mode", np.arange(d), {"units": "1", "long_name": "singular mode"})},
        attrs={"rule": type(rule).__name__})
