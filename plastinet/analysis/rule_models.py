"""Parameterised plasticity rules fitted by :func:`plastinet.analysis.infer_rule`.

Both rules give the change of every synapse ``(i, j)`` (post ``i``, pre ``j``) in one step
from its local variables

==========  ======================================================================
symbol      variable
==========  ======================================================================
``x``       presynaptic activity ``pre_j``
``y``       the rule's postsynaptic variable ``post_i`` (the network's own output,
            or the one-hot choice for behaviour)
``W``       the weight ``W_ij`` before the change
``r``       a scalar third factor per step (reward, neuromodulator, gate)
``v``       a teaching input ``teacher_i`` of the postsynaptic neuron
==========  ======================================================================

* :class:`TaylorRule`: a truncated Taylor series
  ``dW_ij = sum_k theta_k x_j^a_k y_i^b_k W_ij^c_k r^d_k v_i^e_k`` over a chosen set of
  exponent tuples ``(a, b, c, d, e)`` (Mehta et al., NeurIPS 2024, extended by ``v``);
* :class:`MLPRule`: ``dW_ij = s (c^T tanh(A z_ij + b) + c_0)``, ``z_ij`` the variables
  divided by their typical magnitudes, ``s`` a fixed output scale.

Each rule has ``prepare`` (state-independent inputs), ``setup`` (their combination with the
parameters), ``step`` (the change and a cache), ``step_vjp`` (the reverse-mode derivative
of the change with respect to the per-step parameter factor, ``y`` and ``W``) and
``params_grad`` (the per-step factors' gradients mapped to the parameters), derived by
hand; :mod:`plastinet.analysis.rule_recurrence` chains them through time.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from plastinet.errors import ValidationError

__all__ = ["VARIABLES", "TaylorRule", "MLPRule", "term_name", "parse_term", "taylor_terms"]

#: Symbols of the local variables, in the order of the exponent tuples.
VARIABLES = ("x", "y", "W", "r", "v")
Exponents = tuple[int, int, int, int, int]
_OBJ = "infer_rule"
_FACTOR = re.compile(r"^\s*([xyWwrv])\s*(?:\^\s*(\d+))?\s*$")


def term_name(e: Exponents) -> str:
    """``"x*y^2*W"``-style name of a monomial (``"1"`` for the constant)."""
    parts = [s if p == 1 else f"{s}^{p}" for s, p in zip(VARIABLES, e) if p]
    return "*".join(parts) or "1"


def parse_term(term: Any) -> Exponents:
    """Exponents of a term given as a name (``"x*y"``, ``"y^2*W"``, ``"1"``) or a tuple.

    Raises
    ------
    ValidationError
        For anything else.
    """
    allowed = ("a term is a product of x, y, W, r, v with powers, e.g. 'x*y', 'y^2*W', 'r*x*y', '1', "
               "or an exponent tuple (a, b, c, d, e) for x, y, W, r, v")
    if isinstance(term, (tuple, list)) and len(term) in (4, 5) and all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) and 0 <= p <= 2 for p in term):
        return tuple(int(p) for p in term) + (0,) * (5 - len(term))     # type: ignore[return-value]
    if not isinstance(term, str) or not term.strip():
        raise ValidationError(_OBJ, "terms", term, allowed)
    e = [0] * 5
    if term.strip() != "1":
        for factor in term.split("*"):
            m = _FACTOR.match(factor)
            if m is None:
                raise ValidationError(_OBJ, "terms", term, allowed)
            e[VARIABLES.index("W" if m.group(1) == "w" else m.group(1))] += int(m.group(2) or 1)
    if max(e) > 2:
        raise ValidationError(_OBJ, "terms", term, "every power is at most 2")
    return tuple(e)     # type: ignore[return-value]


def taylor_terms(max_power: dict[str, int], order: int | None) -> list[Exponents]:
    """All monomials with each variable's power at most ``max_power[var]`` (0 for absent
    variables) and total degree at most ``order`` (no limit for ``None``), sorted by degree."""
    ranges = [range(max_power.get(s, 0) + 1) for s in VARIABLES]
    out = [e for e in itertools.product(*ranges) if order is None or sum(e) <= order]
    return sorted(out, key=lambda e: (sum(e), e[::-1]))


def _powers(a: np.ndarray, n: int) -> np.ndarray:
    """``a^0 .. a^n`` stacked on a new last axis."""
    out = np.empty(a.shape + (n + 1,))
    out[..., 0] = 1.0
    for p in range(1, n + 1):
        out[..., p] = out[..., p - 1] * a
    return out


def _with_derivative(a: np.ndarray, exps: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``a^p`` and ``p a^(p-1)`` for the powers ``exps`` (each 0, 1 or 2), along ``axis``
    (``-1``: a new last axis; ``1``: the length-1 axis 1 of ``a``)."""
    if axis == -1:
        a = a[..., None]
        shape = a.shape[:-1] + (3,)
    else:
        shape = a.shape[:1] + (3,) + a.shape[2:]
    val, der = np.empty(shape), np.empty(shape)
    idx = (Ellipsis,) if axis == -1 else (slice(None),)
    sl = lambda k: idx + (slice(k, k + 1),)  # noqa: E731
    val[sl(0)], val[sl(1)], val[sl(2)] = 1.0, a, a * a
    der[sl(0)], der[sl(1)], der[sl(2)] = 0.0, 1.0, 2.0 * a
    take = idx + (exps,)
    return val[take], der[take]


