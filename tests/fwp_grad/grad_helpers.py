"""Shared inputs and finite-difference helpers for the gradient tests (float64 unless asked).

Inputs are chosen so that central differences are well conditioned: pre-map values have
``|x|`` in ``[0.3, 1]`` (no ReLU/DPFP kinks within the step), the first component of every
key/query is positive (sum/L2 normalisers stay away from 0), and delta-type rules get
learning rates with ``beta ||phi(k)||^2 <= 1.9`` (contracting updates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet.fwp import (DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, Oja, State,
                           ThreeFactor, apply)

MAPS = {
    "identity": FeatureMap("identity"),
    "elu+1": FeatureMap("elu+1"),
    "relu": FeatureMap("relu"),
    "softmax": FeatureMap("softmax"),
    "dpfp-2": FeatureMap("dpfp", nu=2),
    "identity/l2": FeatureMap("identity", normalize="l2"),
    "elu+1/sum": FeatureMap("elu+1", normalize="sum"),
    "dpfp-2/l2": FeatureMap("dpfp", nu=2, normalize="l2"),
}
POSITIVE_MAPS = [name for name, fm in MAPS.items() if fm.positive]

#: rule cases: name -> (constructor of a rule for a feature map, per-key alpha?)
RULE_CASES = {
    "hebbian": (lambda fm: Hebbian(feature_map=fm), False),
    "hebbian-normalized": (lambda fm: Hebbian(feature_map=fm, normalize=True), False),
    "decayed": (lambda fm: DecayedHebbian(feature_map=fm), False),
    "decayed-per-key": (lambda fm: DecayedHebbian(feature_map=fm), True),
    "delta": (lambda fm: Delta(feature_map=fm), False),
    "gated_delta": (lambda fm: GatedDelta(feature_map=fm), False),
    "oja": (lambda fm: Oja(feature_map=fm), False),
    "three_factor": (lambda fm: ThreeFactor(feature_map=fm, gamma=0.6), False),
}


def make_case(rule: Any, per_key: bool, *, B: int = 1, H: int = 2, T: int = 7, d_k: int = 3,
              d_v: int = 2, seed: int = 0, dtype: Any = np.float64,
              beta_high: float = 1.8) -> tuple[dict[str, Any], np.ndarray, State]:
    """Inputs of ``apply`` (every optional input given), ``dy`` and a State cotangent ``dW``."""
    rng = np.random.default_rng(seed)
    phi = rule.phi
    d_phi = phi.out_dim(d_k)

    def pre(*shape):
        x = rng.uniform(0.3, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
        x[..., 0] = np.abs(x[..., 0])
        return x

    scale = 0.5 if isinstance(rule, (Delta, GatedDelta, Oja)) else 1.0
    q, k = pre(B, H, T, d_k) * scale, pre(B, H, T, d_k) * scale
    kk = (phi(k) ** 2).sum(-1)
    if isinstance(rule, (Delta, GatedDelta)):
        high = np.minimum(beta_high, 1.9 / kk)
        beta = rng.uniform(0.2, 1.0, (B, H, T)) * high
    elif isinstance(rule, Oja):
        beta = rng.uniform(0.1, 0.5, (B, H, T))
    else:
        beta = rng.uniform(0.2, 1.2, (B, H, T))
    inputs: dict[str, Any] = {"q": q, "k": k, "v": rng.normal(size=(B, H, T, d_v)), "beta": beta}
    if rule.uses_alpha:
        inputs["alpha"] = rng.uniform(0.4, 0.98, (B, H, T, d_phi) if per_key else (B, H, T))
    if rule.uses_modulator:
        inputs["modulator"] = rng.normal(size=(B, H, T))
    W0 = rng.normal(size=(B, H, d_v, d_phi)) * 0.3
    dW = rng.normal(size=(B, H, d_v, d_phi))
    if isinstance(rule, Hebbian) and rule.normalize:
        inputs["initial_state"] = State(W0, rng.uniform(0.5, 1.0, (B, H, d_phi)))
        dW = State(dW, rng.normal(size=(B, H, d_phi)))
    elif isinstance(rule, ThreeFactor):
        inputs["initial_state"] = State(W0, None, rng.normal(size=W0.shape) * 0.3)
        dW = State(dW, None, rng.normal(size=W0.shape))
    else:
        inputs["initial_state"] = W0
        dW = State(dW)
    dy = rng.normal(size=(B, H, T, d_v))
    cast = (lambda a: a.astype(dtype)) if dtype != np.float64 else (lambda a: a)
    inputs = {n: State(*(None if s is None else cast(s) for s in a)) if isinstance(a, State) else cast(a)
              for n, a in inputs.items()}
    dW = State(*(None if s is None else cast(s) for s in dW))
    return inputs, cast(dy), dW


def loss(rule: Any, inputs: dict[str, Any], dy: np.ndarray, dW: State, form: str,
         chunk_size: int) -> float:
    """``<dy, Y> + <dW, final state>`` (all components) for the given inputs."""
    args = {n: a for n, a in inputs.items() if n not in ("q", "k", "v")}
    y, st = apply(rule, inputs["q"], inputs["k"], inputs["v"], form=form, chunk_size=chunk_size,
                  return_state=True, **args)
    total = float((y * dy).sum())
    for s, d in zip(st, dW):
        if d is not None:
            total += float((s * d).sum())
    return total


def leaves(inputs: dict[str, Any]) -> list[tuple[str, str | None, np.ndarray]]:
    """``(input name, State field or None, array)`` for every differentiable array."""
    out = []
    for name, val in inputs.items():
        if isinstance(val, State):
            out += [(name, f, getattr(val, f)) for f in val._fields if getattr(val, f) is not None]
        else:
            out.append((name, None, val))
    return out


def grad_of(g: dict[str, Any], name: str, field: str | None) -> np.ndarray:
    """The gradient array for a leaf of :func:`leaves`."""
    return g[name] if field is None else getattr(g[name], field)
