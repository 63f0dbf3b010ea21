"""Planted-rule data for :func:`plastinet.analysis.infer_rule`: rate networks and a bandit.

* :func:`planted_activity`: trials of a linear rate network ``y_t = W_t x_t`` whose
  weights follow a planted Taylor rule (:data:`PLANTED`); only ``pre``, ``post`` (with
  observation noise) and, for modulated rules, ``reward`` are returned.
* :func:`planted_bandit`: a two-armed bandit solved by an agent whose action values are
  plastic weights from a cue (odour) input, choosing by softmax and learning with a
  reward-modulated rule with forgetting (the structure of the fly experiment analysed by
  Mehta et al., NeurIPS 2024); only cues, choices and rewards are returned.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from plastinet.analysis.rule_models import VARIABLES, parse_term
from plastinet.errors import UnsupportedError, ValidationError
from plastinet.results import variable

__all__ = ["PLANTED", "planted_activity", "planted_bandit", "apply_terms", "recovery_grid", "fwp_readouts",
           "spiking_fwp_readouts"]

#: Planted rules (Taylor coefficients per step; x pre, y post, W weight, r reward).
PLANTED: dict[str, dict[str, float]] = {
    "oja": {"x*y": 0.02, "y^2*W": -0.02},
    "hebbian_decay": {"x*y": 0.01, "W": -0.03},
    "bcm": {"x*y^2": 0.01, "x*y": -0.01},
    "modulated_hebbian": {"x*y*r": 0.02},
}


def apply_terms(coefficients: dict[str, float], x: np.ndarray, y: np.ndarray, W: np.ndarray,
                r: float = 1.0, v: np.ndarray | None = None) -> np.ndarray:
    """``sum_k theta_k x_j^a y_i^b W_ij^c r^d v_i^e`` for one step (``W (post, pre)``)."""
    vals = {"x": x[None, :], "y": y[:, None], "W": W, "r": r, "v": 0.0 if v is None else v[:, None]}
    dW = np.zeros_like(W)
    for term, theta in coefficients.items():
        e = parse_term(term)
        m = np.ones_like(W)
        for s, p in zip(VARIABLES, e):
            if p:
                m = m * vals[s] ** p
        dW += theta * m
    return dW


def planted_activity(rule: str | dict[str, float] = "oja", *, trials: int = 8, steps: int = 100, n_pre: int = 4,
                     n_post: int = 2, noise: float = 0.05, seed: int = 0) -> xr.Dataset:
    """Activity of a rate network with a planted rule, without its weights.

    Inputs ``x_t`` are Gaussian with a random covariance (eigenvalues 0.25 to 1); initial
    weights are random, ``N(0, w_scale^2 / n_pre)`` (``w_scale`` 2 for ``"bcm"``, so that
    ``|y|`` crosses the threshold 1, else 1); the reward of
    ``"modulated_hebbian"`` is ``N(0, 1)`` per step. The recorded ``post`` is the clean
    ``y_t = W_t x_t`` plus Gaussian noise of ``noise`` times its standard deviation.

    Parameters
    ----------
    rule : str or dict
        A key of :data:`PLANTED` or Taylor coefficients by term name.
    trials, steps, n_pre, n_post : int
        Sizes.
    noise : float
        Relative observation noise (standard deviation over that of the clean activity).
    seed : int
        Seed of inputs, initial weights and noise.

    Returns
    -------
    xarray.Dataset
        ``pre (trial, time, pre)``, ``post (trial, time, post)``, optionally
        ``reward (trial, time)``; the planted coefficients as JSON in attr ``planted``.
    """
    if isinstance(rule, str):
        if rule not in PLANTED:
            raise UnsupportedError("planted_activity", "rule", rule, "known: " + ", ".join(PLANTED))
        name, coefs = rule, PLANTED[rule]
    else:
        name, coefs = "custom", dict(rule)
    if noise < 0:
        raise ValidationError("planted_activity", "noise", noise, "expected a number >= 0")
    rng = np.random.default_rng(seed)
    Qm = np.linalg.qr(rng.normal(size=(n_pre, n_pre)))[0]
    L = Qm * np.sqrt(np.linspace(1.0, 0.25, n_pre))
    x = rng.normal(size=(trials, steps, n_pre)) @ L.T
    modulated = any(parse_term(t)[3] for t in coefs)
    w_scale = 2.0 if name == "bcm" else 1.0
    r = rng.normal(size=(trials, steps)) if modulated else np.ones((trials, steps))
    y = np.empty((trials, steps, n_post))
    for n in range(trials):
        W = rng.normal(size=(n_post, n_pre)) * (w_scale / np.sqrt(n_pre))
        for t in range(steps):
            y[n, t] = W @ x[n, t]
            W = W + apply_terms(coefs, x[n, t], y[n, t], W, r[n, t])
    post = y + noise * y.std() * rng.normal(size=y.shape)
    data = {"pre": variable(("trial", "time", "pre"), x, "1", "presynaptic activity"),
            "post": variable(("trial", "time", "post"), post, "1", "recorded postsynaptic activity (with noise)")}
    if modulated:
        data["reward"] = variable(("trial", "time"), r, "1", "reward (third factor)")
    return xr.Dataset(data, coords={"time": variable("time", np.arange(steps), "1", "step")},
                      attrs={"planted": json.dumps(coefs), "planted_rule": name, "noise": noise})


def planted_bandit(*, sessions: int = 16, steps: int = 200, n_cues: int = 3, eta: float = 0.5,
                   forget: float = 0.1, p_reward: tuple[float, float] = (0.8, 0.2), block: int = 50,
                   seed: int = 0) -> xr.Dataset:
    """Choices of an agent learning a reversing two-armed bandit with a planted rule.

    Each step the agent receives a cue ``x_t`` (``n_cues`` odour concentrations, uniform in
    [0.5, 1.5]); the action values are ``z = W x_t`` (``W (2, n_cues)``, zero at the start of
    each session), the choice is drawn from ``softmax(z)``, the reward is 1 with probability
    ``p_reward[choice]`` (the arms swap every ``block`` steps), and the weights change by
    ``dW_ij = eta r c_i x_j - forget W_ij`` (``c`` the one-hot choice): reward-modulated
    Hebbian learning with active forgetting.

    Returns
    -------
    xarray.Dataset
        ``pre (trial, time, pre)`` (cues), ``choice (trial, time)``, ``reward (trial, time)``;
        planted coefficients in attr ``planted`` (terms ``x*y*r`` and ``W``).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, size=(sessions, steps, n_cues))
    choice = np.empty((sessions, steps), dtype=np.int64)
    reward = np.empty((sessions, steps))
    coefs = {"x*y*r": eta, "W": -forget}
    for n in range(sessions):
        W = np.zeros((2, n_cues))
        for t in range(steps):
            z = W @ x[n, t]
            p = np.exp(z - z.max())
            c = int(rng.random() < p[1] / p.sum())
            good = (t // block) % 2
            reward[n, t] = float(rng.random() < (p_reward[0] if c == good else p_reward[1]))
            choice[n, t] = c
            W = W + apply_terms(coefs, x[n, t], np.eye(2)[c], W, reward[n, t])
    return xr.Dataset({"pre": variable(("trial", "time", "pre"), x, "1", "cue (odour concentration)"),
                       "choice": variable(("trial", "time"), choice, "1", "chosen arm"),
                       "reward": variable(("trial", "time"), reward, "1", "reward")},
                      coords={"time": variable("time", np.arange(steps), "1", "step")},
                      attrs={"planted": json.dumps(coefs), "planted_rule": "modulated_hebbian_decay"})


def recovery_grid(rule: str = "oja", *, noises: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3),
                  steps: tuple[int, ...] = (20, 40, 80, 160), trials: int = 6, seeds: tuple[int, ...] = (0, 1),
                  terms: tuple[str, ...] = ("1", "x", "y", "W", "x*y", "y*W", "x*y^2", "y^2*W")) -> xr.Dataset:
    """Recovery error of a planted rule against observation noise and trajectory length.

    For every noise level, length and seed, :func:`planted_activity` data are fitted by
    :func:`plastinet.analysis.infer_rule` (Taylor family, ``terms``, no bootstrap) and the
    relative error ``||theta_hat - theta|| / ||theta||`` over the terms is recorded, with
    whether the fit's ``best`` is the planted family (without bootstrap the family test
    uses only its 2 % resolution floor, so this is strict).

    Returns
    -------
    xarray.Dataset
        ``error (noise, steps, seed)``, ``identified (noise, steps, seed)``.
    """
    from plastinet.analysis import infer_rule
    from plastinet.analysis.rule_models import term_name

    names = [term_name(parse_term(t)) for t in terms]
    truth = {term_name(parse_term(t)): v for t, v in PLANTED[rule].items()}
    target = np.array([truth.get(n, 0.0) for n in names])
    err = np.empty((len(noises), len(steps), len(seeds)))
    ok = np.empty_like(err)
    for i, noise in enumerate(noises):
        for j, T in enumerate(steps):
            for k, seed in enumerate(seeds):
                ds = planted_activity(rule, trials=trials, steps=T, noise=noise, seed=seed)
                fit = infer_rule(ds, terms=list(terms), n_boot=0)
                est = fit.coefficients.sel(coefficient=names).values
                err[i, j, k] = np.linalg.norm(est - target) / np.linalg.norm(target)
                ok[i, j, k] = float(fit.best == rule)
    return xr.Dataset({"error": variable(("noise", "steps", "seed"), err, "1",
                                         "relative coefficient error ||theta_hat - theta|| / ||theta||"),
                       "identified": variable(("noise", "steps", "seed"), ok, "1",
                                              "the fit's best library family is the planted one")},
                      coords={"noise": variable("noise", np.asarray(noises), "1", "relative observation noise"),
                              "steps": variable("steps", np.asarray(steps), "1", "steps per trial"),
                              "seed": variable("seed", np.asarray(seeds), "1", "data seed")},
                      attrs={"rule": rule, "trials": trials})



