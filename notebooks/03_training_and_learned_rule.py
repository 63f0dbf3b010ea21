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
# # 3. Training a programmer, then reading its learned rule
#
# In a fast weight programmer the *slow* weights are trained by gradient descent so that
# the *fast* synaptic rule they drive stores and retrieves what the task needs. That is
# meta-learning of plasticity. Here we train a delta-rule programmer on associative
# retrieval (Schlag et al. 2021, setting 2: keys recur, the latest value must be
# returned), then record its synapses during a sequence and fit the recorded weight changes
# to families of plasticity rules — as one would fit a rule measured in a slice.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
N_KEYS = 8
STEPS = 150 if QUICK else 600

# %%
import matplotlib.pyplot as plt
import numpy as np

from plastinet import training
from plastinet.analysis import fit_rule
from plastinet.experiments import plasticity_trace
from plastinet.tasks.retrieval import AssocRetrieval

# %% [markdown]
# ## Train
# The programmer maps each input to a key, a value and a learning rate `beta = σ(·)`;
# the loss is `½‖onehot(target) − y‖²` at the query steps.

# %%
task = AssocRetrieval(n_keys=N_KEYS, setting=2)
model = training.AssocRetrievalModel(task, rule="delta", d_key=16, feature_map="elu+1")
history = training.train(model, task, {"max_steps": STEPS, "eval_every": 50, "batch_size": 16, "lr": 3e-3},
                         progress=False)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.semilogy(history["step"], history["train_loss"], lw=0.8, label="train")
ax.semilogy(history["eval_step"], history["eval_loss"], "o-", label="eval")
ax.set_xlabel("optimiser step (1)")
ax.set_ylabel("loss (1)")
ax.legend()
print("final eval loss:", float(history["eval_loss"][-1]))

# %% [markdown]
# ## Record the synapses and fit rule families
# `plasticity_trace` runs the trained layer on a sequence and returns, for every step, the
# weight change `dW (time, post, pre)` with the local variables that could drive it: the
# presynaptic activity (key features), the postsynaptic activity and target, the error
# `v − W k`, the weight before the change, and the third factor (the programmed `beta`).
# `fit_rule` fits each family by least squares, ranks them by an information criterion and
# bootstraps confidence intervals.

# %%
x, _ = model._inputs(task.sample(2, np.random.default_rng(5)))
trace = plasticity_trace(model.layer, x)
fit = fit_rule(trace)
print(fit.classification)
fit.table().head(6)

# %%
fit.plot()

# %% [markdown]
# The learned update is classified **delta-like, gated by a third factor** — the
# programmed learning rate `beta` plays the role a neuromodulator plays in three-factor
# plasticity.
#
# What this comparison can and cannot show: `plasticity_trace` replays the layer's own keys,
# values and `beta` through the same delta rule, so the family that contains it fits with
# R² = 1 *by construction* (and so do families that contain it as a special case). The fit
# tells which biological families can express the learned updates, not which rule produced
# them; only the BIC, which charges for parameters, separates families of equal R². The
# summary says so, and `fit_rule` warns when the data cannot tell families apart.

# %%
print(fit.summary())

# %%
assert fit.best == "modulated_delta" and "beta" in fit.classification

# %% [markdown]
# ## The same pipeline on an additive (Hebbian) programmer
# The additive rule `W += beta v phi(k)^T` cannot overwrite, so we train it on setting 1
# (each key once; 16 keys, DPFP features normalised to unit length) and fit its recorded
# weight changes in exactly the same way.

# %%
task_h = AssocRetrieval(n_keys=16, setting=1)
model_h = training.AssocRetrievalModel(task_h, rule="hebbian", d_key=16, feature_map="dpfp",
                                       feature_normalize="l2")
history_h = training.train(model_h, task_h, {"max_steps": STEPS, "eval_every": 50, "batch_size": 16,
                                             "lr": 3e-3}, progress=False)
print("final eval loss (all-zero output: 0.5):", float(history_h["eval_loss"][-1]))
x_h, _ = model_h._inputs(task_h.sample(2, np.random.default_rng(5)))
fit_h = fit_rule(plasticity_trace(model_h.layer, x_h))
print(fit_h.classification)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
fit.plot(ax=axes[0])
axes[0].set_title("trained delta programmer: " + fit.best, fontsize=9)
fit_h.plot(ax=axes[1])
axes[1].set_title("trained additive programmer: " + fit_h.best, fontsize=9)

# %%
assert fit_h.classification.startswith("Hebbian-like")
