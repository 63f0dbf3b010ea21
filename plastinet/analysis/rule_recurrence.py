"""The plastic rate network fitted by :func:`plastinet.analysis.infer_rule`, with its exact
reverse-mode gradient through time.

For every trial ``n`` and step ``t`` (weights ``W_t``, shape ``(post, pre)``)::

    z_t     = W_t x_t                                  (drive of the post neurons)
    y_t     = f(z_t)                                   (f: "linear" or "tanh")
    W_{t+1} = W_t + rule(x_t, u_t, W_t, r_t, v_t; theta)

with ``u_t = y_t`` when activity is observed (the rule sees the network's own output)
and ``u_t`` the one-hot choice when behaviour is observed (the chosen action).

Losses (``N`` the number of observed values):

* activity: ``L = sum (y_t - y_obs_t)^2 / (N var(y_obs))`` (normalised mean squared error);
* behaviour: ``L = -sum log softmax(z_t)[choice_t] / N`` (mean negative log-likelihood of
  the choices, inverse temperature 1: the weights carry the scale).

:func:`run` returns the loss and, by the adjoint recursion
``lambda_t = lambda_{t+1} + (d rule / d W_t)^T lambda_{t+1} + g_t x_t^T`` with
``g_t = (d L / d y_t + (d rule / d u_t)^T lambda_{t+1}) f'(z_t)``,
its gradients with respect to the rule's parameters and the initial weights (``u = y`` for
activity; for choices the ``d rule / d u`` term is absent, the choice being observed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from plastinet.analysis.rule_models import Context

__all__ = ["Observations", "run", "ACTIVATIONS"]

ACTIVATIONS = ("linear", "tanh")
#: A forward pass stops (and reports a blow-up) when a weight exceeds this many weight scales.
BLOWUP = 1e6


@dataclass
class Observations:
    """Validated inputs and targets, each with a leading trial axis ``n``.

    ``x (n, T, Q)``; ``y (n, T, P)`` (activity) or ``choice (n, T, P)`` one-hot (behaviour);
    ``r (n, T)`` and ``v (n, T, P)`` or None.
    """

    x: np.ndarray
    y: np.ndarray | None
    choice: np.ndarray | None
    r: np.ndarray | None
    v: np.ndarray | None

    @property
    def mode(self) -> str:
        return "activity" if self.y is not None else "choice"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(trials, steps, post, pre)``."""
        target = self.y if self.y is not None else self.choice
        return self.x.shape[0], self.x.shape[1], target.shape[2], self.x.shape[2]

    def take(self, idx: np.ndarray) -> "Observations":
        """The trials ``idx`` (with repetition, for the bootstrap)."""
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return replace(self, x=self.x[idx], y=pick(self.y), choice=pick(self.choice), r=pick(self.r),
                       v=pick(self.v))

    def context(self) -> Context:
        return Context(self.x, self.r, self.v)


def _act(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f(z)`` and ``f'(z)``."""
    if name == "tanh":
        y = np.tanh(z)
        return y, 1.0 - y * y
    return z, np.ones_like(z)


def run(rule: Any, params: np.ndarray, W0: np.ndarray, obs: Observations, activation: str,
        prep: dict[str, Any], *, grad: bool = True, var_y: float = 1.0, groups: int = 1,
        limit: float = np.inf) -> dict[str, Any] | None:
    """Forward pass (and backward pass with ``grad``) of the plastic network.

    Parameters
    ----------
    rule : TaylorRule or MLPRule
        The parameterised rule.
    params : ndarray
        Its parameters, ``(K,)`` shared by all trials, or ``(groups, K)`` for ``groups``
        equal consecutive blocks of trials (Taylor rule only: bootstrap resamples side by
        side).
    W0 : ndarray, shape (n, P, Q)
        Initial weights of each trial.
    obs : Observations
        Inputs and targets.
    activation : {"linear", "tanh"}
        Output nonlinearity (activity mode).
    prep : dict
        ``rule.prepare(obs.context())``.
    grad : bool
        Also run the backward pass.
    var_y : float
        Normaliser of the activity loss.
    groups : int
        Number of blocks; the loss is the sum of the blocks' losses.
    limit : float
        Weight magnitude at which the run counts as blown up (returns None).

    Returns
    -------
    dict or None
        ``loss``, ``z (n, T, P)``, ``W (n, T, P, Q)`` (before each step's change),
        ``dW (n, T, P, Q)``, ``u (n, T, P)`` and, with ``grad``, ``g_params`` (shape of
        ``params``) and ``g_W0``; None if the weights blew up.
    """
    n, T, P, Q = obs.shape
    x = obs.x
    params = np.asarray(params, dtype=np.float64)
    if rule.per_trial:
        per = np.broadcast_to(params, (groups, params.shape[-1]))
        state = rule.setup(np.repeat(per, n // groups, axis=0), prep)
    else:
        state = rule.setup(params, prep)
    W = np.array(W0, dtype=np.float64)
    Z = np.empty((n, T, P))
    Ws = np.empty((n, T, P, Q))
    dWs = np.empty((n, T, P, Q))
    U = np.empty((n, T, P))
    caches = []
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            z = (W @ x[:, t, :, None])[..., 0]
            Z[:, t] = z
            u = (np.tanh(z) if activation == "tanh" else z) if obs.y is not None else obs.choice[:, t]
            U[:, t] = u
            dW, cache = rule.step(state, t, u, W)
            if grad:
                caches.append(cache)
            Ws[:, t] = W
            dWs[:, t] = dW
            W = W + dW
            if t % 16 == 15 or t == T - 1:
                if not np.all(np.abs(W) < limit):         # also catches NaN
                    return None
    out: dict[str, Any] = {"z": Z, "W": Ws, "dW": dWs, "u": U}
    N = n * T // groups
    if obs.y is not None:
        Y, dact = _act(activation, Z)
        res = Y - obs.y
        out["loss"] = float((res * res).sum() / (N * P * var_y))
        gY = 2.0 * res / (N * P * var_y)
    else:
        zmax = Z.max(axis=-1, keepdims=True)
        logp = Z - zmax - np.log(np.exp(Z - zmax).sum(axis=-1, keepdims=True))
        out["loss"] = float(-(obs.choice * logp).sum() / N)
        out["logp"] = logp
        gZ = (np.exp(logp) - obs.choice) / N
    if not grad:
        return out
    lam = np.zeros((n, P, Q))
    g_steps = []
    for t in range(T - 1, -1, -1):
        gs, gu, gWr = rule.step_vjp(state, caches[t], lam)
        g_steps.append(gs)
        gz = (gY[:, t] + gu) * dact[:, t] if obs.y is not None else gZ[:, t]
        lam = lam + gWr + gz[:, :, None] * x[:, t][:, None, :]
    g = rule.params_grad(state, g_steps)
    if rule.per_trial:
        g = g.reshape(groups, n // groups, -1).sum(axis=1)
        g = g.reshape(params.shape) if params.ndim == 2 else g.sum(axis=0)
    out["g_params"] = g
    out["g_W0"] = lam
    return out
