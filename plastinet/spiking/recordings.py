"""Dataset layout of spiking runs, shared by the numpy engine and the brian2 backend.

* Spikes: an event table on the ``spike`` dimension: ``spike_time`` (s), ``spike_neuron``
  (index within its population), ``spike_population`` (population name), sorted by
  time, then population (insertion order), then neuron.
* Sampled probes share the ``time`` coordinate (s; the start time ``n dt`` of the
  recorded step, values taken in the ``end`` slot, as Brian2 labels them):
  ``StateProbe`` -> ``<probe>(time, <probe>_neuron)``; ``WeightProbe`` ->
  ``<probe>(time, <probe>_post, <probe>_pre)`` for all-to-all projections, else
  ``<probe>(time, <probe>_synapse)`` with ``<probe>_pre`` / ``<probe>_post`` index
  coordinates; ``ModulatorProbe`` -> ``<probe>(time)``.
* Final weights of each plastic projection: ``w_<projection>(<projection>_synapse)``
  with index coordinates ``<projection>_pre``, ``<projection>_post`` (synapses ordered by
  presynaptic index).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

from plastinet.results import variable
from plastinet.spiking.network import ModulatorProbe, Network, StateProbe, WeightProbe

__all__ = ["build_dataset", "spike_trains"]

_UNITS = {"V": "V", "A": "A", "1": "1", "S": "S"}


def _weight_units(network: Network, proj_name: str) -> str:
    proj = network.projections[proj_name]
    return proj.post.variables.get(proj.target, "1") if proj.target != "none" else "1"


def build_dataset(sim: Any, final_w: Mapping[str, np.ndarray]) -> xr.Dataset:
    """Assemble the Dataset of one run from an engine's records.

    ``sim`` provides ``network``, ``dt``, ``_spikes`` (population -> list of (steps,
    neurons)), ``_samples`` (probe -> list of arrays), ``_sample_times`` (steps) and
    ``projs`` (name -> object with ``pre``, ``post``, ``dense``, ``n_pre``, ``n_post`` and, for
    projections with a delay, ``delay_steps`` per synapse: recorded as ``delay_<projection>``).
    """
    net: Network = sim.network
    dt = sim.dt
    data: dict[str, xr.Variable] = {}
    coords: dict[str, xr.Variable] = {}
    pop_order = list(net.populations)
    t_l, n_l, p_l = [], [], []
    for pop, chunks in sim._spikes.items():
        if chunks:
            s = np.concatenate([c[0] for c in chunks])
            i = np.concatenate([c[1] for c in chunks])
        else:
            s = np.zeros(0, np.int64)
            i = np.zeros(0, np.int64)
        t_l.append(s)
        n_l.append(i)
        p_l.append(np.full(s.size, pop_order.index(pop)))
    if t_l:
        steps, neur, popi = np.concatenate(t_l), np.concatenate(n_l), np.concatenate(p_l)
    else:
        steps = neur = popi = np.zeros(0, np.int64)
    order = np.lexsort((neur, popi, steps))
    steps, neur, popi = steps[order], neur[order], popi[order]
    names = np.array(pop_order + [""], dtype=object)[popi] if popi.size else np.zeros(0, dtype=object)
    data["spike_time"] = variable("spike", steps * dt, "s", "spike time")
    data["spike_neuron"] = variable("spike", neur.astype(np.int64), "1", "neuron index within its population")
    data["spike_population"] = variable("spike", names.astype(str), "1", "population of the spiking neuron")
    times = np.asarray(sim._sample_times, dtype=np.int64) * dt
    coords["time"] = variable("time", times, "s", "time of the recorded step")
    for probe in sim.sampled:
        rows = sim._samples[probe.name]
        name = probe.name
        if isinstance(probe, StateProbe):
            pop = net.populations[probe.population]
            arr = np.array(rows).reshape(len(rows), -1) if rows else np.zeros((0, 0))
            idx = probe.indices if probe.indices is not None else np.arange(pop.n)
            if not rows:
                arr = np.zeros((0, idx.size))
            data[name] = variable(("time", f"{name}_neuron"), arr, pop.variables[probe.variable],
                                  f"{probe.variable} of {probe.population}")
            coords[f"{name}_neuron"] = variable(f"{name}_neuron", np.asarray(idx), "1", "neuron index")
        elif isinstance(probe, WeightProbe):
            p = sim.projs[probe.projection]
            arr = np.array(rows).reshape(len(rows), -1) if rows else np.zeros((0, p.w.size))
            units = _weight_units(net, probe.projection)
            if p.dense:
                arr = arr.reshape(len(rows), p.n_pre, p.n_post).transpose(0, 2, 1)
                data[name] = variable(("time", f"{name}_post", f"{name}_pre"), arr, units,
                                      f"weights of {probe.projection}")
                coords[f"{name}_post"] = variable(f"{name}_post", np.arange(p.n_post), "1", "post index")
                coords[f"{name}_pre"] = variable(f"{name}_pre", np.arange(p.n_pre), "1", "pre index")
            else:
                data[name] = variable(("time", f"{name}_synapse"), arr, units, f"weights of {probe.projection}")
                coords[f"{name}_pre"] = variable(f"{name}_synapse", p.pre, "1", "pre index")
                coords[f"{name}_post"] = variable(f"{name}_synapse", p.post, "1", "post index")
        elif isinstance(probe, ModulatorProbe):
            data[name] = variable("time", np.asarray(rows, dtype=np.float64).reshape(-1), "1",
                                  f"modulator {probe.modulator}")
    for proj, w in final_w.items():
        p = sim.projs[proj]
        data[f"w_{proj}"] = variable(f"{proj}_synapse", w, _weight_units(net, proj), f"final weights of {proj}")
        coords[f"{proj}_pre"] = variable(f"{proj}_synapse", p.pre, "1", "pre index")
        coords[f"{proj}_post"] = variable(f"{proj}_synapse", p.post, "1", "post index")
    for proj, p in sim.projs.items():
        steps = getattr(p, "delay_steps", None)
        if steps is None:
            continue
        data[f"delay_{proj}"] = variable(f"{proj}_synapse", steps * dt, "s",
                                         f"delay of {proj}, rounded to whole steps")
        coords[f"{proj}_pre"] = variable(f"{proj}_synapse", p.pre, "1", "pre index")
        coords[f"{proj}_post"] = variable(f"{proj}_synapse", p.post, "1", "post index")
    return xr.Dataset(data, coords=coords)


def spike_trains(ds: xr.Dataset, population: str, n: int | None = None) -> list[np.ndarray]:
    """Per-neuron spike times (s) of ``population`` from a result's event table."""
    sel = ds["spike_population"].values == population
    t, i = ds["spike_time"].values[sel], ds["spike_neuron"].values[sel]
    n = int(i.max()) + 1 if n is None and i.size else (n or 0)
    return [t[i == k] for k in range(n)]
