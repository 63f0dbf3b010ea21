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
# # 5. Three-factor learning: the distal reward problem
#
# A reward that arrives seconds after the spikes that earned it must still find the right
# synapse. Izhikevich (2007) solved it with STDP that writes into a slow *eligibility
# trace* `c` (τc ≈ 1 s), which is turned into a weight change only when dopamine `d`
# arrives: `ṡ = c · d`. A fast weight programmer does the same with its programmed learning
# rate: the third factor gates which coincidences are stored.
#
# The network here is plastinet's documented reduction (`docs/spiking.md`): one current-based
# LIF neuron, 100 plastic Poisson inputs and static background drive. Reward follows, after
# 1–3 s, every time input 0 fires within 20 ms before the neuron. The full run is the model's
# 2000 s; the quick run (`PLASTINET_QUICK=1`) is 8 s of a seed whose first reward arrives
# after 3 s, enough to see one reward credited to synapse 0.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
DURATION, SEED = (8.0, 7) if QUICK else (2000.0, 0)

# %%
import matplotlib.pyplot as plt

from plastinet.experiments.protocols import izhikevich2007

ds = izhikevich2007(duration=DURATION, seed=SEED)
W = ds["W"].isel(W_post=0)
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, layout="constrained")
ax1.plot(ds["time"], W.isel(W_pre=0), color="tab:red", lw=2, label="rewarded synapse")
ax1.plot(ds["time"], W.isel(W_pre=slice(1, None)).mean("W_pre"), color="0.3", label="others, mean")
ax1.plot(ds["time"], W.isel(W_pre=slice(1, None)).max("W_pre"), color="0.6", ls="--", label="others, max")
ax1.set_ylabel("synaptic strength (1)")
ax1.legend(fontsize=8)
ax2.plot(ds["time"], ds["dopamine_level"], color="tab:purple")
ax2.set_xlabel("time (s)")
ax2.set_ylabel("dopamine (1)")
plt.show()

# %% [markdown]
# The rewarded synapse grows (over the full run, to its bound of 4 within about half an hour
# of model time) while the others stay near where they started: the delayed, global dopamine
# signal is credited to the one synapse whose eligibility trace was high when it arrived.

# %%
print({k: round(float(ds.attrs[k]), 3) for k in ("rewarded_final", "others_mean", "others_max", "t_rewarded_max")})
assert ds.attrs["rewarded_final"] > ds.attrs["others_mean"] + (0.05 if QUICK else 2.5)
