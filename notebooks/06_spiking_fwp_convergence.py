# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Spiking fast weight programmers and their convergence to the rate model
#
# A rate FWP becomes a spiking network of three-factor synapses: key neurons fire at rates
# proportional to `φ(k_t)` while value neurons teach the output population (write phase);
# a neuromodulator carrying `beta_t` gates plasticity on; in the read phase query neurons
# fire at rates proportional to `φ(q_t)` with plasticity off, and the read-out is decoded
# from the output population. In expectation the spiking weight change is the rate rule's;
# the spiking read-out approaches the rate read-out as neurons × rate × phase grows.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
NEURONS = (3, 6, 12) if QUICK else (5, 10, 20, 40)
RATES = (60.0, 120.0) if QUICK else (50.0, 100.0, 200.0)
PHASES = (0.2,) if QUICK else (0.2, 0.4)
SEEDS = (0,) if QUICK else (0, 1)

# %%
import matplotlib.pyplot as plt
import numpy as np

from plastinet.experiments import rate_spike_scaling
from plastinet.experiments.fwp_bridge import run_fwp
from plastinet.fwp import Delta, FeatureMap
from plastinet.plotting.analysis import plot_scaling

rng = np.random.default_rng(0)
T, d_k, d_v = 4, 4, 3
k = rng.normal(size=(T, d_k))
q = k + 0.1 * rng.normal(size=(T, d_k))
v = rng.uniform(0, 1, size=(T, d_v))
beta = np.full(T, 0.8)
rule = Delta(feature_map=FeatureMap("relu", normalize="l2"))

# %% [markdown]
# ## One run: spiking read-out against the rate read-out

# %%
ds = run_fwp(rule, q, k, v, beta, neurons_per_feature=NEURONS[-1], rate=RATES[-1], phase=PHASES[-1], seed=0)
fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
ax.scatter(ds["y_rate"].values.ravel(), ds["y_spiking"].values.ravel())
lim = float(np.abs(ds["y_rate"]).max()) * 1.1
ax.plot([0, lim], [0, lim], "k--", lw=0.8)
ax.set_xlabel("rate FWP read-out (1)")
ax.set_ylabel("spiking FWP read-out (1)")
ax.set_title(f"r = {float(ds.attrs['correlation']):.3f}")
plt.show()

# %% [markdown]
# ## Error against neurons × rate × phase, and its scaling exponent
# Poisson counting noise predicts an exponent near −1 for the squared error.

# %%
scaling = rate_spike_scaling(rule, q, k, v, beta, neurons=NEURONS, rates=RATES, phases=PHASES, seeds=SEEDS)
plot_scaling(scaling["error"], scaling)
print("fitted exponent:", float(scaling["exponent"]) if "exponent" in scaling else scaling)