def fwp_readouts(run: Any, x: Any = None, *, k: Any = None, v: Any = None, beta: Any = None) -> xr.Dataset:
    """Inputs and read-outs of a fast-weight memory, without its weights: a FWP as the brain.

    The memory's *inputs* are what its programmer sends: the key features ``phi(k_t)``
    (``pre``), the value ``v_t`` (``teacher``, a teaching input of each post neuron) and the
    programmed learning rate ``beta_t`` (``beta``, a per-step third factor). Its *read-out*
    is its response to the key before the write, ``W_{t-1} phi(k_t)`` (``post``; the
    retrieval the delta rule itself compares with ``v_t``). Recorded by
    :func:`plastinet.experiments.plasticity_trace` (the rate engine's own steps), one trial per
    sequence.

    Parameters
    ----------
    run : FastWeightLayer or Rule or str
        A (trained) layer run on ``x (B, T, d_in)``, or a rate rule run on keys
        ``k (B, T, d_k)``, values ``v (B, T, d_v)`` and learning rates ``beta (B, T)``.

    Returns
    -------
    xarray.Dataset
        ``pre (trial, time, pre)``, ``post (trial, time, post)``, ``teacher (trial, time, post)``,
        ``beta (trial, time)``.
    """
    from plastinet.experiments import plasticity_trace
    from plastinet.fwp.layer import FastWeightLayer

    if isinstance(run, FastWeightLayer):
        traces = [plasticity_trace(run, x, batch=b) for b in range(np.shape(x)[0])]
        source = "FastWeightLayer"
    else:
        traces = [plasticity_trace(run, k[b], k[b], v[b], beta=beta[b]) for b in range(np.shape(k)[0])]
        source = f"rate rule {run if isinstance(run, str) else type(run).__name__}"
    stack = lambda name: np.stack([np.asarray(t[name].values) for t in traces])  # noqa: E731
    return xr.Dataset(
        {"pre": variable(("trial", "time", "pre"), stack("pre"), "1", "key features phi(k_t)"),
         "post": variable(("trial", "time", "post"), stack("prediction"), "1", "read-out W_(t-1) phi(k_t)"),
         "teacher": variable(("trial", "time", "post"), stack("post"), "1", "value v_t (teaching input)"),
         "beta": variable(("trial", "time"), stack("modulator"), "1", "programmed learning rate beta_t")},
        coords={"time": variable("time", np.arange(traces[0].sizes["time"]), "1", "step")},
        attrs={"source": source})


