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
# # 4. STDP, the triplet rule and the Sjöström data
#
# Spike-timing-dependent plasticity measured with pairing protocols: a presynaptic spike
# `Δt` before (Δt > 0) or after (Δt < 0) a postsynaptic one. plastinet's spiking engine runs
# each condition as a separate synapse fed by spike generators, so a whole window is one run.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
N_PAIRINGS = 15 if QUICK else 60

# %%
import matplotlib.pyplot as plt
import numpy as np

from plastinet.analysis import fit_stdp_window
from plastinet.experiments.protocols import SJOSTROM_DATA, pairing_window, sjostrom
from plastinet.plotting.analysis import plot_stdp_window
from plastinet.spiking.rules import PairSTDP, TripletSTDP

# %% [markdown]
# ## The pair-STDP window
# One pairing per Δt with Bi & Poo's time constants (τ+ = 16.8 ms, τ− = 33.7 ms). The
# double-exponential fit recovers the rule's parameters.

# %%
rule = PairSTDP(A_plus=0.01, A_minus=0.0105, tau_plus=0.0168, tau_minus=0.0337)
delta_t = np.concatenate([-np.geomspace(0.1, 0.002, 12), np.geomspace(0.002, 0.1, 12)])
window = pairing_window(rule, delta_t)
fit = fit_stdp_window(window["dw"])
ax = plot_stdp_window(window["dw"], fit)
print(fit)

# %% [markdown]
# ## Frequency dependence: pairs are not enough
# Sjöström et al. (2001) paired at ±10 ms at rising frequencies. At low frequency only the
# post-before-pre pairing (−10 ms) changes the synapse (depression); potentiation needs
# high frequencies, and at 40–50 Hz both orders potentiate. A pair rule cannot produce this;
# the triplet rule of Pfister & Gerstner (2006), whose potentiation depends on the previous
# postsynaptic spike, does.

# %%
triplet = TripletSTDP.visual_cortex_minimal()
ds = sjostrom(triplet, n_pairings=N_PAIRINGS)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for dt_val, color in zip(ds["delta_t"].values, ("tab:red", "tab:blue")):
    ax.plot(ds["frequency"], ds["dw_rel"].sel(delta_t=dt_val), "o-", color=color, label=f"triplet rule, Δt = {dt_val * 1e3:+.0f} ms")
for key, color in (("plus10", "tab:red"), ("minus10", "tab:blue")):
    mean, sem = np.asarray(SJOSTROM_DATA[key]).T
    ax.errorbar(SJOSTROM_DATA["frequency"], mean, yerr=sem, fmt="s", mfc="none", color=color, capsize=3)
ax.axhline(0, color="0.5", lw=0.8)
ax.set_xlabel("pairing frequency (Hz)")
ax.set_ylabel("relative weight change (1)")
ax.legend(fontsize=8)
plt.show()

# %%
plus = ds["dw_rel"].sel(delta_t=0.01).values
minus = ds["dw_rel"].sel(delta_t=-0.01).values
assert minus[0] < 0 and np.all(np.diff(plus) >= -1e-12) and plus[-1] > 0
