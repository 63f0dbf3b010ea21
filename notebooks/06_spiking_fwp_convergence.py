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
# # 6. A trained fast weight programmer, run as a spiking network
#
# A delta-rule fast weight programmer is trained (rate model, `plastinet.training`) on
# associative retrieval. Then its fast-weight memory is replaced by spiking synapses: the
# trained programmer (slow weights) computes keys, values, queries and the learning rate
# `beta` from the input tokens; key neurons fire at rates proportional to `φ(k_t)` while
# value neurons teach the output units (write phase); a neuromodulator carrying `beta_t`
# gates PES plasticity (the spiking delta rule); in read phases query neurons fire at rates
# proportional to `φ(q)` with plasticity off, and the answer is the arg-max of the spiking
# read-out. In expectation the spiking weight change is the rate rule's; the accuracy
# approaches the rate model's as the spike budget per token (neurons × rate × phase) grows.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
TRAIN_STEPS = 100 if QUICK else 200
SEQUENCES = 2 if QUICK else 10
BUDGETS = [(1, 20.0), (2, 100.0)] if QUICK else [(1, 10.0), (1, 20.0), (1, 50.0), (2, 50.0), (2, 100.0), (5, 100.0)]
SEEDS = 3 if QUICK else 30

# %%
import matplotlib.pyplot as plt
import numpy as np

from plastinet.experiments.fwp_bridge import from_fwp, run_fwp, simulate_fwp
from plastinet.experiments.spiking_retrieval import programmed_sequence, spiking_fwp_retrieval
from plastinet.fwp import Delta, FeatureMap
from plastinet.tasks import AssocRetrieval
from plastinet.training import train
from plastinet.training.models import AssocRetrievalModel

# %% [markdown]
# ## 1. Train the rate programmer
# Associative retrieval (Schlag et al. 2021, setting 1): 10 keys, each written once with a
# value, then every key is queried. A linear programmer with DPFP-1 keys and `beta = σ(·)`.

# %%
task = AssocRetrieval(n_keys=10, setting=1)
model = AssocRetrievalModel(task, rule="delta", feature_map="dpfp-1", feature_normalize="sum", d_key=16,
                            programmer="linear", form="recurrent", beta_scale=1.0, seed=0)
history = train(model, task, {"max_steps": TRAIN_STEPS, "eval_every": TRAIN_STEPS // 2, "lr": 3e-3,
                              "patience": None}, progress=False)
print("final evaluation loss:", float(history["eval_loss"][-1]))

# %% [markdown]
# ## 2. One sequence in spikes
# The trained programmer writes the sequence; the spiking network (20 key neurons per
# feature at up to 100 Hz) stores it and answers all queries.

# %%
batch = task.sample(1, np.random.default_rng(1))
seq = programmed_sequence(model, batch)[0]
T = seq["k"].shape[0]
net = from_fwp(model.layer.rule, seq["q"], seq["k"], seq["v"], seq["beta"],
               read_after=np.full(seq["q"].shape[0], T - 1), neurons_per_feature=20)
y_spiking, _, _ = simulate_fwp(net, seed=0)
fig, ax = plt.subplots(1, 2, figsize=(8, 3.5), layout="constrained")
ax[0].scatter(seq["y_rate"].ravel(), y_spiking.ravel(), s=10)
lim = float(np.abs(seq["y_rate"]).max()) * 1.1
ax[0].plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
ax[0].set(xlabel="rate read-out (1)", ylabel="spiking read-out (1)", title="10 queries x 10 values")
ax[1].imshow(y_spiking, cmap="viridis")
ax[1].scatter(seq["targets"], np.arange(seq["targets"].size), marker="x", color="w", label="target")
ax[1].set(xlabel="value", ylabel="query", title="spiking read-out")
ax[1].legend(fontsize=7)
plt.show()
print("spiking answers correct:", int(np.sum(y_spiking.argmax(-1) == seq["targets"])), "of", seq["targets"].size)

# %% [markdown]
# ## 3. Accuracy against spikes per token
# The bundled model `spiking_fwp_retrieval` does all of the above for several sequences and
# spike budgets (`plastinet run spiking_fwp_retrieval`).

# %%
ds = spiking_fwp_retrieval(train_steps=TRAIN_STEPS, sequences=SEQUENCES, neurons=[n for n, _ in BUDGETS],
                           rates=[r for _, r in BUDGETS])
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.semilogx(ds["spikes_per_token"], ds["accuracy"], "o-", label="spiking memory")
ax.axhline(ds.attrs["accuracy_rate"], color="k", ls="--", lw=0.8, label="rate FWP")
ax.set(xlabel="spikes per token (neurons x rate x phase)", ylabel="retrieval accuracy", ylim=(0, 1.05))
ax.legend()
plt.show()
print("rate accuracy:", ds.attrs["accuracy_rate"], " spiking:", ds["accuracy"].values,
      " smallest budget reaching 0.95 x rate:", ds.attrs["smallest_budget_95"])

# %% [markdown]
# ## 4. Exact in expectation
# The delta rule's error is computed from the filtered prediction, which lags the weights by
# about one filter time constant; the modulator compensates the lag (`delta_step_modulator`).
# Averaged over seeds, the spiking weights equal the rate weights of `plastinet.fwp.apply`.

# %%
rng = np.random.default_rng(0)
k = rng.normal(size=(4, 4))
q, v = k + 0.1 * rng.normal(size=(4, 4)), rng.uniform(0, 1, size=(4, 3))
rule = Delta(feature_map=FeatureMap("relu", normalize="l2"))
runs = [run_fwp(rule, q, k, v, np.full(4, 0.8), seed=s) for s in range(SEEDS)]
w_rate = runs[0]["w_rate"].values
w_mean = np.mean([r["w_spiking"].values for r in runs], axis=0)
print("slope of the mean spiking weights on the rate weights:",
      round(float((w_mean * w_rate).sum() / (w_rate * w_rate).sum()), 4), f"({SEEDS} seeds)")
