"""The gradient of infer_rule's fitting loss (exact adjoint through time) against central
finite differences, float64: normwise relative error <= 1e-6."""

from __future__ import annotations

import numpy as np
import pytest

from plastinet.analysis.rule_models import MLPRule, TaylorRule, taylor_terms
from plastinet.analysis.rule_recurrence import Observations, run

N, T, P, Q = 3, 12, 2, 3


def _obs(mode: str, reward: bool, teacher: bool, seed: int = 0) -> Observations:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 1.0, (N, T, Q)) * rng.choice([-1.0, 1.0], (N, T, Q))
    y = rng.normal(size=(N, T, P)) if mode == "activity" else None
    ch = np.eye(P)[rng.integers(0, P, (N, T))] if mode == "choice" else None
    r = rng.normal(size=(N, T)) if reward else None
    v = rng.normal(size=(N, T, P)) if teacher else None
    return Observations(x, y, ch, r, v)


def _fd(f, p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(p)
    for i in range(p.size):
        e = np.zeros_like(p)
        e.flat[i] = eps
        g.flat[i] = (f(p + e) - f(p - e)) / (2 * eps)
    return g


def _check(analytic: np.ndarray, numeric: np.ndarray) -> None:
    rel = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert np.linalg.norm(numeric) > 0
    assert rel <= 1e-6, rel
    comp = np.abs(analytic - numeric) / (np.abs(numeric) + 1e-3 * np.abs(numeric).max())
    assert comp.max() <= 1e-5, comp.max()


CASES = [("activity", "linear", False, False), ("activity", "tanh", False, False),
         ("activity", "linear", True, True), ("activity", "tanh", True, False), ("choice", "linear", True, False)]


@pytest.mark.parametrize("mode, act, reward, teacher", CASES)
def test_taylor_loss_gradient_matches_central_differences(mode, act, reward, teacher):
    obs = _obs(mode, reward, teacher)
    powers = {"x": 2, "y": 1 if mode == "choice" else 2, "W": 2, "r": 2 if reward else 0, "v": 1 if teacher else 0}
    rule = TaylorRule(taylor_terms(powers, 3))
    prep = rule.prepare(obs.context())
    rng = np.random.default_rng(1)
    theta = rng.normal(size=rule.n_params) * 0.05
    W0 = rng.normal(size=(N, P, Q)) * 0.5
    out = run(rule, theta, W0, obs, act, prep, var_y=0.7)
    _check(out["g_params"], _fd(lambda th: run(rule, th, W0, obs, act, prep, grad=False, var_y=0.7)["loss"], theta))
    _check(out["g_W0"], _fd(lambda w: run(rule, theta, w, obs, act, prep, grad=False, var_y=0.7)["loss"], W0))


def test_grouped_coefficients_give_per_group_gradients():
    """Bootstrap resamples fitted side by side: a (groups, K) coefficient array, the loss the sum of groups'."""
    obs = _obs("activity", True, False)
    rule = TaylorRule(taylor_terms({"x": 2, "y": 2, "W": 1, "r": 1}, 3))
    prep = rule.prepare(obs.context())
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(3, rule.n_params)) * 0.05          # N = 3 trials, one per group
    W0 = rng.normal(size=(N, P, Q)) * 0.5
    out = run(rule, theta, W0, obs, "linear", prep, groups=3)
    _check(out["g_params"], _fd(lambda th: run(rule, th, W0, obs, "linear", prep, grad=False, groups=3)["loss"], theta))
    single = sum(run(rule, theta[i], W0[i: i + 1], obs.take(np.array([i])), "linear",
                     rule.prepare(obs.take(np.array([i])).context()))["loss"] for i in range(3))
    assert out["loss"] == pytest.approx(single, rel=1e-12)


@pytest.mark.parametrize("mode", ["activity", "choice"])
def test_mlp_loss_gradient_matches_central_differences(mode):
    obs = _obs(mode, True, mode == "activity")
    inputs = ["x", "y", "W", "r"] + (["v"] if mode == "activity" else [])
    rule = MLPRule(inputs, 4, {s: 0.8 for s in inputs}, 0.05)
    prep = rule.prepare(obs.context())
    rng = np.random.default_rng(3)
    params = rule.init(rng) + rng.normal(size=rule.n_params) * 0.3
    W0 = rng.normal(size=(N, P, Q)) * 0.5
    act = "tanh" if mode == "activity" else "linear"
    out = run(rule, params, W0, obs, act, prep)
    _check(out["g_params"], _fd(lambda p: run(rule, p, W0, obs, act, prep, grad=False)["loss"], params))
    _check(out["g_W0"], _fd(lambda w: run(rule, params, w, obs, act, prep, grad=False)["loss"], W0))
