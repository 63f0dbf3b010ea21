"""Shared inputs and finite-difference helpers for the gradient tests (float64 unless asked).

Inputs are chosen so that central differences are well conditioned: pre-map values have
``|x|`` in ``[0.3, 1]`` (no ReLU/DPFP kinks within the step), the first component of every
key/query is positive (sum/L2 normalisers stay away from 0), and delta-type rules get
learning rates with ``beta ||phi(k)||^2 <= 1.9`` (contracting updates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, Oja, State, ThreeFactor, apply

MAPS = {
    "identity": FeatureMap("identity"),
    "elu+1": FeatureMap("elu+1"),
    "relu": FeatureMap("relu"),
    "softmax": FeatureMap("softmax"),
    "dpfp-1": FeatureMap("dpfp", nu=1),
    "dpfp-2": FeatureMap("dpfp", nu=2),
    "dpfp-3": FeatureMap("dpfp", nu=3),
    "identity/l2": FeatureMap("identity", normalize="l2"),
    "relu/l2": FeatureMap("relu", normalize="l2"),
    "elu+1/sum": FeatureMap("elu+1", normalize="sum"),
    "softmax/sum": FeatureMap("softmax", normalize="sum"),
    "dpfp-1/sum": FeatureMap("dpfp", nu=1, normalize="sum"),
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
        with np.errstate(divide="ignore"):      # phi(k) = 0 happens (DPFP-1, mixed signs)
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


def _tile(a: np.ndarray, m: int) -> np.ndarray:
    return np.repeat(a, m, axis=0)


def entrywise_fd(rule: Any, inputs: dict[str, Any], dy: np.ndarray, dW: State, form: str,
                 chunk_size: int, h: float = 2.5e-4, only: tuple[str, ...] | None = None,
                 one_sided: tuple[str, ...] = ()) -> dict[tuple[str, str | None], np.ndarray]:
    """Finite differences of the loss in every entry of every leaf (batch-size-1 inputs).

    Central differences ``D(h) = (L(x + h) - L(x - h)) / 2h``, Richardson-extrapolated:
    ``(4 D(h/2) - D(h)) / 3`` (error ``O(h^4)``; with ``h = 2.5e-4`` truncation and
    rounding are both near ``1e-12`` of the loss). Leaves in ``one_sided`` (a ``beta`` at
    the upper end of its range) use backward differences ``(L(x) - L(x - h)) / h``,
    extrapolated to second and third order from ``h``, ``h/2``, ``h/4``.

    All perturbed copies are evaluated in one :func:`apply` call per step: copy ``m`` of
    the batch differs from the base inputs in one entry only, and the rules act on every
    batch row independently, so row ``m``'s loss is that copy's loss.

    Returns
    -------
    dict
        ``(input name, State field or None) -> array of the leaf's shape``.
    """
    entries = [(name, field, idx) for name, field, arr in leaves(inputs)
               if only is None or name in only for idx in np.ndindex(arr.shape[1:])]
    M = len(entries)
    sided = np.array([name in one_sided for name, _, _ in entries])

    def evaluate(step: float) -> np.ndarray:
        """Row losses with entry ``m`` of copy ``m`` moved by ``step`` (``-|step|`` if one-sided)."""
        tiled = {}
        for name, val in inputs.items():
            if isinstance(val, State):
                tiled[name] = State(*(None if a is None else _tile(a, M) for a in val))
            else:
                tiled[name] = _tile(val, M)
        for m, (name, field, idx) in enumerate(entries):
            arr = tiled[name] if field is None else getattr(tiled[name], field)
            arr[(m,) + idx] += -abs(step) if sided[m] else step
        args = {n: a for n, a in tiled.items() if n not in ("q", "k", "v")}
        y, st = apply(rule, tiled["q"], tiled["k"], tiled["v"], form=form, chunk_size=chunk_size,
                      return_state=True, **args)
        total = (y * _tile(dy, M)).reshape(M, -1).sum(axis=1)
        for a, d in zip(st, dW):
            if d is not None:
                total = total + (a * _tile(d, M)).reshape(M, -1).sum(axis=1)
        return total

    def central(e: float) -> np.ndarray:
        return (evaluate(e) - evaluate(-e)) / (2 * e)

    numeric = (4 * central(h / 2) - central(h)) / 3
    if sided.any():
        base = loss(rule, inputs, dy, dW, form, chunk_size)
        b1, b2, b4 = ((base - evaluate(e)) / e for e in (h, h / 2, h / 4))
        r2, r4 = 2 * b2 - b1, 2 * b4 - b2                 # second order
        numeric = np.where(sided, (4 * r4 - r2) / 3, numeric)   # third order
    result: dict[tuple[str, str | None], np.ndarray] = {}
    for m, (name, field, idx) in enumerate(entries):
        arr = inputs[name] if field is None else getattr(inputs[name], field)
        grad = result.setdefault((name, field), np.zeros(arr.shape))
        grad[(0,) + idx] = numeric[m]
    return result


def fd_errors(analytic: dict[str, Any], numeric: dict[tuple[str, str | None], np.ndarray],
              floor: float = 1e-3) -> dict[str, tuple[float, float]]:
    """Per leaf: ``(normwise, componentwise)`` relative errors of ``analytic`` vs ``numeric``.

    * normwise: ``||g - n||_2 / ||n||_2`` over the leaf (the whole gradient of one input);
    * componentwise: ``max_i |g_i - n_i| / (|n_i| + floor * ||n||_inf)``: every entry
      relative to its own size, so small entries count as much as large ones, down to
      ``floor`` times the leaf's largest entry (below that the finite differences
      resolve an entry no better than that level).

    A leaf whose numerical gradient is exactly zero (an input the rule ignores) reports
    the largest absolute analytic entry for both.
    """
    out = {}
    for (name, field), num in numeric.items():
        g = analytic[name] if field is None else getattr(analytic[name], field)
        label = name if field is None else f"{name}.{field}"
        scale = np.abs(num).max()
        if scale == 0:
            out[label] = (float(np.abs(g).max()),) * 2
            continue
        diff = np.abs(g - num)
        out[label] = (float(np.linalg.norm(g - num) / np.linalg.norm(num)),
                      float((diff / (np.abs(num) + floor * scale)).max()))
    return out
