"""Memory experiments with rate fast-weight rules: capacity and forgetting curves.

Protocol (shared with :func:`plastinet.experiments.rate_memory.kv_memory`): write ``n``
random key/value pairs (unit vectors), then query every stored key with plasticity off.
The recall error of item ``i`` is ``||y_i - v_i||^2 / ||v_i||^2``. Analytic references
(identity feature map, independent random unit keys in ``R^d``, unit values):

* additive rule, ``beta = 1``: crosstalk ``E err = (n - 1) / d`` (each other item leaks
  with squared overlap ``E <k_i, k_j>^2 = 1 / d``);
* any single-matrix memory: ``err >= (n - d_phi) / n`` once ``n > d_phi`` (rank bound);
* decayed rule ``W_t = alpha W_{t-1} + beta v_t k_t^T``: the item written ``m`` steps before
  the last write is recalled with error
  ``(1 - beta alpha^m)^2 + (beta^2 / d) sum_{j != i} alpha^(2 m_j)``
  (signal shrunk by ``alpha^m``, crosstalk of the other items weighted by their decay).

The spectra of the delta transitions are analysed by
:func:`plastinet.analysis.transition_spectrum`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from plastinet.errors import ValidationError
from plastinet.experiments.rate_memory import KVMemory, kv_memory
from plastinet.fwp import apply
from plastinet.fwp.rules import DecayedHebbian, GatedDelta, Hebbian, Rule, ThreeFactor
from plastinet.seeds import check_seed

__all__ = ["capacity_curves", "forgetting_curve"]


def _rules(rules: Rule | Sequence[Rule] | Mapping[str, Rule]) -> dict[str, Rule]:
    if isinstance(rules, Rule):
        rules = [rules]
    if isinstance(rules, Mapping):
        out = dict(rules)
    else:
        out = {}
        for r in rules:
            label = type(r).__name__ + ("" if r.phi.kind == "identity" else f"[{r.phi.kind}]")
            out[label] = r
    if not out or not all(isinstance(r, Rule) for r in out.values()):
        raise ValidationError("capacity_curves", "rules", rules,
                              "expected a rate rule, a list of rules or a dict label -> rule")
    return out


def capacity_curves(rules: Rule | Sequence[Rule] | Mapping[str, Rule], n_items: Sequence[int], *,
                    d_key: int = 32, d_value: int = 16, trials: int = 64,
                    key_distribution: str | Sequence[str] = "gaussian",
                    beta: float | Sequence[float] = 1.0, alpha: float = 1.0, seed: int = 0) -> xr.Dataset:
    """Recall error against the number of stored items, by rule, key distribution and beta.

    Parameters
    ----------
    rules : Rule, list of Rule or dict of str to Rule
        Rules to compare (feature maps are part of the rules); a dict gives the labels.
    n_items : sequence of int
        Numbers of stored items.
    d_key, d_value : int
        Key and value sizes (before the feature map).
    trials : int
        Independent trials per point.
    key_distribution : str or sequence of str
        ``"gaussian"`` (random unit), ``"orthonormal"`` or ``"binary"`` keys.
    beta : float or sequence of float
        Learning rates of the write phase (dimensionless).
    alpha : float
        Decay per write step of decayed/gated rules.
    seed : int
        Seed (the same keys and values for every rule).

    Returns
    -------
    xarray.Dataset
        ``recall_error (rule, key_distribution, beta, n_items, trial)``,
        ``crosstalk_reference (n_items)`` = ``(n - 1) / d_key`` (additive rule, identity map,
        gaussian keys, beta = 1), ``rank_bound (rule, n_items)`` = ``(n - d_phi) / n`` and
        ``optimal_error (rule, key_distribution, n_items, trial)``: the simulated recall
        error of the best single-matrix memory ``W = V^T pinv(Phi)^T`` (least squares) with
        the rule's feature map on independent draws of keys and values, whose expectation
        is ``(n - rank Phi) / n``, i.e. the rank bound once ``n > d_phi``.

    Raises
    ------
    ValidationError
        For bad rules or protocol parameters (see :class:`plastinet.experiments.rate_memory.KVMemory`).
    """
    table = _rules(rules)
    dists = [key_distribution] if isinstance(key_distribution, str) else list(key_distribution)
    betas = list(np.atleast_1d(np.asarray(beta, dtype=float)))
    errors, bounds, optimal = [], [], []
    cross = None
    for label, rule in table.items():
        form = "chunkwise" if "chunkwise" in rule.forms else "recurrent"
        per_rule = []
        for dist in dists:
            per_dist = []
            for b in betas:
                ds = kv_memory(rule, KVMemory(d_key=d_key, d_value=d_value, n_items=list(n_items), trials=trials,
                                              key_distribution=dist, beta=float(b), alpha=alpha, form=form,
                                              seed=seed))
                per_dist.append(ds["recall_error"].values)
                cross = ds["crosstalk_reference"]
                bound = ds["rank_bound"].values
            per_rule.append(per_dist)
        errors.append(per_rule)
        bounds.append(bound)
        optimal.append([_optimal_memory(rule, list(cross["n_items"].values), d_key, d_value, trials, dist,
                                        np.random.default_rng([seed, 1, j])) for j, dist in enumerate(dists)])
    n = cross["n_items"]
    return xr.Dataset(
        {"recall_error": (("rule", "key_distribution", "beta", "n_items", "trial"), np.asarray(errors),
                          {"units": "1", "long_name": "mean squared recall error relative to ||v||^2"}),
         "crosstalk_reference": cross.drop_vars("n_items").assign_attrs(units="1"),
         "rank_bound": (("rule", "n_items"), np.asarray(bounds),
                        {"units": "1", "long_name": "rank bound (n - d_phi) / n"}),
         "optimal_error": (("rule", "key_distribution", "n_items", "trial"), np.asarray(optimal),
                           {"units": "1", "long_name": "recall error of the least-squares single-matrix memory "
                                                       "(same feature map, independent draws)"})},
        coords={"rule": ("rule", list(table), {"units": "1", "long_name": "rule"}),
                "key_distribution": ("key_distribution", dists, {"units": "1", "long_name": "key distribution"}),
                "beta": ("beta", betas, {"units": "1", "long_name": "learning rate"}),
                "n_items": n, "trial": ("trial", np.arange(trials), {"units": "1", "long_name": "trial"})},
        attrs={"d_key": d_key, "d_value": d_value, "alpha": alpha, "seed": seed})


def _sample_keys(rng: np.random.Generator, trials: int, n: int, d: int, kind: str) -> np.ndarray:
    """Keys ``(trials, n, d)`` of the memory protocol: random unit, orthonormal or binary ``+-1/sqrt(d)``."""
    if kind == "orthonormal":
        q, _ = np.linalg.qr(rng.normal(size=(trials, d, d)))
        return np.swapaxes(q[:, :, :n], 1, 2)
    if kind == "binary":
        return rng.choice([-1.0, 1.0], size=(trials, n, d)) / np.sqrt(d)
    return _unit(rng, (trials, n, d))


def _optimal_memory(rule: Rule, n_items: Sequence[int], d_key: int, d_value: int, trials: int, kind: str,
                    rng: np.random.Generator) -> np.ndarray:
    """Recall error ``(n_items, trial)`` of the least-squares memory on ``phi(keys)``.

    With ``Phi (n, d_phi)`` the feature rows and ``V (n, d_v)`` unit values, the best
    read-out is ``Phi pinv(Phi) V`` (the projection onto the column space of ``Phi``); for
    values independent of the keys ``E ||(I - P) V||^2 = n - rank(Phi)``.
    """
    out = np.empty((len(n_items), trials))
    for i, n in enumerate(n_items):
        phi = rule.phi(_sample_keys(rng, trials, int(n), d_key, kind))
        vals = _unit(rng, (trials, int(n), d_value))
        # projection onto the column space of Phi, from the eigenbasis of the smaller Gram
        # matrix (rank-revealing: tiny eigenvalues are dropped)
        if phi.shape[1] <= phi.shape[2]:
            lam, U = np.linalg.eigh(np.einsum("tnd,tmd->tnm", phi, phi))     # Phi Phi^T: U spans col(Phi)
            proj = np.einsum("tnk,tnv->tkv", U, vals)
            scale = np.ones_like(lam)
        else:
            lam, U = np.linalg.eigh(np.einsum("tnd,tne->tde", phi, phi))     # Phi^T Phi
            proj = np.einsum("tnd,tdk,tnv->tkv", phi, U, vals, optimize=True)
            scale = lam
        keep = lam > 1e-10 * lam[:, -1:]
        captured = np.where(keep, (proj ** 2).sum(-1) / np.where(keep, scale, 1.0), 0.0).sum(-1)
        out[i] = np.maximum((vals ** 2).sum((1, 2)) - captured, 0.0) / int(n)
    return out


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def forgetting_curve(rule: Rule, n_items: int, *, d_key: int = 32, d_value: int = 16, trials: int = 32,
                     beta: float = 1.0, alpha: float = 1.0, seed: int = 0) -> xr.Dataset:
    """Recall error of each stored item against its age (writes since it was stored).

    Parameters
    ----------
    rule : Rule
        A rate rule. ``alpha`` is its decay per write (DecayedHebbian, GatedDelta).
    n_items : int
        Items written (random unit keys and values).
    d_key, d_value : int
        Key and value sizes.
    trials : int
        Independent trials.
    beta, alpha : float
        Learning rate and decay per write step.
    seed : int
        Seed.

    Returns
    -------
    xarray.Dataset
        ``recall_error (age, trial)`` where ``age = n - 1 - i`` for item ``i``, and, for the
        additive and decayed rules with the identity map, ``reference (age)``: the analytic
        expectation (module docstring).

    Raises
    ------
    ValidationError
        For ``n_items < 1`` or a bad rule.
    """
    if not isinstance(rule, Rule):
        raise ValidationError("forgetting_curve", "rule", rule, "expected a rate rule object")
    for name, value in (("n_items", n_items), ("d_key", d_key), ("d_value", d_value), ("trials", trials)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValidationError("forgetting_curve", name, value, "expected a positive integer")
    for name, value in (("beta", beta), ("alpha", alpha)):
        if not np.isfinite(value):
            raise ValidationError("forgetting_curve", name, value, "expected a finite number")
    rng = np.random.default_rng(check_seed("forgetting_curve", seed, allow_none=False))
    n = int(n_items)
    keys = _unit(rng, (trials, n, d_key))
    vals = _unit(rng, (trials, n, d_value))
    write = np.concatenate([np.ones(n), np.zeros(n)])
    gates: dict[str, np.ndarray] = {"beta": np.broadcast_to(beta * write, (trials, 1, 2 * n)).copy()}
    if isinstance(rule, (DecayedHebbian, GatedDelta)):
        gates["alpha"] = np.broadcast_to(np.where(write > 0, alpha, 1.0), (trials, 1, 2 * n)).copy()
    if isinstance(rule, ThreeFactor):
        gates["modulator"] = np.broadcast_to(write, (trials, 1, 2 * n)).copy()
    k = np.concatenate([keys, keys], axis=1)[:, None]
    v = np.concatenate([vals, np.zeros_like(vals)], axis=1)[:, None]
    y, _ = apply(rule, k, k, v, **gates)
    err = ((y[:, 0, n:] - vals) ** 2).sum(-1)                      # (trial, item)
    age = np.arange(n)                                             # item n - 1 - age
    data = {"recall_error": (("age", "trial"), err.T[::-1],
                             {"units": "1", "long_name": "recall error ||y - v||^2 / ||v||^2"})}
    decays = isinstance(rule, DecayedHebbian) or (isinstance(rule, Hebbian) and not rule.normalize)
    if decays and rule.phi.kind == "identity" and rule.phi.normalize is None:
        a = alpha if isinstance(rule, DecayedHebbian) else 1.0
        total = (a ** (2 * age)).sum()
        ref = (1 - beta * a ** age) ** 2 + beta ** 2 / d_key * (total - a ** (2 * age))
        data["reference"] = (("age",), ref, {"units": "1", "long_name": "analytic expectation"})
    return xr.Dataset(data, coords={"age": ("age", age, {"units": "1", "long_name": "writes since storage"}),
                                    "trial": ("trial", np.arange(trials), {"units": "1", "long_name": "trial"})},
                      attrs={"rule": type(rule).__name__, "beta": beta, "alpha": alpha, "d_key": d_key})
