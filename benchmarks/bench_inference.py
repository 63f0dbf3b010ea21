"""Rule inference from activity: plastinet's ``infer_rule`` vs the published JAX code (run on demand).

Compares :func:`plastinet.analysis.infer_rule` with the code of Mehta, Tyulmankov,
Rajagopalan, Turner, Fitzgerald & Funke (NeurIPS 2024; GitHub repository
``yashsmehta/MetaLearnPlasticity``, package ``plasticity``) on the same planted data, and
prints, for both, the time to fit and the recovery error: the relative error
``||theta_hat_P - theta_P|| / ||theta_P||`` of the planted coefficients and the largest
``|theta_hat|`` of the non-planted ones (per-step units), plus the ratios published / plastinet.

What is compared
----------------
* **Rule family**: the published code's Taylor rule has the variables presynaptic rate ``x``,
  a reward term ``r`` and the weight ``W`` (``dW = sum theta_abc x^a r^b W^c``; no
  postsynaptic rate), so Oja's rule cannot be expressed in it. Both fits use the 8 terms with
  each power at most 1 (``1, x, r, W, x*r, x*W, r*W, x*r*W``; the published code through its
  coefficient mask) and the planted rule is reward-modulated learning with forgetting,
  ``dW = eta x r - lam W`` (default ``eta = 0.1``, ``lam = 0.05`` per step).
* **Data**: ``trials`` sequences of ``steps`` steps; inputs ``x_t`` Gaussian with a random
  covariance (as :func:`plastinet.experiments.rule_inference.planted_activity`), reward
  ``r_t ~ N(0, 1)``, initial weights zero, output ``y_t = sigmoid(W_t x_t)`` (the published
  network's read-out of neural activity), recorded with Gaussian noise of ``noise`` times its
  standard deviation.
* **Published fit** (its own functions: ``plasticity.synapse`` initialisation and Taylor
  function, ``plasticity.losses.loss`` with ``fit_data="neural"``, the scan of
  ``plasticity.model.simulate``): each of our trials is one of its "experiments", each step
  one of its trials of length 1 (``expected_rewards = 0``, so its reward term is ``r``); its
  initial weights are given as zero (the truth); its defaults otherwise: coefficients
  initialised ``N(0, 1e-5^2)``, L1 ``1e-2`` on the raw coefficients, Adam with learning rate
  ``1e-3``, one step per experiment per epoch, ``epochs`` epochs (250 as in its ``run.py``).
  Its weight update is ``W += (1 / n_pre) f(x, r, W)``, so its coefficients are divided by
  ``n_pre`` to give per-step values. Its training loop (in its ``trainer.train``, tied to its
  own data generation and logging) is re-stated here with the same optimiser.
* **plastinet fit**: ``infer_rule(..., activation="tanh", initial_weights="zero", n_boot=0)``
  on ``post = 2 y - 1``: since ``sigmoid(z) = (1 + tanh(z / 2)) / 2``, the network is
  ``tanh(W' x)`` with ``W' = W / 2``, and a coefficient ``theta'`` of ``x^a r^b W'^c`` is
  ``theta 2^(c - 1)`` (converted back here). Its defaults: L-BFGS-B on exact gradients,
  standardised L1 ``1e-3``, pruning and an unpenalised refit.

Limits: one planted rule and one data set per run (``--seed``); times are wall-clock on a
shared machine and include the published code's JIT compilation (reported separately) and
plastinet's term selection and refit; the published fit runs a fixed number of epochs, not
to a convergence criterion; no confidence intervals on either side.

Usage: ``python benchmarks/bench_inference.py --published PATH [--trials 8] [--steps 100]
[--noise 0.05] [--epochs 250] [--seed 0]`` in an environment with ``jax`` and ``optax`` (not
plastinet dependencies) and the published code's imports (``scikit-learn``); ``PATH`` is a
local clone of the repository. Without them it says how to get them and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from plastinet.analysis import infer_rule
from plastinet.analysis.rule_models import parse_term, term_name
from plastinet.experiments.rule_inference import apply_terms

TERMS = ("1", "x", "r", "W", "x*r", "x*W", "r*W", "x*r*W")
REPO = "https://github.com/yashsmehta/MetaLearnPlasticity"
HOWTO = (f"needs jax, optax and scikit-learn (pip install jax optax scikit-learn, in a separate "
         f"environment: they are not plastinet dependencies) and a clone of the published code "
         f"(git clone {REPO}) passed as --published PATH")


@dataclass(frozen=True)
class PublishedConfig:
    """The fields of the published code's configuration its loss reads (hashable: a static jit argument)."""

    coeff_mask: tuple
    l1_regularization: float = 1e-2
    plasticity_model: str = "volterra"
    fit_data: str = "neural"
    neural_recording_sparsity: float = 1.0
    measurement_noise_scale: float = 0.0


