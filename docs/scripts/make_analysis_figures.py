"""Generate the figures of docs/analysis.md (PNG, < 200 kB each) into docs/figures/.

Run: ``.venv/bin/python docs/scripts/make_analysis_figures.py`` (about a minute).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from plastinet.analysis import (  # noqa: E402
    BI_POO,
    BI_POO_PAIRINGS,
    BTSP,
    LIBRARY,
    TRIPLET_VISUAL,
    attention_weights,
    fit_rate_dependence,
    fit_rule,
    fit_stdp_window,
    synthetic_trace,
    transition_spectrum,
)
from plastinet.experiments import (  # noqa: E402
    capacity_curves,
    forgetting_curve,
    measure_frequency_dependence,
    plasticity_trace,
    rate_spike_scaling,
)
from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian  # noqa: E402
from plastinet.plotting import (  # noqa: E402
    plot_attention,
    plot_capacity,
    plot_forgetting,
    plot_frequency_dependence,
    plot_rate_dependence,
    plot_rule_fit,
    plot_scaling,
    plot_spectrum,
    plot_stdp_window,
)
from plastinet.spiking import TripletSTDP  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "figures"


def save(fig, name: str) -> None:
    path = OUT / name
    fig.savefig(path, dpi=90)
    plt.close(fig)
    size = path.stat().st_size
    assert size < 200_000, f"{name} is {size} bytes"
    print(f"{path.name}: {size / 1000:.0f} kB")


def rule_fit() -> None:
    rng = np.random.default_rng(0)
    T = 200
    k = rng.normal(size=(T, 6))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.normal(size=(T, 4))
    fit = fit_rule(plasticity_trace("delta", k, k, v, beta=rng.uniform(0.1, 1.0, T)))
    oja = fit_rule(synthetic_trace(LIBRARY["oja"], seed=1))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    plot_rule_fit(fit, ax=axes[0])
    axes[0].set_title("Delta FWP run: " + fit.best, fontsize=9)
    plot_rule_fit(fit, ax=axes[1], kind="scatter")
    plot_rule_fit(oja, ax=axes[2])
    axes[2].set_title("planted Oja rule (noise 20 %): " + oja.best, fontsize=9)
    save(fig, "analysis_rule_fit.png")


def trained() -> None:
    """A trained delta and a trained additive programmer, analysed with the same pipeline."""
    from plastinet import training
    from plastinet.tasks.retrieval import AssocRetrieval

    fits = []
    for rule, n_keys, setting, layer in (("delta", 8, 2, {"feature_map": "elu+1"}),
                                         ("hebbian", 16, 1, {"feature_map": "dpfp", "feature_normalize": "l2"})):
        task = AssocRetrieval(n_keys=n_keys, setting=setting)
        model = training.AssocRetrievalModel(task, rule=rule, d_key=16, **layer)
        hist = training.train(model, task, {"max_steps": 600, "eval_every": 50, "batch_size": 16, "lr": 3e-3},
                              progress=False)
        x, _ = model._inputs(task.sample(2, np.random.default_rng(5)))
        trace = plasticity_trace(model.layer, x)
        fit = fit_rule(trace)
        print(f"trained {rule}: eval loss {float(hist.eval_loss[-1]):.4f}; {fit.best}: {fit.classification}")
        fits.append((rule, fit, trace))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    for ax, (rule, fit, _) in zip(axes[:2], fits):
        plot_rule_fit(fit, ax=ax)
        ax.set_title(f"trained {rule} programmer: {fit.best}", fontsize=9)
    _, fit, trace = fits[0]
    axes[2].plot(trace["modulator"], fit.gate_profile(), ".", ms=3)
    axes[2].set_xlabel("programmed learning rate β_t (1)")
    axes[2].set_ylabel("per-step gain of the fitted rule g_t (1)")
    axes[2].set_title("delta programmer: the third factor is β", fontsize=9)
    save(fig, "analysis_trained.png")


def stdp() -> None:
    lags = np.concatenate([np.arange(-120, 0, 4), np.arange(4, 124, 4)]) * 1e-3
    rng = np.random.default_rng(0)
    noise = xr.DataArray(rng.standard_normal((10, lags.size)), dims=("trial", "delta_t"))
    w = BI_POO_PAIRINGS * BI_POO.window(lags) + 0.03 * noise   # total change of the 60-pairing protocol
    w.attrs.update(units="1", long_name="relative weight change per 60 pairings")
    w.name = "Bi & Poo window + noise"
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6), layout="constrained")
    plot_stdp_window(w, fit_stdp_window(w), ax=axes[0])
    bl = np.linspace(-4, 4, 41)
    bw = BTSP.window(bl)
    bw.name = "BTSP (Milstein et al. 2021 time constants)"
    plot_stdp_window(bw, fit_stdp_window(bw), ax=axes[1])
    r = np.array([2.0, 5, 10, 20, 40])
    drift = xr.DataArray(TRIPLET_VISUAL.drift(r[:, None], r[None, :]), dims=("r_pre", "r_post"),
                         coords={"r_pre": r, "r_post": r},
                         attrs={"units": "1/s", "long_name": "drift <dw/dt>"})
    plot_rate_dependence(drift.sel(r_pre=[5.0, 10, 20]), fit_rate_dependence(drift), ax=axes[2])
    axes[2].set_title("minimal triplet rule: BCM-like drift", fontsize=9)
    freq = measure_frequency_dependence(TripletSTDP.visual_cortex_minimal())
    plot_frequency_dependence(freq, ax=axes[3])
    axes[3].set_title("spiking engine, minimal triplet rule, 60 pairings", fontsize=9)
    save(fig, "analysis_stdp.png")


def memory() -> None:
    rules = {"Hebbian": Hebbian(), "Delta": Delta(), "Delta, DPFP-2": Delta(feature_map=FeatureMap("dpfp", nu=2, normalize="l2"))}
    cap = capacity_curves(rules, [4, 8, 16, 24, 32, 48, 64, 96], d_key=32)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    plot_capacity(cap, ax=axes[0])
    axes[0].set_title("capacity (d_k = 32, gaussian unit keys, β = 1)", fontsize=9)
    for rule, alpha in ((DecayedHebbian(), 0.9), (DecayedHebbian(), 0.97)):
        plot_forgetting(forgetting_curve(rule, 60, d_key=32, trials=200, alpha=alpha), ax=axes[1])
    axes[1].set_title("forgetting of the decayed rule", fontsize=9)
    k = np.random.default_rng(1).normal(size=(60, 8))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    plot_spectrum(transition_spectrum(GatedDelta(), k, beta=np.linspace(0, 2.2, 60), alpha=np.full(60, 0.97)),
                  ax=axes[2])
    axes[2].set_title("gated delta: β from 0 to 2.2, α = 0.97", fontsize=9)
    save(fig, "analysis_memory.png")


def dual_and_scaling() -> None:
    rng = np.random.default_rng(2)
    T = 16
    keys = rng.normal(size=(8, 8))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    k = keys[rng.integers(0, 8, T)]                           # keys repeat: overwriting matters
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4), layout="constrained")
    for ax, (rule, gates) in zip(axes[:3], ((Hebbian(), {}), (DecayedHebbian(), {"alpha": np.full(T, 0.8)}),
                                            (Delta(), {}))):
        plot_attention(attention_weights(rule, k, keys, **gates), ax=ax)   # query each key after 16 writes
        ax.set_ylabel("queried key (1)")
    kk, vv = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    out = rate_spike_scaling(Hebbian(feature_map="elu+1"), kk, kk, vv, neurons=(5, 20, 80),
                             rates=(25.0, 100.0, 400.0), phases=(0.2, 0.8), seeds=(0, 1))
    plot_scaling(out.error, out, ax=axes[3])
    axes[3].set_title("spiking vs rate FWP read-out (Hebbian, ELU+1)", fontsize=9)
    save(fig, "analysis_dual_scaling.png")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    rule_fit()
    trained()
    stdp()
    memory()
    dual_and_scaling()
