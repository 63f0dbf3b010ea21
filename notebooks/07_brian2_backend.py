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
# # 7. The same model on the brian2 backend
#
# A plastinet model is a backend-neutral specification: a spiking `Network` (populations,
# projections, rules, probes; pure data in SI units) or a rate rule. The numpy engine is the
# reference; the **brian2 backend** lowers the same objects to a Brian2 network (explicit
# `Network`, explicit namespace, Brian2 units only inside the backend) and returns a Dataset
# of the same layout. This notebook runs three things on both backends and compares them:
#
# 1. a Song, Miller & Abbott (2000) competitive-STDP network driven by Poisson inputs;
# 2. injected spike trains (pre/post pairings) through pair STDP: the STDP window;
# 3. a rate fast-weight rule (the delta rule) against `plastinet.fwp.apply`.
#
# Brian2 compiles generated code for the `cython` and `cpp_standalone` targets; the default
# target `numpy` needs no compiler, and it is what this notebook uses in CI. `plastinet info`
# tells whether the compiled targets work on your machine.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
N_INPUTS = 1000                       # Poisson inputs of the Song 2000 network
DURATION = 1.0 if QUICK else 10.0     # simulated time of that network (s)
N_DT = 9 if QUICK else 25             # timing differences of the STDP window
TARGET = "numpy"                      # brian2 target: "numpy", "cython" or "cpp_standalone"

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import plastinet
from plastinet.backends import get_backend
from plastinet.spiking import (
    ConductanceLIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    SpikeGenerator,
    SpikeProbe,
    WeightProbe,
)

brian2 = get_backend("brian2", target=TARGET)
print(f"numpy engine vs brian2 {brian2.version} (target {brian2.target}); "
      f"capabilities: {sorted(brian2.capabilities)}")

# %% [markdown]
# ## 1. One spec, two backends: Song 2000
# `N_INPUTS` Poisson inputs at 15 Hz onto one conductance LIF, additive all-to-all pair
# STDP clipped to `[0, g_max]` (the network of Brian2's `examples/synapses/STDP.py`). With
# `poisson="replay"` (the default) the brian2 backend feeds the numpy engine's Poisson spikes
# for the same seed through a `SpikeGeneratorGroup`, so both backends see identical inputs
# and every difference would be a difference of the two simulators.

# %%
g_max, dA = 0.01, 1e-4


def song_network() -> Network:
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=N_INPUTS, rate="15 Hz"))
    post = net.add(ConductanceLIF(name="post", n=1, tau_m="10 ms", E_l="-74 mV", v_thresh="-54 mV",
                                  v_reset="-60 mV", E_e=0.0, tau_e="5 ms", t_ref=0.0, method="euler"))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=("uniform", 0.0, g_max),
                       w_min=0.0, w_max=g_max,
                       rule=PairSTDP(A_plus=dA, A_minus=1.05 * dA, tau_plus="20 ms", tau_minus="20 ms")))
    net.add(SpikeProbe(name="post_spikes", population="post"))
    net.add(WeightProbe(name="W", projection="syn", sample_every=DURATION / 10))
    return net


results, wall = {}, {}
for name, backend in (("numpy", "numpy"), ("brian2", brian2)):
    t0 = time.perf_counter()
    results[name] = plastinet.simulate(song_network(), DURATION, backend=backend, dt=1e-4, seed=0)
    wall[name] = time.perf_counter() - t0
ref, got = results["numpy"], results["brian2"]
same_spikes = np.array_equal(ref["spike_time"].values, got["spike_time"].values)
w_diff = float(np.max(np.abs(ref["w_syn"].values - got["w_syn"].values)))
print(f"post spikes: numpy {ref.sizes['spike']}, brian2 {got.sizes['spike']}; identical times: {same_spikes}")
print(f"max |w_numpy - w_brian2| = {w_diff:.2e} (g_max = {g_max})")
print("wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in wall.items()))
assert ref.sizes["spike"] > 10 and same_spikes and w_diff < 1e-9 * g_max

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
ax1.scatter(ref["w_syn"].values / g_max, got["w_syn"].values / g_max, s=6)
ax1.plot([0, 1], [0, 1], "k--", lw=0.8)
ax1.set_xlabel("final weight / g_max, numpy engine (1)")
ax1.set_ylabel("final weight / g_max, brian2 (1)")
ax1.set_title(f"{N_INPUTS} synapses, max difference {w_diff / g_max:.1e} g_max")
ax2.eventplot([ref["spike_time"].values, got["spike_time"].values], lineoffsets=[1, 0], colors=["C0", "C1"])
ax2.set_yticks([1, 0], ["numpy", "brian2"])
ax2.set_xlabel("time (s)")
ax2.set_title("post-synaptic spikes")
plt.show()

# %% [markdown]
# The weights drift towards the bounds on both backends alike; over the full 100 s of the
# bundled `song2000` model they become bimodal (`plastinet run song2000 --backend brian2`).

# %% [markdown]
# ## 2. Injected spike trains: the STDP window
# Spike generators impose the pre and post spikes; each timing difference `Δt = t_post − t_pre`
# is its own synapse, so the whole window is one run. Brian2 and the numpy engine must give
# the same weight change for every `Δt`, and both must match the analytic window
# `A+ exp(−Δt/τ+)` (Δt > 0), `−A− exp(Δt/τ−)` (Δt < 0). The same-step pair (`Δt = 0`)
# counts as causal on both backends because pre pathways run before post pathways.

# %%
rule = PairSTDP(A_plus=0.01, A_minus=0.0105, tau_plus="16.8 ms", tau_minus="33.7 ms")
delta_t = np.round(np.linspace(-0.08, 0.08, N_DT), 4)
t0 = 0.1
pairs = Network()
pre = pairs.add(SpikeGenerator(name="pre", n=N_DT, indices=np.arange(N_DT), times=np.full(N_DT, t0)))
post = pairs.add(SpikeGenerator(name="post", n=N_DT, indices=np.arange(N_DT), times=t0 + delta_t))
pairs.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0,
                     connectivity=(np.arange(N_DT), np.arange(N_DT)), rule=rule))
