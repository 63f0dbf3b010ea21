"""Figure and numbers of the spiking FWP section of docs/spiking.md.

``python docs/scripts/make_spiking_fwp_figures.py [--seeds N]`` runs the bundled model
``spiking_fwp_retrieval`` (full size) and writes ``docs/figures/spiking_fwp_retrieval.png``
(retrieval accuracy against spikes per token), then measures, for every rate rule, the
slope of the seed-averaged spiking weights on the rate weights (``N`` seeds, default 30).
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


def retrieval() -> None:
    model = load_model("spiking_fwp_retrieval")
    ds = model.run(progress=False)
    fig = plt.figure(figsize=(6, 3.6), layout="constrained")
    get_kind(model.kind).plot(ds, fig)
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / "spiking_fwp_retrieval.png", dpi=80)
    plt.close(fig)
    print("spikes per token:", ds["spikes_per_token"].values.tolist())
    print("accuracy:        ", ds["accuracy"].values.tolist())
    print("relative error:  ", np.round(ds["relative_error"].values, 3).tolist())
    print({k: ds.attrs[k] for k in ("accuracy_rate", "accuracy_spiking", "spikes_per_token",
                                    "smallest_budget_90", "smallest_budget_95", "queries", "train_loss")})


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
    args = parser.parse_args()
    retrieval()
    expectations(args.seeds)