def _exponents(term: str) -> tuple[int, int, int]:
    """(x, r, W) powers of a term over the variables both fits share."""
    a, _, c, d, _ = parse_term(term)
    return a, d, c


def planted_sigmoid(coefs: dict[str, float], *, trials: int, steps: int, n_pre: int, n_post: int,
                    noise: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``x (trial, time, pre)``, rewards ``r (trial, time)`` and recorded
    ``sigmoid(W_t x_t)`` plus noise ``(trial, time, post)``; weights zero at the start."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(n_pre, n_pre)))[0]
    x = rng.normal(size=(trials, steps, n_pre)) @ (Q * np.sqrt(np.linspace(1.0, 0.25, n_pre))).T
    r = rng.normal(size=(trials, steps))
    y = np.empty((trials, steps, n_post))
    for n in range(trials):
        W = np.zeros((n_post, n_pre))
        for t in range(steps):
            y[n, t] = 1.0 / (1.0 + np.exp(-W @ x[n, t]))
            W = W + apply_terms(coefs, x[n, t], y[n, t], W, r[n, t])
    return x, r, y + noise * y.std() * rng.normal(size=y.shape)


def fit_plastinet(x: np.ndarray, r: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], float]:
    """Per-step coefficients by :func:`infer_rule` (tanh network on ``2 y - 1``) and wall time (s)."""
    ds = xr.Dataset({"pre": (("trial", "time", "pre"), x), "post": (("trial", "time", "post"), 2 * y - 1),
                     "reward": (("trial", "time"), r)})
    t0 = time.perf_counter()
    fit = infer_rule(ds, terms=list(TERMS), activation="tanh", initial_weights="zero", n_boot=0)
    elapsed = time.perf_counter() - t0
    names = [term_name(parse_term(t)) for t in TERMS]
    est = fit.coefficients.sel(coefficient=names).values
    return {t: float(v) * 2.0 ** (1 - _exponents(t)[2]) for t, v in zip(TERMS, est)}, elapsed


def fit_published(path: Path, x: np.ndarray, r: np.ndarray, y: np.ndarray, epochs: int,
                  seed: int, l1: float = 1e-2) -> tuple[dict[str, float], float, float]:
    """Per-step coefficients by the published code, total wall time and first-call (compile) time (s)."""
    sys.path.insert(0, str(path))
    import jax
    import jax.numpy as jnp
    import optax
    losses = importlib.import_module("plasticity.losses")
    synapse = importlib.import_module("plasticity.synapse")

    trials, steps, n_pre = x.shape
    mask = np.zeros((3, 3, 3))
    for t in TERMS:
        mask[_exponents(t)] = 1.0
    cfg = PublishedConfig(coeff_mask=tuple(map(lambda a: tuple(map(tuple, a)), mask.tolist())), l1_regularization=l1)
    key = jax.random.PRNGKey(seed)
    coeff, func = synapse.init_plasticity_volterra(key, "random")
    params = [(jnp.zeros((n_pre, y.shape[-1])), jnp.zeros((y.shape[-1],)))]
    data = [(jnp.asarray(x[n][:, None, :]), jnp.asarray(r[n]), jnp.zeros(steps), jnp.asarray(y[n][:, None, :]),
             jnp.ones((steps, 1))) for n in range(trials)]
    value_and_grad = jax.value_and_grad(losses.loss, argnums=2)
    optimizer = optax.adam(learning_rate=1e-3)
    state = optimizer.init(coeff)
    t0 = time.perf_counter()
    first = None
    for _ in range(epochs):
        for xs, rewards, expected, recordings, decisions in data:
            key, sub = jax.random.split(key)
            _, grad = value_and_grad(sub, params, coeff, func, xs, rewards, expected, recordings, decisions, cfg)
            updates, state = optimizer.update(grad, state, coeff)
            coeff = optax.apply_updates(coeff, updates)
            if first is None:
                coeff.block_until_ready()
                first = time.perf_counter() - t0
    coeff = np.asarray(coeff) * mask
    elapsed = time.perf_counter() - t0
    return {t: float(coeff[_exponents(t)]) / n_pre for t in TERMS}, elapsed, first


