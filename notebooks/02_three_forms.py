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
# # 2. Three ways to compute one memory: recurrent, attention, chunkwise
#
# The same fast-weight memory can be computed three ways, and plastinet tests that they
# agree to rounding error:
#
# 1. **recurrent** — the definition: one synaptic update per step (`O(T d_k d_v)`, sequential);
# 2. **parallel / attention** — unrolling the Hebbian rule gives causal linear attention,
#    `y_t = Σ_{τ≤t} beta_τ v_τ ⟨k_τ, q_t⟩`; the delta rule becomes attention over
#    *pseudo-values* `u` found by one triangular solve (`O(T²)` memory);
# 3. **chunkwise** — attention inside chunks, the synaptic state carried between them: the
#    fast path, made of matrix products.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
T = 256 if QUICK else 2048
D = 32

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, apply

rng = np.random.default_rng(0)
q = rng.normal(size=(1, 2, T, D))
k = rng.normal(size=(1, 2, T, D))
k /= np.linalg.norm(k, axis=-1, keepdims=True)
v = rng.normal(size=(1, 2, T, D))
beta = rng.uniform(0, 1, size=(1, 2, T))
alpha = rng.uniform(0.9, 1.0, size=(1, 2, T))

# %% [markdown]
# ## The forms agree

# %%
cases = [(Hebbian(), {}), (DecayedHebbian(), {"alpha": alpha}), (Delta(), {}), (GatedDelta(), {"alpha": alpha})]
for rule, gates in cases:
    ref, W_ref = apply(rule, q, k, v, beta=beta, form="recurrent", **gates)
    for form in rule.forms[1:]:
        t0 = time.perf_counter()
        y, W = apply(rule, q, k, v, beta=beta, form=form, **gates)
        dt = time.perf_counter() - t0
        print(f"{type(rule).__name__:15s} {form:9s} max|Δy| = {np.abs(y - ref).max():.1e}   ({dt * 1e3:.0f} ms)")
        assert np.abs(y - ref).max() < 1e-10

# %% [markdown]
# ## The attention view: which past writes does a query retrieve?
# For the additive rule the read-out is a weighted sum of stored values with weights
# `A[t, τ] = beta_τ ⟨k_τ, q_t⟩`. For the delta rule the weights apply to the pseudo-values
# `u_τ` (each write's *correction*), and the decayed rule multiplies by the product of the
# gates since `τ`. Querying with a key that was written earlier shows how each rule
# remembers it.

# %%
n = 48
kk = k[0, 0, :n]
A_hebb = np.tril(kk @ kk.T) * beta[0, 0, :n][None, :]
decay = np.exp(np.subtract.outer(np.cumsum(np.log(alpha[0, 0, :n])), np.cumsum(np.log(alpha[0, 0, :n]))))
A_decay = np.tril(A_hebb * decay)
fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, A, title in zip(axes, (A_hebb, A_decay), ("Hebbian", "decayed Hebbian")):
    im = ax.imshow(A, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xlabel("write step τ")
    ax.set_ylabel("query step t")
    ax.set_title(f"{title}: A[t, τ] (1)")
fig.colorbar(im, ax=axes, shrink=0.8)
plt.show()

# %% [markdown]
# ## Speed
# The chunkwise form turns `T` rank-one updates into matrix products. (See
# `docs/benchmarks.md` for the measured table at larger sizes.)

# %%
timings = {}
for form in ("recurrent", "parallel", "chunkwise"):
    t0 = time.perf_counter()
    apply(Delta(), q.astype(np.float32), k.astype(np.float32), v.astype(np.float32),
          beta=beta.astype(np.float32), form=form)
    timings[form] = time.perf_counter() - t0
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
ax.bar(list(timings), [2 * T / t for t in timings.values()])
ax.set_ylabel("tokens / s (1/s)")
ax.set_title(f"delta rule, T = {T}, d = {D}, float32")
plt.show()