@dataclass
class Context:
    """Per-run inputs of a rule: ``x (n, T, Q)``, ``r (n, T)`` or None, ``v (n, T, P)`` or None."""

    x: np.ndarray
    r: np.ndarray | None
    v: np.ndarray | None


class TaylorRule:
    """``dW_ij = sum_k theta_k x_j^a y_i^b W_ij^c r^d v_i^e`` over the exponent tuples ``terms``.

    The change is computed as ``sum_c W^c * (Y A_c)`` with post features ``Y = [y^b v^e]``
    and pre-side coefficients ``A_c(t) = sum_{a, d} theta_abcd r_t^d x_t^a``, which do not
    depend on the network's state and are computed for all steps at once (:meth:`setup`):
    one small batched product per step. The coefficients may differ between trials
    (``theta (n, K)``), which lets bootstrap resamples be fitted side by side.

    Parameters
    ----------
    terms : list of tuple
        Distinct exponent tuples ``(a, b, c, d, e)``.
    """

    def __init__(self, terms: list[Exponents]) -> None:
        self.terms = [tuple(int(p) for p in t) for t in terms]
        self.post = sorted({(t[1], t[4]) for t in self.terms})
        self.pre = sorted({t[0] for t in self.terms})
        self.c_vals = sorted({t[2] for t in self.terms})
        self.d_vals = sorted({t[3] for t in self.terms})
        self._idx = (np.array([self.c_vals.index(t[2]) for t in self.terms]),
                     np.array([self.d_vals.index(t[3]) for t in self.terms]),
                     np.array([self.post.index((t[1], t[4])) for t in self.terms]),
                     np.array([self.pre.index(t[0]) for t in self.terms]))
        self._bi = np.array([b for b, _ in self.post])
        self._ci = np.array(self.c_vals)

    @property
    def n_params(self) -> int:
        return len(self.terms)

    per_trial = True

    def prepare(self, ctx: Context) -> dict[str, Any]:
        """State-independent factors: ``RX = r^d x^a`` as ``(n, T Q, D Ka)`` and
        ``V = v^e (n, T, P, Kb)``."""
        n, T = ctx.x.shape[:2]
        r = ctx.r if ctx.r is not None else np.ones((n, T))
        V = None
        if any(e for _, e in self.post):
            V = np.stack([ctx.v ** e if e else np.ones_like(ctx.v) for _, e in self.post], axis=-1)
        X = _powers(ctx.x, max(self.pre))[..., self.pre]                   # (n, T, Q, Ka)
        R = _powers(r, max(self.d_vals))[..., self.d_vals]                 # (n, T, D)
        RX = R[:, :, None, :, None] * X[:, :, :, None, :]                   # (n, T, Q, D, Ka)
        return {"RX": RX.reshape(n, T * X.shape[2], -1), "V": V, "shape": (n, T, X.shape[2])}

    def setup(self, theta: np.ndarray, prep: dict[str, Any]) -> dict[str, Any]:
        """Pre-side coefficients ``A (n, T, C, Kb, Q)`` for per-trial ``theta (n, K)``."""
        n, T, Q = prep["shape"]
        C, Kb = len(self.c_vals), len(self.post)
        Th = np.zeros((n, len(self.d_vals), len(self.pre), C, Kb))
        c, d, b, a = self._idx
        Th[:, d, a, c, b] = theta
        A = (prep["RX"] @ Th.reshape(n, -1, C * Kb)).reshape(n, T, Q, C, Kb)
        return {"A": A.transpose(0, 1, 3, 4, 2), **prep}

    def step(self, run: dict[str, Any], t: int, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Change ``(n, P, Q)`` at step ``t`` for post variable ``y (n, P)`` and weights ``W``."""
        yb, dyb = _with_derivative(y, self._bi)                              # (n, P, Kb)
        if run["V"] is not None:
            yb, dyb = yb * run["V"][:, t], dyb * run["V"][:, t]
        A = run["A"][:, t]                                                  # (n, C, Kb, Q)
        S = yb[:, None] @ A                                                 # (n, C, P, Q)
        Wc, dWc = _with_derivative(W[:, None], self._ci, axis=1)            # (n, C, P, Q)
        return (Wc * S).sum(axis=1), (yb, dyb, A, Wc, (dWc * S).sum(axis=1))

    def step_vjp(self, run: dict[str, Any], cache: tuple, G: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients of ``sum(G * dW)``: with respect to ``A_t`` (per step), ``y (n, P)`` and ``W``."""
        yb, dyb, A, Wc, dWcS = cache
        H = Wc * G[:, None]                                                 # (n, C, P, Q)
        gA = np.swapaxes(yb, 1, 2)[:, None] @ H                             # (n, C, Kb, Q)
        gyb = (H @ np.swapaxes(A, 2, 3)).sum(axis=1)                        # (n, P, Kb)
        return gA, (gyb * dyb).sum(axis=-1), dWcS * G

    def params_grad(self, run: dict[str, Any], g_steps: list[np.ndarray]) -> np.ndarray:
        """Per-trial gradient ``(n, K)`` from the per-step gradients of ``A``."""
        n, T, Q = run["shape"]
        gA = np.stack(g_steps[::-1], axis=1).transpose(0, 1, 4, 2, 3)      # (n, T, Q, C, Kb)
        gTh = np.swapaxes(run["RX"], 1, 2) @ gA.reshape(n, T * Q, -1)       # (n, D * Ka, C * Kb)
        gTh = gTh.reshape(n, len(self.d_vals), len(self.pre), len(self.c_vals), len(self.post))
        c, d, b, a = self._idx
        return gTh[:, d, a, c, b]


class MLPRule:
    """``dW_ij = scale (c^T tanh(A z_ij + b) + c0)`` with ``z_ij`` the chosen variables,
    each divided by its typical magnitude (``scales``).

    Parameters
    ----------
    inputs : list of str
        Variables fed to the network (subset of :data:`VARIABLES`).
    hidden : int
        Hidden units.
    scales : dict
        Typical magnitude of each input variable (its root mean square).
    out_scale : float
        Scale of the change (weight units per step).
    """

    def __init__(self, inputs: list[str], hidden: int, scales: dict[str, float], out_scale: float) -> None:
        self.inputs = list(inputs)
        self.hidden = int(hidden)
        self.scales = np.array([scales[s] for s in self.inputs])
        self.out_scale = float(out_scale)
        self.n_in = len(self.inputs)

    @property
    def n_params(self) -> int:
        return self.hidden * (self.n_in + 2) + 1

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Random hidden layer, zero read-out (the rule starts static)."""
        A = rng.normal(size=(self.hidden, self.n_in)) / np.sqrt(self.n_in)
        b = rng.normal(size=self.hidden) * 0.5
        return np.concatenate([A.ravel(), b, np.zeros(self.hidden + 1)])

    def _unpack(self, p: np.ndarray) -> tuple[np.ndarray, ...]:
        H, I = self.hidden, self.n_in
        return p[: H * I].reshape(H, I), p[H * I: H * I + H], p[H * I + H: H * I + 2 * H], p[-1]

    per_trial = False

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {"x": ctx.x, "r": ctx.r, "v": ctx.v}

    def setup(self, params: np.ndarray, prep: dict[str, Any]) -> dict[str, Any]:
        return {"params": self._unpack(params), **prep}

    def step(self, pre: dict[str, Any], t: int, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, tuple]:
        A, b, c, c0 = pre["params"]
        n, P, Q = W.shape
        cols = {"x": lambda: np.broadcast_to(pre["x"][:, t][:, None, :], (n, P, Q)),
                "y": lambda: np.broadcast_to(y[:, :, None], (n, P, Q)),
                "W": lambda: W,
                "r": lambda: np.broadcast_to(pre["r"][:, t][:, None, None], (n, P, Q)),
                "v": lambda: np.broadcast_to(pre["v"][:, t][:, :, None], (n, P, Q))}
        Z = np.stack([cols[s]() for s in self.inputs], axis=-1) / self.scales              # (n, P, Q, I)
        h = np.tanh(Z @ A.T + b)
        return self.out_scale * (h @ c + c0), (Z, h, A, c)

    def step_vjp(self, pre: dict[str, Any], cache: tuple, G: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients of ``sum(G * dW)`` with respect to the parameters, ``y (n, P)`` and ``W``."""
        Z, h, A, c = cache
        Gs = G * self.out_scale
        gc = np.einsum("npq,npqh->h", Gs, h)
        gpre = Gs[..., None] * c * (1.0 - h * h)
        gA = np.einsum("npqh,npqi->hi", gpre, Z)
        gZ = (gpre @ A) / self.scales
        gy = gZ[..., self.inputs.index("y")].sum(axis=2) if "y" in self.inputs else np.zeros(G.shape[:2])
        gW = gZ[..., self.inputs.index("W")] if "W" in self.inputs else np.zeros_like(G)
        return np.concatenate([gA.ravel(), gpre.sum(axis=(0, 1, 2)), gc, [Gs.sum()]]), gy, gW

    def params_grad(self, run: dict[str, Any], g_steps: list[np.ndarray]) -> np.ndarray:
        return np.sum(g_steps, axis=0)
