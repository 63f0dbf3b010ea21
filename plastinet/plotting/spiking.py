"""Plots of spiking results: raster, population rates, weight trajectories, final weights.

Each function takes a result Dataset in the layout of :mod:`plastinet.spiking.recordings`
(any spiking run: :func:`plastinet.simulate`, a ``network`` model, most protocols) and an
optional matplotlib ``ax``, labels the axes with units and returns the Axes.
:func:`plot_spiking_overview` draws the panels a result has data for.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np
import xarray as xr

from plastinet.errors import ValidationError
from plastinet.plotting.analysis import _ax

__all__ = ["plot_raster", "plot_population_rates", "plot_weight_trajectories", "plot_weight_histogram",
           "plot_traces", "plot_spiking_overview", "spike_populations", "weight_probes", "final_weights",
           "sampled_traces", "is_spiking_result"]


def spike_populations(ds: xr.Dataset) -> list[str]:
    """Names of the populations with spikes in the result's event table, in order of appearance."""
    if "spike_population" not in ds:
        return []
    names = ds["spike_population"].values.astype(str)
    return [n for n in dict.fromkeys(names.tolist()) if n]        # "" pads the event tables of sweeps


def weight_probes(ds: xr.Dataset) -> list[str]:
    """Names of the sampled weight variables (``WeightProbe`` s: ``time`` plus ``_pre`` / ``_synapse`` dims)."""
    return [str(n) for n, v in ds.data_vars.items()
            if v.dims and v.dims[0] == "time" and len(v.dims) > 1
            and any(d.endswith(("_pre", "_synapse")) for d in v.dims[1:])]


def final_weights(ds: xr.Dataset) -> list[str]:
    """Names of the final-weight variables ``w_<projection>``."""
    return [str(n) for n, v in ds.data_vars.items()
            if str(n).startswith("w_") and v.dims == (f"{str(n)[2:]}_synapse",)]


def sampled_traces(ds: xr.Dataset) -> list[str]:
    """Names of the sampled state and modulator variables (``StateProbe`` s, ``ModulatorProbe`` s)."""
    weights = set(weight_probes(ds))
    return [str(n) for n, v in ds.data_vars.items() if str(n) not in weights and v.dims
            and v.dims[0] == "time" and (len(v.dims) == 1 or (len(v.dims) == 2 and v.dims[1].endswith("_neuron")))]


def is_spiking_result(ds: xr.Dataset) -> bool:
    """Whether ``ds`` has the layout of a spiking run (spikes, sampled probes or final weights) to draw."""
    return bool(spike_populations(ds) or weight_probes(ds) or final_weights(ds)
                or ("spike_time" in ds and sampled_traces(ds)))


def _duration(ds: xr.Dataset) -> float:
    for attr in ("duration", "t_stop"):          # a network model's run, any engine's run
        if ds.attrs.get(attr) is not None:
            return float(ds.attrs[attr])
    t = ds["spike_time"].values
    return float(t.max()) + float(ds.attrs.get("dt", 0.0) or 0.0) if t.size else 0.0


def _check(ds: xr.Dataset, names: Sequence[str], wanted: str | None, what: str) -> list[str]:
    if wanted is None:
        return list(names)
    if wanted not in names:
        raise ValidationError("plastinet.plotting", what, wanted,
                              f"this result has: {', '.join(names) or 'none'}")
    return [wanted]


def plot_raster(ds: xr.Dataset, population: str | None = None, ax: Any = None,
                max_neurons: int = 200) -> Any:
    """Spike raster: time against neuron, one colour and block of rows per population.

    Parameters
    ----------
    ds : xarray.Dataset
        A spiking result (``spike_time``, ``spike_neuron``, ``spike_population``).
    population : str, optional
        Draw only this population (default: every population with spikes).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    max_neurons : int
        At most this many neurons (the lowest indices) per population are drawn.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax, (6.0, 3.6))
    pops = _check(ds, spike_populations(ds), population, "population")
    t, i = ds["spike_time"].values, ds["spike_neuron"].values
    names = ds["spike_population"].values.astype(str)
    offset, ticks = 0, []
    for k, pop in enumerate(pops):
        sel = (names == pop) & (i < max_neurons)
        rows = int(i[names == pop].max()) + 1 if np.any(names == pop) else 0
        rows = min(rows, max_neurons)
        ax.scatter(t[sel], i[sel] + offset, s=2, marker="|", color=f"C{k}", label=pop)
        ticks.append((offset + rows / 2, pop))
        offset += rows
    ax.set_yticks([y for y, _ in ticks], [p for _, p in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"neuron (first {max_neurons} per population)" if offset >= max_neurons else "neuron")
    ax.set_xlim(0, max(_duration(ds), 1e-12))
    return ax


def plot_population_rates(ds: xr.Dataset, population: str | None = None, ax: Any = None,
                          bin_width: float | None = None, n: dict[str, int] | None = None) -> Any:
    """Mean firing rate per neuron of each population, in time bins.

    Parameters
    ----------
    ds : xarray.Dataset
        A spiking result.
    population : str, optional
        Draw only this population (default: every population with spikes).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    bin_width : float, optional
        Bin width (s); default: the run split into 50 bins.
    n : dict of str -> int, optional
        Neurons per population; default from the result's ``network_spec`` attribute, else
        the highest spiking index + 1.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax, (6.0, 3.0))
    pops = _check(ds, spike_populations(ds), population, "population")
    duration = _duration(ds)
    width = bin_width or duration / 50 or 1.0
    edges = np.arange(0.0, duration + width * 0.5, width) if duration > 0 else np.array([0.0, width])
    sizes = dict(n or _population_sizes(ds))
    names = ds["spike_population"].values.astype(str)
    for k, pop in enumerate(pops):
        sel = names == pop
        count = sizes.get(pop) or int(ds["spike_neuron"].values[sel].max()) + 1
        hist, _ = np.histogram(ds["spike_time"].values[sel], bins=edges)
        ax.stairs(hist / (count * width), edges, color=f"C{k}", lw=1.5, label=f"{pop} (n={count})")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"rate per neuron (Hz), {width * 1e3:g} ms bins")
    ax.legend(fontsize=8)
    return ax


