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
# # 8. Inferring plasticity rules from activity alone
#
# In experiments the synaptic weights are almost never observed — activity and behaviour
# are. `plastinet.analysis.infer_rule` fits a parameterised plasticity rule to recorded
# activity (or choices) by exact gradients through the plastic network, as proposed by
# Mehta et al. (NeurIPS 2024): the network `y_t = W_t x_t`,
# `W_{t+1} = W_t + Σ_k θ_k x^a y^b W^c r^d` is simulated from fitted initial weights, and
# the coefficients `θ` are chosen to reproduce the recorded `y`, with an L1 penalty that
# keeps the rule sparse. Bootstrap over trials gives the intervals, and the fit is matched
# to a library of biological rules.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
TRIALS = 4 if QUICK else 8
STEPS = 40 if QUICK else 60
N_BOOT = 4 if QUICK else 16
SESSIONS = 6 if QUICK else 16

# %% [markdown]
# ## A planted Oja rule, recovered from inputs and outputs
#
# The "brain" is a linear rate network whose weights follow Oja's rule
# `dW = 0.02 (x y − y² W)`. We keep only its inputs `pre` and its (noisy) outputs `post`.

# %%
import matplotlib.pyplot as plt

from plastinet.analysis import infer_rule
from plastinet.experiments.rule_inference import planted_activity, planted_bandit

ds = planted_activity("oja", trials=TRIALS, steps=STEPS, noise=0.02, seed=5)
print(sorted(map(str, ds.variables)))        # no weights
fit = infer_rule(ds, terms=["1", "x", "y", "W", "x*y", "y*W", "x*y^2", "y^2*W"], n_boot=N_BOOT)
print(fit)
print(fit.coefficients.to_dataframe()[["coefficients", "ci_low", "ci_high"]])

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
fit.plot(ax=ax1)
fit.plot(ax=ax2, kind="prediction")
plt.show()

# %% [markdown]
# The two planted terms carry the whole rule; `fit.best` names the library family whose
# Taylor-term pattern (`x y − y² W` with equal and opposite coefficients) the estimate
# matches, by a chi-squared test on the bootstrap covariance:

# %%
fit.table()[["d2", "p_value", "matched"]].to_dataframe()

# %% [markdown]
# ## Behaviour: a bandit learner with forgetting, from its choices alone
#
# An agent chooses between two arms with `softmax(W x)` (action values as plastic weights
# from a cue input), and learns with `dW = η r c x − γ W` (reward-modulated, with active
# forgetting; `c` the chosen arm). Only cues, choices and rewards are recorded; the rule is
# fitted by the choices' likelihood.

# %%
bandit = planted_bandit(sessions=SESSIONS, steps=150, seed=5)
bfit = infer_rule(bandit, terms=["r*x*y", "x*y", "W", "r*W"], initial_weights="zero", n_boot=N_BOOT,
                  reselect=False)
print(bfit)
print(bfit.coefficients.to_dataframe()[["coefficients", "ci_low", "ci_high"]])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
bfit.plot(ax=ax1)
bfit.plot(ax=ax2, kind="prediction")
plt.show()