dw = {name: plastinet.simulate(pairs, 0.3, backend=backend, dt=1e-4, seed=0)["w_syn"].values
      for name, backend in (("numpy", "numpy"), ("brian2", brian2))}
analytic = np.where(delta_t >= 0, rule.A_plus * np.exp(-delta_t / rule.tau_plus),
                    -rule.A_minus * np.exp(delta_t / rule.tau_minus))
print("max |dw_numpy - dw_brian2| =", f"{np.max(np.abs(dw['numpy'] - dw['brian2'])):.1e}")
print("max |dw_numpy - analytic|  =", f"{np.max(np.abs(dw['numpy'] - analytic)):.1e}")
assert np.allclose(dw["numpy"], dw["brian2"], rtol=1e-9, atol=1e-15)
assert np.allclose(dw["numpy"], analytic, rtol=1e-6, atol=1e-12)

# %%
fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
fine = np.linspace(delta_t.min(), delta_t.max(), 400)
ax.plot(fine * 1e3, np.where(fine >= 0, rule.A_plus * np.exp(-fine / rule.tau_plus),
                             -rule.A_minus * np.exp(fine / rule.tau_minus)), color="0.6", label="analytic")
ax.plot(delta_t * 1e3, dw["numpy"], "o", ms=9, mfc="none", label="numpy engine")
ax.plot(delta_t * 1e3, dw["brian2"], "x", ms=7, label=f"brian2 ({brian2.target})")
ax.axhline(0, color="0.8", lw=0.8)
ax.set_xlabel("Δt = t_post − t_pre (ms)")
ax.set_ylabel("weight change Δw (1)")
ax.set_title("pair STDP window on both backends")
ax.legend()
plt.show()

# %% [markdown]
# ## 3. A rate fast-weight rule on brian2
# The rate capability lowers a rule to Brian2 synapses: key and value populations driven by
# `TimedArray`s, one synapse per fast weight, the update `W += beta (v - W k) k^T` as a
# `run_regularly` statement and the read-out `y = W q` as a summed variable. It must agree
# with the numpy reference `plastinet.fwp.apply`.

# %%
from plastinet.fwp import Delta, apply

rng = np.random.default_rng(0)
B, H, T, d_k, d_v = 2, 1, 24, 8, 4
k = rng.normal(size=(B, H, T, d_k))
k /= np.linalg.norm(k, axis=-1, keepdims=True)
q = k + 0.2 * rng.normal(size=k.shape)
v = rng.normal(size=(B, H, T, d_v))
beta = rng.uniform(0.2, 1.0, size=(B, H, T))
y_ref, W_ref = apply(Delta(), q, k, v, beta=beta)
y_b2, W_b2 = brian2.apply_fwp(Delta(), q, k, v, beta=beta)
print("max |y_numpy - y_brian2| =", f"{np.max(np.abs(y_ref - y_b2)):.1e}",
      "  max |W_numpy - W_brian2| =", f"{np.max(np.abs(W_ref - W_b2)):.1e}")
assert np.allclose(y_ref, y_b2, atol=1e-12) and np.allclose(W_ref, W_b2, atol=1e-12)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
ax1.plot(y_ref[0, 0, :, 0], "-", lw=2, label="fwp.apply (numpy)")
ax1.plot(y_b2[0, 0, :, 0], "k.", label="brian2")
ax1.set_xlabel("step t (1)")
ax1.set_ylabel("read-out y_t[0] = (W_t q_t)[0] (1)")
ax1.legend(loc="lower right", fontsize=8)
im = ax2.imshow(W_b2[0, 0] - W_ref[0, 0], cmap="RdBu_r")
ax2.set_xlabel("pre (key feature)")
ax2.set_ylabel("post (value)")
ax2.set_title("W_brian2 − W_numpy after T steps")
fig.colorbar(im, ax=ax2, label="difference (1)")
plt.show()

# %% [markdown]
# ## Model files and compiled targets
# Bundled models of kind `rate_fwp` and `spiking_protocol` run on either backend from Python
# and from the command line; training models run on numpy only (training differentiates
# through the numpy engine), and `plastinet run` says so:
#
# ```bash
# plastinet run song2000 --backend brian2 --quick            # target numpy, no compiler
# plastinet run song2000 --backend brian2 --target cython    # generated C++ via Cython
# plastinet run stdp_pairing --backend brian2 --target cpp_standalone
# ```
#
# A cold Cython compile of a small network takes tens of seconds and is cached afterwards;
# `cpp_standalone` builds the whole simulation as one C++ program in its own directory (so
# several may run in parallel); it runs every feature of the spiking spec, the delayed rewards
# of `izhikevich2007_distal_reward` included (they are generated code on every target). Set
# `TARGET` in the parameters cell to try a compiled target here.

# %%
from plastinet.experiments import load_model

model = load_model("stdp_pairing", quick=True)
on_numpy = model.run(progress=False)
on_brian2 = model.run(backend="brian2", target=TARGET, progress=False)
print(on_brian2.attrs["backend"], on_brian2.attrs["backend_version"], on_brian2.attrs["brian2_target"],
      "| identical dw:", np.allclose(on_numpy["dw"], on_brian2["dw"], rtol=1e-9, atol=1e-15))