def _population_sizes(ds: xr.Dataset) -> dict[str, int]:
    import json

    try:
        spec = json.loads(str(ds.attrs.get("network_spec", "{}")))
        return {p["name"]: int(p["n"]) for p in spec.get("populations", [])}
    except (ValueError, TypeError, KeyError):
        return {}


def plot_weight_trajectories(ds: xr.Dataset, probe: str | None = None, ax: Any = None,
                             max_lines: int = 50) -> Any:
    """Sampled weights against time: up to ``max_lines`` synapses and the mean of all.

    Parameters
    ----------
    ds : xarray.Dataset
        A result with a ``WeightProbe`` variable.
    probe : str, optional
        The weight probe to draw (default: the first).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    max_lines : int
        Synapses drawn individually (evenly spaced over all synapses).

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax, (6.0, 3.0))
    probes = weight_probes(ds)
    if not probes:
        raise ValidationError("plastinet.plotting", "probe", probe, "this result has no weight probe")
    name = _check(ds, probes, probe, "probe")[0]
    W = ds[name]
    flat = W.values.reshape(W.shape[0], -1)
    t = ds["time"].values
    pick = np.unique(np.linspace(0, flat.shape[1] - 1, min(max_lines, flat.shape[1])).astype(int))
    ax.plot(t, flat[:, pick], color="0.6", lw=0.6)
    ax.plot(t, flat.mean(axis=1), color="C3", lw=2, label=f"mean of {flat.shape[1]} synapses")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{W.attrs.get('long_name', name)} ({W.attrs.get('units', '1')})")
    ax.legend(fontsize=8)
    return ax


def plot_weight_histogram(ds: xr.Dataset, projection: str | None = None, ax: Any = None,
                          bins: int = 40) -> Any:
    """Histogram of the final weights ``w_<projection>`` of plastic projections.

    Parameters
    ----------
    ds : xarray.Dataset
        A spiking result with final weights.
    projection : str, optional
        Draw only this projection (default: every plastic projection).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    bins : int
        Number of bins.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax, (5.0, 3.0))
    names = [n[2:] for n in final_weights(ds)]
    units = "1"
    for k, proj in enumerate(_check(ds, names, projection, "projection")):
        w = ds[f"w_{proj}"]
        units = w.attrs.get("units", "1")
        ax.hist(w.values, bins=bins, color=f"C{k}", alpha=0.7, label=f"{proj} ({w.size} synapses)")
    ax.set_xlabel(f"final weight ({units})")
    ax.set_ylabel("synapses (1)")
    ax.legend(fontsize=8)
    return ax


def plot_traces(ds: xr.Dataset, name: str | None = None, ax: Any = None, max_lines: int = 5) -> Any:
    """A sampled state variable (``StateProbe``: up to ``max_lines`` neurons) or modulator against time.

    Parameters
    ----------
    ds : xarray.Dataset
        A spiking result with a ``StateProbe`` or ``ModulatorProbe`` variable.
    name : str, optional
        The variable (default: the first).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    max_lines : int
        Neurons drawn at most (the first).

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax, (6.0, 3.0))
    names = sampled_traces(ds)
    if not names:
        raise ValidationError("plastinet.plotting", "name", name, "this result has no sampled state or modulator")
    var = ds[_check(ds, names, name, "name")[0]]
    values = var.values.reshape(var.shape[0], -1)[:, :max_lines]
    for i in range(values.shape[1]):
        label = f"neuron {int(var[var.dims[1]].values[i])}" if var.ndim == 2 else None
        ax.plot(ds["time"].values, values[:, i], lw=1, label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{var.attrs.get('long_name', var.name)} ({var.attrs.get('units', '1')})")
    if var.ndim == 2:
        ax.legend(fontsize=8)
    return ax


def plot_spiking_overview(ds: xr.Dataset, fig: Any = None) -> Any:
    """The standard figure of a spiking result: every panel the result has data for.

    Raster and population rates (if spikes were recorded), each sampled state or modulator
    (``StateProbe``, ``ModulatorProbe``), weight trajectories (if a ``WeightProbe`` was),
    final-weight histograms (if a projection is plastic).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    panels: list[Any] = []
    if spike_populations(ds):
        panels += [plot_raster, plot_population_rates]
    panels += [functools.partial(plot_traces, name=n) for n in sampled_traces(ds)]
    if weight_probes(ds):
        panels.append(plot_weight_trajectories)
    if final_weights(ds):
        panels.append(plot_weight_histogram)
    if not panels:
        raise ValidationError("plastinet.plotting", "result", ds.attrs.get("model_name", "dataset"),
                              "a spiking result with spikes, a weight probe or final weights to draw")
    fig = fig or plt.figure(figsize=(7, 2.4 * len(panels)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1))
    for panel, ax in zip(panels, axes):
        panel(ds, ax=ax)
    return fig