def spiking_fwp_readouts(rule: Any, k: Any, v: Any, beta: Any, *, seed: int = 0, **network: Any) -> xr.Dataset:
    """Inputs and read-outs of the spiking realisation of a FWP (:func:`plastinet.experiments.fwp_bridge.run_fwp`).

    For each sequence ``b`` the spiking three-factor network writes ``(k_t, v_t)`` with rate
    ``beta_t`` and is queried after each write with the *next* key, ``q_t = k_(t+1)``, so its
    measured read-out (the mean dendritic drive of the post units over the read phase) is
    ``W_t phi(k_(t+1))``: the response to a key before that key's write. Recorded, in the
    layout of :func:`fwp_readouts`: ``pre`` = ``phi(k_t)`` (the key neurons' rates over the
    rate scale), ``teacher`` = ``v_t``, ``beta`` = ``beta_t``, ``post`` = the spiking
    read-out before step ``t``'s write (0 before the first: the weights start at zero).

    Parameters
    ----------
    rule : plastinet.fwp.Delta or plastinet.fwp.Hebbian
        With a non-negative feature map.
    k : array (B, T + 1, d_k)
        Keys (the last one only queries).
    v : array (B, T, d_v)
        Values.
    beta : array (B, T)
        Learning rates (``beta |phi(k)|^2 < 1`` for the delta rule).
    seed : int
        Seed of the spiking runs (sequence ``b`` uses ``seed + b``).
    **network
        Passed to :func:`~plastinet.experiments.fwp_bridge.run_fwp` (``neurons_per_feature``,
        ``rate``, ``phase`` ...).

    Returns
    -------
    xarray.Dataset
        ``pre``, ``post``, ``teacher`` ``(trial, time, ...)``, ``beta (trial, time)``; attr
        ``readout_relative_error``: the spiking read-out's error against the rate engine's.
    """
    from plastinet.experiments.fwp_bridge import run_fwp

    k, v, beta = np.asarray(k, dtype=float), np.asarray(v, dtype=float), np.asarray(beta, dtype=float)
    B, T = v.shape[:2]
    post = np.zeros(v.shape)
    errors = []
    for b in range(B):
        run = run_fwp(rule, k[b, 1:], k[b, :T], v[b], beta[b], seed=seed + b, **network)
        post[b, 1:] = run["y_spiking"].values[:-1]
        errors.append(float(run.attrs["relative_error"]))
    return xr.Dataset(
        {"pre": variable(("trial", "time", "pre"), rule.phi(k[:, :T]), "1", "key features phi(k_t) (rates / rate scale)"),
         "post": variable(("trial", "time", "post"), post, "1", "spiking read-out W_(t-1) phi(k_t)"),
         "teacher": variable(("trial", "time", "post"), v, "1", "value v_t (teaching input)"),
         "beta": variable(("trial", "time"), beta, "1", "programmed learning rate beta_t")},
        coords={"time": variable("time", np.arange(T), "1", "sequence step")},
        attrs={"source": "spiking FWP", "readout_relative_error": float(np.mean(errors))})
