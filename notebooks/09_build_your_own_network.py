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
# # 9. Build your own network
#
# A tutorial for neuroscientists used to Brian2 or NEST. We build a small plastic network
# (Poisson inputs onto conductance-based LIF neurons, additive pair STDP), once **from
# Python** and once as a **model file** (TOML), run it on the **numpy** reference engine and
# on **brian2**, plot raster, rates and weights, and read the **result file**.
#
# Conventions that matter:
#
# * plastinet works in SI units inside; at the boundary you may write unit strings such as
#   `"20 ms"` (recommended: a bare `20` would be 20 seconds), brian2 or pint quantities.
# * A network is pure data: populations, projections (with a rule), probes. Nothing runs until
#   `plastinet.simulate(net, duration, backend=...)`.
# * Results are `xarray.Dataset`s with units on every variable.

# %% tags=["parameters"]
import os

QUICK = os.environ.get("PLASTINET_QUICK", "0") == "1"
DURATION = "0.5 s" if QUICK else "10 s"     # simulated time
N_INPUTS = 300                             # Poisson inputs
N_POST = 10                                # conductance LIF neurons
G_MAX = 0.03                               # weight bound, in units of the leak conductance
RUN_BRIAN2 = True                          # also run the network on brian2 (numpy target: no compiler)

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from plastinet import simulate
from plastinet.experiments import load_model
from plastinet.io import load_result, save_result
from plastinet.plotting import (
    plot_population_rates,
    plot_raster,
    plot_spiking_overview,
    plot_weight_histogram,
    plot_weight_trajectories,
)
from plastinet.spiking import (
    ConductanceLIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    SpikeProbe,
    WeightProbe,
    spike_events,
    spike_trains,
)

# %% [markdown]
# ## 1. The network from Python
#
# Every object has a `name`; projections refer to population objects, probes to names.
# `ConductanceLIF` follows Song, Miller & Abbott (2000): conductances are in units of the leak
# conductance, so the weights are dimensionless. The STDP amplitudes are 1 % of `G_MAX`
# (depression 5 % stronger than potentiation), as in Song et al.

# %%
def build_network() -> Network:
    net = Network()
    inputs = net.add(PoissonGroup(name="inputs", n=N_INPUTS, rate="15 Hz"))
    post = net.add(ConductanceLIF(name="post", n=N_POST, tau_m="10 ms", t_ref="2 ms"))
    net.add(Projection(name="syn", pre=inputs, post=post, target="g_e",
                       weight=("uniform", 0.0, G_MAX), w_min=0.0, w_max=G_MAX,
                       rule=PairSTDP(A_plus=0.01 * G_MAX, A_minus=0.0105 * G_MAX,
                                     tau_plus="20 ms", tau_minus="20 ms")))
    net.add(SpikeProbe(name="post_spikes", population="post"))
    net.add(SpikeProbe(name="input_spikes", population="inputs"))
    net.add(WeightProbe(name="W", projection="syn", sample_every="50 ms"))
    return net


net = build_network()
print(net)
print(net.populations["post"])          # the repr shows the parameters that differ from the defaults

# %%
ds = simulate(net, DURATION, dt="0.1 ms", seed=1)
trains = spike_trains(ds, "post")        # one array of spike times (s) per neuron
rates = [t.size / ds.attrs["t_stop"] for t in trains]
print("post rates (Hz):", np.round(rates, 1))

# %% [markdown]
# ## 2. The same network on brian2
#
# The brian2 backend lowers the same objects to a Brian2 network and, with the same seed,
# replays the same Poisson input spikes: spikes and weights agree with the numpy engine.

# %%
if RUN_BRIAN2:
    b2 = simulate(build_network(), DURATION, backend="brian2", dt="0.1 ms", seed=1)
    same = all(np.allclose(a, b, atol=1e-12) for a, b in zip(spike_trains(ds, "post"), spike_trains(b2, "post")))
    print(f"brian2 {b2.attrs['backend_version']}: same post spikes: {same}; "
          f"largest weight difference: {np.abs(b2['w_syn'].values - ds['w_syn'].values).max():.2e}")

