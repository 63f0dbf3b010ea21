"""Figures and numbers of the spiking FWP section of docs/spiking.md.

``python docs/scripts/make_spiking_fwp_figures.py [--seeds N] [--skip-models]`` runs the
bundled models ``spiking_fwp_retrieval`` and ``spiking_ba2016_retrieval`` (full size) and
writes ``docs/figures/spiking_fwp_retrieval.png`` and ``docs/figures/spiking_ba2016_retrieval.png``
(accuracy against spikes per token); measures, for every rate rule, the slope of the
seed-averaged spiking weights on the rate weights (``N`` seeds, default 30); and measures
the error scaling of the step-by-step spiking memory (rate, LIF read-out and LIF error
neurons), written to ``docs/figures/spiking_memory_scaling.png``.
"""

from __future__ import annotations

import argparse
import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plastinet.experiments import (
    get_kind,  # noqa: E402
    load_model,  # noqa: E402
)
from plastinet.experiments.fwp_bridge import run_fwp  # noqa: E402
from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, ThreeFactor  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "figures"


def retrieval(name: str) -> None:
    model = load_model(name)
    ds = model.run(progress=False)
    fig = plt.figure(figsize=(6, 3.6), layout="constrained")
    get_kind(model.kind).plot(ds, fig)
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / f"{name}.png", dpi=80)
    plt.close(fig)
    print(name)
    print("spikes per token:", ds["spikes_per_token"].values.tolist())
    print("accuracy:        ", ds["accuracy"].values.tolist())
    print("relative error:  ", np.round(ds["relative_error"].values, 3).tolist())
    if "agreement" in ds:
        print("agreement:       ", ds["agreement"].values.tolist())
    print({k: ds.attrs[k] for k in ("accuracy_rate", "accuracy_spiking", "spikes_per_token", "smallest_budget_90",
                                    "smallest_budget_95", "queries", "sequences", "train_loss", "beta_phi2_max")
           if k in ds.attrs})


def memory_sequence() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sequence of the memory tests: ``phi(k) (4, 4)``, ``v (4, 3)``, ``beta (4,)`` with
    ``beta |phi(k)|^2`` up to 2.3, queries ``phi(q) (2, 4)``, the rate weights and read-outs."""
    rng = np.random.default_rng(0)
    phik, v = np.abs(rng.normal(size=(4, 4))), rng.uniform(-1, 1, size=(4, 3))
    phiq, beta = np.abs(rng.normal(size=(2, 4))), np.full(4, 0.3)
    W = np.zeros((3, 4))
    for t in range(4):
        W = W + beta[t] * np.outer(v[t] - W @ phik[t], phik[t])
    return phik, v, beta, phiq, W, phiq @ W.T


def memory_scaling(n_seeds: int) -> None:
    from plastinet.experiments.spiking_memory import SpikingMemory

    phik, v, beta, phiq, W, y = memory_sequence()
    variants = {"rate read-out, rate error": {}, "LIF read-out": {"readout": "lif"},
                "LIF error neurons": {"error": "lif"}}
    sizes = (5, 10, 20, 40)
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for label, opts in variants.items():
        errs, slopes = [], []
        for n in sizes:
            e, sl = [], []
            for seed in range(n_seeds):
                mem = SpikingMemory(Delta(feature_map="relu"), 4, 3, neurons_per_feature=n, readout_neurons=n,
                                    error_neurons=n, y_range=2.0, seed=seed, **opts)
                for t in range(4):
                    mem.write(phik[t], v[t], beta[t])
                ys = mem.read(phiq)
                e.append(np.linalg.norm(ys - y) / np.linalg.norm(y))
                sl.append(float((mem.W * W).sum() / (W * W).sum()))
            errs.append(np.mean(e))
            slopes.append((np.mean(sl), np.std(sl, ddof=1) / math.sqrt(n_seeds)))
            print(f"{label}, n = {n}: read-out error {np.mean(e):.3f}, weight slope {slopes[-1][0]:.4f} "
                  f"+- {slopes[-1][1]:.4f} ({n_seeds} seeds)")
        ax.loglog(sizes, errs, "o-", label=label)
    ax.loglog(sizes, errs[0] * np.sqrt(sizes[0] / np.array(sizes)), "k:", lw=0.8, label="n^-1/2")
    ax.set_xlabel("neurons per feature (and per read-out / error group)")
    ax.set_ylabel("relative read-out error")
    ax.set_title("spiking memory, delta rule, beta |phi|^2 up to 2.3")
    ax.legend(fontsize=7)
    fig.savefig(OUT / "spiking_memory_scaling.png", dpi=80)
    plt.close(fig)


def expectations(n_seeds: int) -> None:
    rng = np.random.default_rng(0)
    k = rng.normal(size=(4, 4))
    q, v, beta = k + 0.1 * rng.normal(size=(4, 4)), rng.uniform(0, 1, size=(4, 3)), np.full(4, 0.8)
    fm = FeatureMap("relu", normalize="l2")
    alpha = np.array([0.9, 0.7, 0.8, 0.95])
    rules = {"Hebbian": (Hebbian(feature_map=fm), {}),
             "DecayedHebbian": (DecayedHebbian(feature_map=fm), {"alpha": alpha}),
             "Delta": (Delta(feature_map=fm), {}),
             "GatedDelta": (GatedDelta(feature_map=fm), {"alpha": alpha}),
             "ThreeFactor": (ThreeFactor(feature_map=fm), {"modulator": np.array([1.0, 0.5, 2.0, 0.3])})}
    for name, (rule, kw) in rules.items():
        slopes = []
        for seed in range(n_seeds):
            ds = run_fwp(rule, q, k, v, beta, seed=seed, **kw)
            w_s, w_r = ds["w_spiking"].values, ds["w_rate"].values
            slopes.append(float((w_s * w_r).sum() / (w_r * w_r).sum()))
        print(f"{name}: slope {np.mean(slopes):.4f} +- {np.std(slopes, ddof=1) / math.sqrt(n_seeds):.4f} "
              f"({n_seeds} seeds, 50 neurons per feature, 100 Hz, 0.2 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--skip-models", action="store_true", help="skip the two full-size models")
    args = parser.parse_args()
    if not args.skip_models:
        retrieval("spiking_fwp_retrieval")
        retrieval("spiking_ba2016_retrieval")
    expectations(args.seeds)
    memory_scaling(max(3, args.seeds // 5))
