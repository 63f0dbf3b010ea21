"""Recurrent backward pass: reverse-mode through the step-by-step definition, with checkpoints.

The forward recurrence is run once, keeping the state only every ``seg`` steps
(``seg = ceil(sqrt(T))``). The backward pass walks the segments in reverse; it recomputes
the ``seg + 1`` states of one segment from its checkpoint and then steps the cotangent
``G_t = dL/dW_t`` back through each update. Memory is ``O(sqrt(T))`` states instead of
``O(T)``; the forward recurrence is evaluated twice. No update is ever inverted, so the
pass is exact also when ``I - beta k k^T`` is singular (delta rule with ``beta = 1``).

Shapes as in :mod:`plastinet.fwp.forms` (batch and head merged into ``N``). States are
tuples ``(W,)`` or, for ThreeFactor, ``(W, E)``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from plastinet.fwp.functional import Prepared
from plastinet.fwp.rules import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, ThreeFactor

__all__ = ["backward"]

States = tuple[np.ndarray, ...]


def _mv(M: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batched ``M x``: ``(N, a, b) x (N, b) -> (N, a)``."""
    return np.einsum("nab,nb->na", M, x)


def _mtv(M: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batched ``M^T x``: ``(N, a, b) x (N, a) -> (N, b)``."""
    return np.einsum("nab,na->nb", M, x)


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[:, :, None] * b[:, None, :]


class _Grads:
    """Per-step gradient buffers (merged layout) filled by the backward steps."""

    def __init__(self, p: Prepared) -> None:
        self.k = np.zeros_like(p.k)
        self.v = np.zeros_like(p.v)
        self.beta = np.zeros_like(p.beta)
        self.alpha = None if p.alpha is None else np.zeros_like(p.alpha)
        self.modulator = None if p.modulator is None else np.zeros_like(p.modulator)


def _steps(p: Prepared) -> tuple[Callable[[States, int], States],
                                 Callable[[States, States, States, int, _Grads], States]]:
    """The forward step ``state_{t-1} -> state_t`` and the backward step of ``p.rule``.

    The backward step takes ``(state_{t-1}, state_t, G_t, t, grads)``, where ``G_t`` is the
    cotangent of ``state_t`` (including the read-out at ``t``), writes the gradients of the
    step-``t`` inputs into ``grads`` and returns the cotangent of ``state_{t-1}``.
    """
    rule: Rule = p.rule
    k, v, beta, alpha, mod = p.k, p.v, p.beta, p.alpha, p.modulator

    if isinstance(rule, Hebbian):
        def step(s, t):
            return (s[0] + _outer(beta[:, t, None] * v[:, t], k[:, t]),)

        def back(prev, cur, G, t, g):
            Gk = _mv(G[0], k[:, t])
            g.v[:, t] = beta[:, t, None] * Gk
            g.beta[:, t] = (v[:, t] * Gk).sum(-1)
            g.k[:, t] = beta[:, t, None] * _mtv(G[0], v[:, t])
            return G
    elif isinstance(rule, DecayedHebbian):
        def step(s, t):
            return (s[0] * alpha[:, t, None, :] + _outer(beta[:, t, None] * v[:, t], k[:, t]),)

        def back(prev, cur, G, t, g):
            Gk = _mv(G[0], k[:, t])
            g.v[:, t] = beta[:, t, None] * Gk
            g.beta[:, t] = (v[:, t] * Gk).sum(-1)
            g.k[:, t] = beta[:, t, None] * _mtv(G[0], v[:, t])
            col = (G[0] * prev[0]).sum(axis=1)                              # (N, d_k)
            g.alpha[:, t] = col if alpha.shape[-1] > 1 else col.sum(-1, keepdims=True)
            return (G[0] * alpha[:, t, None, :],)
    elif isinstance(rule, (Delta, GatedDelta)):
        gated = isinstance(rule, GatedDelta)

        def step(s, t):
            Wa = s[0] * alpha[:, t, :, None] if gated else s[0]
            err = v[:, t] - _mv(Wa, k[:, t])
            return (Wa + _outer(beta[:, t, None] * err, k[:, t]),)

        def back(prev, cur, G, t, g):
            Wa = prev[0] * alpha[:, t, :, None] if gated else prev[0]
            kt = k[:, t]
            err = v[:, t] - _mv(Wa, kt)
            bGk = beta[:, t, None] * _mv(G[0], kt)                          # beta G k
            g.v[:, t] = bGk
            g.beta[:, t] = (err * _mv(G[0], kt)).sum(-1)
            g.k[:, t] = beta[:, t, None] * _mtv(G[0], err) - _mtv(Wa, bGk)
            GWa = G[0] - _outer(bGk, kt)                                    # G (I - beta k k^T)
            if not gated:
                return (GWa,)
            g.alpha[:, t, 0] = (GWa * prev[0]).sum(axis=(1, 2))
            return (GWa * alpha[:, t, :, None],)
    elif isinstance(rule, Oja):
        def step(s, t):
            W = s[0]
            u = _mv(W, k[:, t])
            return (W + beta[:, t, None, None] * _outer(u, k[:, t] - _mtv(W, u)),)

        def back(prev, cur, G, t, g):
            W, kt, b = prev[0], k[:, t], beta[:, t, None]
            u = _mv(W, kt)
            r = kt - _mtv(W, u)                                             # k - W^T u
            Gr = _mv(G[0], r)
            g.beta[:, t] = (u * Gr).sum(-1)
            dr = b * _mtv(G[0], u)
            du = b * Gr - _mv(W, dr)
            g.k[:, t] = dr + _mtv(W, du)
            return (G[0] + _outer(du, kt) - _outer(u, dr),)
    elif isinstance(rule, ThreeFactor):
        gamma = v.dtype.type(rule.gamma)

        def step(s, t):
            E = gamma * s[1] + _outer(beta[:, t, None] * v[:, t], k[:, t])
            return (s[0] + mod[:, t, None, None] * E, E)

        def back(prev, cur, G, t, g):
            GW, GE = G
            g.modulator[:, t] = (GW * cur[1]).sum(axis=(1, 2))
            GEt = GE + mod[:, t, None, None] * GW
            Gk = _mv(GEt, k[:, t])
            g.v[:, t] = beta[:, t, None] * Gk
            g.beta[:, t] = (v[:, t] * Gk).sum(-1)
            g.k[:, t] = beta[:, t, None] * _mtv(GEt, v[:, t])
            return (GW, gamma * GEt)
    else:  # pragma: no cover - every registered rule is handled above
        raise TypeError(f"no recurrent backward for {type(rule).__name__}")
    return step, back


def backward(p: Prepared, dy: np.ndarray, dstate: States) -> tuple[_Grads, np.ndarray, States]:
    """Gradients of ``<dy, Y> + <dstate, final state>`` for the prepared inputs ``p``.

    Parameters
    ----------
    p : Prepared
        Validated inputs (after the feature map), merged layout.
    dy : ndarray, shape (N, T, d_v)
        Cotangent of the read-outs ``y_t = W_t q_t``.
    dstate : tuple of ndarray, each (N, d_v, d_phi)
        Cotangent of the final state: ``(dW,)`` or, for ThreeFactor, ``(dW, dE)``.

    Returns
    -------
    grads : _Grads
        Gradients of ``k`` (after phi), ``v``, ``beta``, ``alpha``, ``modulator``.
    dq : ndarray, shape (N, T, d_phi)
        Gradient of the queries after phi.
    dstate0 : tuple of ndarray
        Cotangent of the initial state, same structure as ``dstate``.
    """
    step, back = _steps(p)
    q = p.q
    T = q.shape[1]
    seg = math.isqrt(T - 1) + 1 if T > 1 else 1                             # ceil(sqrt(T))
    state: States = (p.state.W,) if p.state.eligibility is None else (p.state.W, p.state.eligibility)
    checkpoints = []
    for t in range(T):
        if t % seg == 0:
            checkpoints.append(state)
        state = step(state, t)
    grads = _Grads(p)
    dq = np.empty_like(q)
    G = tuple(np.array(d, copy=True) for d in dstate)
    for start in reversed(range(0, T, seg)):
        stop = min(start + seg, T)
        states = [checkpoints[start // seg]]
        for t in range(start, stop):
            states.append(step(states[-1], t))
        for t in reversed(range(start, stop)):
            W_t = states[t - start + 1][0]
            dq[:, t] = _mtv(W_t, dy[:, t])
            G = (G[0] + _outer(dy[:, t], q[:, t]),) + G[1:]
            G = back(states[t - start], states[t - start + 1], G, t, grads)
        del states
    return grads, dq, G
