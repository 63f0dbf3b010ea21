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
# # 1. Fast weights as synapses: Hebbian versus delta memory
#
# A fast weight programmer stores what it sees in a matrix of synapses `W` (rows: value /
# post-synaptic neurons, columns: key / pre-synaptic features). At every step the
# programmer emits a key `k_t`, a value `v_t` and a learning rate `beta_t`, and the synapses
# change by a local rule:
#
# * **Hebbian** (additive, linear attention): `ΔW = beta v kᵀ` — post times pre;
# * **delta** (DeltaNet, Widrow–Hoff): `ΔW = beta (v − W k) kᵀ` — error times pre.
#
# The read-out `y = W q` is what a query retrieves. This notebook stores random key/value
# pairs with both rules and measures how well they come back.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"   # CI runs the notebooks with small sizes
D_KEY = 32
TRIALS = 8 if QUICK else 64
N_ITEMS = [4, 8, 16, 24, 32, 48, 64] if QUICK else [2, 4, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128]

# %%
import matplotlib.pyplot as plt
import numpy as np

from plastinet.experiments.rate_memory import KVMemory, kv_memory
from plastinet.fwp import Delta, Hebbian, apply

# %% [markdown]
# ## One write, one read
# With a unit key, a single Hebbian write stores the value exactly: `W k = v (kᵀk) = v`.

# %%
rng = np.random.default_rng(0)
k = rng.normal(size=(1, 1, 1, D_KEY))
k /= np.linalg.norm(k)
v = rng.normal(size=(1, 1, 1, 8))
y, W = apply(Hebbian(), q=k, k=k, v=v)
print("recalled equals stored:", np.allclose(y, v))

# %% [markdown]
# ## Re-writing a key
# Writing a *new* value under the *same* key is where the rules part ways: the additive rule
# returns the **sum** of both values, the delta rule (beta = 1) the **new** one — it first
# subtracts what the key currently retrieves.

# %%
v2 = rng.normal(size=(1, 1, 1, 8))
keys = np.concatenate([k, k], axis=2)
vals = np.concatenate([v, v2], axis=2)
y_hebb, _ = apply(Hebbian(), keys, keys, vals)
y_delta, _ = apply(Delta(), keys, keys, vals)
print("additive returns v1 + v2:", np.allclose(y_hebb[..., -1, :], v + v2))
print("delta returns v2:        ", np.allclose(y_delta[..., -1, :], v2))

# %% [markdown]
# ## Capacity and interference
# Store `n` random unit keys with unit values, then query every key with plasticity off.
# For the additive rule each other item leaks through with squared overlap `1/d_k` on
# average, so the recall error is `(n − 1)/d_k`. No single matrix can do better than the
# rank bound `(n − d_k)/n` once `n > d_k`. The delta rule corrects interference as it
# writes and stays far below the additive curve.

# %%
results = {}
for rule in (Hebbian(), Delta()):
    protocol = KVMemory(d_key=D_KEY, d_value=16, n_items=N_ITEMS, trials=TRIALS, seed=1)
    results[type(rule).__name__] = kv_memory(rule, protocol)

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for name, ds in results.items():
    err = ds["recall_error"]
    ax.errorbar(ds["n_items"], err.mean("trial"), yerr=err.std("trial"), marker="o", capsize=3, label=name)
ds = results["Hebbian"]
ax.plot(ds["n_items"], ds["crosstalk_reference"], "k--", lw=1, label="(n − 1)/d_k")
ax.plot(ds["n_items"], ds["rank_bound"], ":", color="tab:red", label="rank bound")
ax.axvline(D_KEY, color="0.7", lw=0.8)
ax.set_xlabel("stored items n (1)")
ax.set_ylabel("recall error ||y − v||²/||v||² (1)")
ax.legend()
ax.set_title(f"d_k = {D_KEY}")
plt.show()

# %% [markdown]
# The simulated additive curve sits on its analytic reference:

# %%
sim = results["Hebbian"]["recall_error"].mean("trial").values
ref = results["Hebbian"]["crosstalk_reference"].values
print("relative deviation from (n-1)/d_k:", np.round(np.abs(sim - ref) / ref.clip(1e-12), 3))
assert np.all(np.abs(sim[1:] - ref[1:]) / ref[1:] < 0.35)

# %% [markdown]
# ## Orthonormal keys
# With orthonormal keys there is no crosstalk at all: both rules recall up to `d_k` items
# exactly — the capacity of a `d_v × d_k` synaptic matrix.

# %%
for rule in (Hebbian(), Delta()):
    ds = kv_memory(rule, KVMemory(d_key=D_KEY, d_value=16, n_items=[D_KEY], trials=4,
                                   key_distribution="orthonormal", seed=2))
    print(type(rule).__name__, "max recall error with d_k orthonormal keys:", float(ds["recall_error"].max()))