def errors(est: dict[str, float], planted: dict[str, float]) -> tuple[float, float]:
    """Relative error of the planted coefficients and largest |non-planted coefficient|."""
    p = np.array([planted[t] for t in planted])
    e = np.array([est[t] for t in planted])
    others = [abs(v) for t, v in est.items() if t not in planted]
    return float(np.linalg.norm(e - p) / np.linalg.norm(p)), max(others)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--published", type=Path, help="local clone of " + REPO)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--n-pre", type=int, default=4)
    ap.add_argument("--n-post", type=int, default=2)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--eta", type=float, default=0.1, help="planted x*r coefficient per step")
    ap.add_argument("--lam", type=float, default=0.05, help="planted forgetting rate per step")
    ap.add_argument("--epochs", type=int, default=250, help="epochs of the published fit")
    ap.add_argument("--published-l1", type=float, default=1e-2,
                    help="L1 weight of the published fit (its default 1e-2, on raw coefficients)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.published is None or not (args.published / "plasticity" / "losses.py").is_file():
        print(f"bench_inference: --published: no published checkout given or found; {HOWTO}", file=sys.stderr)
        sys.exit(2)
    for module in ("jax", "optax", "sklearn"):
        if importlib.util.find_spec(module) is None:
            print(f"bench_inference: {module} is not installed; {HOWTO}", file=sys.stderr)
            sys.exit(2)

    planted = {"x*r": args.eta, "W": -args.lam}
    x, r, y = planted_sigmoid(planted, trials=args.trials, steps=args.steps, n_pre=args.n_pre,
                              n_post=args.n_post, noise=args.noise, seed=args.seed)
    ours, t_ours = fit_plastinet(x, r, y)
    theirs, t_theirs, t_compile = fit_published(args.published, x, r, y, args.epochs, args.seed,
                                                  args.published_l1)
    e_ours, o_ours = errors(ours, planted)
    e_theirs, o_theirs = errors(theirs, planted)

    import jax
    print(f"planted dW = {args.eta} x r - {args.lam} W per step; trials {args.trials}, steps {args.steps}, "
          f"n_pre {args.n_pre}, n_post {args.n_post}, noise {args.noise}, seed {args.seed}; "
          f"published: {args.epochs} epochs of Adam (1e-3), L1 {args.published_l1}; jax {jax.__version__}, numpy {np.__version__}")
    print(f"{'fit':<12}{'time (s)':>10}{'rel. error planted':>20}{'max |other|':>14}   "
          + "  ".join(f"{t:>8}" for t in TERMS))
    for name, est, t, e, o in (("plastinet", ours, t_ours, e_ours, o_ours),
                               ("published", theirs, t_theirs, e_theirs, o_theirs)):
        print(f"{name:<12}{t:>10.2f}{e:>20.4f}{o:>14.4f}   " + "  ".join(f"{est[k]:>8.4f}" for k in TERMS))
    other_ratio = f"{o_theirs / o_ours:>14.2f}" if o_ours > 0 else f"{'n/a (0)':>14}"
    print(f"{'ratio':<12}{t_theirs / t_ours:>10.2f}{e_theirs / e_ours:>20.2f}{other_ratio}"
          f"   (published / plastinet; published first call incl. compilation {t_compile:.2f} s)")


if __name__ == "__main__":
    main()