# %% [markdown]
# ## 3. Plots
#
# `plastinet.plotting` has one function per view, each with `ax=`; `plot_spiking_overview`
# draws every panel a result has data for (it is also what `plastinet plot` draws).

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 6), layout="constrained")
plot_raster(ds, ax=axes[0, 0], max_neurons=100)
plot_population_rates(ds, ax=axes[0, 1], bin_width=0.05)
plot_weight_trajectories(ds, ax=axes[1, 0])
plot_weight_histogram(ds, ax=axes[1, 1])
plt.show()

# %% [markdown]
# ## 4. The same network as a model file
#
# A model file of `kind = "network"` has one table per object, named after it; `type` is the
# class and the other keys are its parameters. Nested objects (the rule) are inline tables.
# The file can be run from the command line (`plastinet run my_network.toml`), swept
# (`plastinet sweep my_network.toml --grid 'projections.syn.rule.tau_plus=10 ms,20 ms'`) and
# checked by the loader, which names the dotted key of every mistake.

# %%
MODEL = f"""
schema_version = 1
name = "my_network"
kind = "network"
description = "Poisson inputs onto conductance LIF neurons with additive pair STDP"
source = "notebook 09"

[run]
duration = "{DURATION}"
dt = "0.1 ms"
seed = 1

[populations.inputs]
type = "PoissonGroup"
n = {N_INPUTS}
rate = "15 Hz"

[populations.post]
type = "ConductanceLIF"
n = {N_POST}
tau_m = "10 ms"
t_ref = "2 ms"

[projections.syn]
pre = "inputs"
post = "post"
target = "g_e"
weight = ["uniform", 0.0, {G_MAX}]
w_min = 0.0
w_max = {G_MAX}
rule = {{ type = "pair_stdp", A_plus = {0.01 * G_MAX}, A_minus = {0.0105 * G_MAX}, tau_plus = "20 ms", tau_minus = "20 ms" }}

[probes.post_spikes]
type = "SpikeProbe"
population = "post"

[probes.input_spikes]
type = "SpikeProbe"
population = "inputs"

[probes.W]
type = "WeightProbe"
projection = "syn"
sample_every = "50 ms"
"""
workdir = Path(tempfile.mkdtemp(prefix="plastinet-nb09-"))
path = workdir / "my_network.toml"
path.write_text(MODEL)

model = load_model(path)
file_net, settings = model.spec
print("same network as in Python:", file_net.to_dict() == net.to_dict(), "| run settings:", settings)
from_file = model.run(progress=False)
print("same spikes as the Python run:",
      all(np.array_equal(a, b) for a, b in zip(spike_trains(from_file, "post"), trains)))

# %% [markdown]
# Overrides address any key by its dotted name (the command line's `--set`):

# %%
slower = load_model(path, ['populations.post.tau_m="20 ms"'])
print(slower.spec[0].populations["post"].tau_m, "s")

# %% [markdown]
# A typo is an error that names the key and what is allowed, before anything runs:

# %%
from plastinet.errors import ModelFileError

path.with_name("typo.toml").write_text(MODEL.replace('pre = "inputs"', 'pre = "input"'))
try:
    load_model(path.with_name("typo.toml"))
except ModelFileError as err:
    print(err)

# %% [markdown]
# ## 5. The result file
#
# `save_result` writes netCDF (what `plastinet run` writes); `load_result` reads it back.
# Sampled variables share the `time` axis; spikes are an **event table** on the `spike`
# dimension (`spike_time`, `spike_neuron`, `spike_population`). Read spikes with
# `spike_trains(ds, "post")` or `spike_events(ds, "post")`, never with
# `ds.where(ds.spike_population == "post")`: that broadcasts every sampled variable against
# the events (hundreds of GiB for a long run).

# %%
save_result(from_file, workdir / "my_network.nc")
result = load_result(workdir / "my_network.nc")
print({name: (var.dims, var.attrs["units"]) for name, var in result.data_vars.items()})
print("backend:", result.attrs["backend"], result.attrs["backend_version"], "| seed:", result.attrs["seed"])
post_events = spike_events(result, "post")
print(post_events.sizes["spike"], "post spikes; first at", float(post_events["spike_time"][0]), "s")

# %%
fig = plot_spiking_overview(result)
plt.show()
