"""Plasticity traces of recordings: per-step weight changes with the activities that drive them.

:func:`recording_trace` turns a recorded run (any engine or backend) into the Dataset
:func:`~plastinet.analysis.fit_rule` reads; :func:`plastinet.experiments.plasticity_trace`
also runs rules and fast-weight layers and documents the variables. Two inputs:

* a recording with ``W (time, post, pre)`` (weights after each recorded step) and the
  activities ``pre (time, pre)`` and ``post (time, post)`` (names changeable with
  ``pre=``, ``post=``): ``dW_t = W_t - W_{t-1}`` with ``W_{t-1}`` and the activities at
  ``t`` (steps 1..T-1), plus any ``modulator`` and ``error`` variables of the recording;
* a spiking result (the layout of :mod:`plastinet.spiking.recordings`) with a
  ``WeightProbe`` on an all-to-all projection: ``dW`` over the bins between the probe's
  samples, ``W`` at a bin's start, ``pre``/``post`` the populations' rates in the bin (Hz)
  and ``modulator`` the ``ModulatorProbe`` value at the bin start.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from plastinet.errors import ShapeError, UnsupportedError, ValidationError

__all__ = ["recording_trace"]

_OBJ = "plasticity_trace"


def _var(dims: tuple[str, ...], data: np.ndarray, long_name: str, units: str = "1") -> tuple:
    return dims, np.asarray(data, dtype=np.float64), {"units": units, "long_name": long_name}


def _from_recording(ds: xr.Dataset, pre: str, post: str) -> xr.Dataset:
    missing = [n for n in ("W", pre, post) if n not in ds.variables]
    if missing:
        raise ValidationError(_OBJ, "run", f"<Dataset with {sorted(map(str, ds.data_vars))}>",
                              f"missing {', '.join(missing)}: a recording needs W (time, post, pre) and the "
                              f"activities {pre!r} (time, pre) and {post!r} (time, post)")
    W = ds["W"]
    if set(W.dims) != {"time", "post", "pre"}:
        raise ShapeError(_OBJ, "run['W']", W, f"expected dims (time, post, pre), got {W.dims}")
    if W.sizes["time"] < 2:
        raise ValidationError(_OBJ, "run", f"<Dataset with time={W.sizes['time']}>",
                              "needs at least 2 recorded time points of W")
    W = W.transpose("time", "post", "pre")
    after, before = W.isel(time=slice(1, None)), W.isel(time=slice(None, -1))
    out = xr.Dataset({"dW": (("time", "post", "pre"), after.values - before.values,
                             {"units": W.attrs.get("units", "1"), "long_name": "weight change"}),
                      "W": (("time", "post", "pre"), before.values,
                            {"units": W.attrs.get("units", "1"), "long_name": "weight before the change"})},
                     coords={"time": after["time"]} if "time" in W.coords else None)
    for name, new, dims in ((pre, "pre", ("time", "pre")), (post, "post", ("time", "post")),
                            ("modulator", "modulator", ("time",)), ("error", "error", ("time", "post"))):
        if name not in ds.variables:
            continue
        da = ds[name]
        if set(da.dims) != set(dims):
            raise ShapeError(_OBJ, f"run[{name!r}]", da, f"expected dims {dims}, got {da.dims}")
        out[new] = (dims, da.transpose(*dims).values[1:], dict(da.attrs))
    out.attrs.update(ds.attrs)
    return out


def _spiking_spec(ds: xr.Dataset) -> dict | None:
    """The network description of a spiking result (``network_spec`` of a model run, else
    ``model_spec``, with populations), if any."""
    import json

    spec = ds.attrs.get("network_spec", ds.attrs.get("model_spec"))
    if not isinstance(spec, str) or "spike_time" not in ds.variables:
        return None
    try:
        spec = json.loads(spec)
    except ValueError:
        return None
    return spec if isinstance(spec, dict) and "populations" in spec and "probes" in spec else None


def _from_spiking(ds: xr.Dataset, spec: dict, projection: str | None) -> xr.Dataset:
    """Binned plasticity trace of one projection of a spiking result (numpy engine or brian2)."""
    probes = spec["probes"]
    wprobes = [pr for pr in probes if pr.get("type") == "WeightProbe"]
    if projection is None:
        if len(wprobes) != 1:
            raise ValidationError(_OBJ, "projection", None,
                                  "a spiking result needs projection=<name> naming the projection to analyse "
                                  f"(weight probes on: {[pr['projection'] for pr in wprobes]})")
        projection = wprobes[0]["projection"]
    proj = next((pj for pj in spec["projections"] if pj["name"] == projection), None)
    if proj is None:
        raise ValidationError(_OBJ, "projection", projection,
                              f"known projections: {[pj['name'] for pj in spec['projections']]}")
    probe = next((pr for pr in wprobes if pr["projection"] == projection), None)
    if probe is None:
        raise ValidationError(_OBJ, "projection", projection,
                              "a spiking result needs a WeightProbe on the projection (weights sampled "
                              "every sample_every) to give the weight changes")
    name = probe["name"]
    W = ds[name]
    if W.dims != ("time", f"{name}_post", f"{name}_pre"):
        raise UnsupportedError(_OBJ, "projection", projection,
                               "needs an all-to-all projection (weights recorded as (time, post, pre))")
    if W.sizes["time"] < 2:
        raise ValidationError(_OBJ, "run", f"<Dataset with time={W.sizes['time']}>",
                              "needs at least 2 samples of the weight probe")
    t = np.asarray(ds["time"].values, dtype=np.float64)
    dt = float(ds.attrs["dt"])
    steps = np.rint(t / dt).astype(np.int64)
    width = np.diff(steps) * dt                                        # (K,) s
    pops = {pp["name"]: pp for pp in spec["populations"]}
    spike_probes = {pr["population"] for pr in probes if pr.get("type") == "SpikeProbe"}

    def activity(pop_name: str, side: str) -> tuple[np.ndarray, str, str]:
        n = int(pops[pop_name]["n"])
        if pop_name in spike_probes:
            sel = ds["spike_population"].values == pop_name
            st = np.rint(ds["spike_time"].values[sel] / dt).astype(np.int64)
            nn = ds["spike_neuron"].values[sel].astype(np.int64)
            k = np.searchsorted(steps, st, side="left")                 # bin k: steps (s_{k-1}, s_k]
            ok = (k >= 1) & (k < steps.size)
            counts = np.zeros((steps.size - 1, n))
            np.add.at(counts, (k[ok] - 1, nn[ok]), 1.0)
            return counts / width[:, None], "Hz", f"{side}synaptic rate of {pop_name} in the bin"
        state = [pr for pr in probes if pr.get("type") == "StateProbe" and pr["population"] == pop_name]
        if state:
            pick = next((pr for pr in state if pr["variable"] == "rate"), state[0])
            da = ds[pick["name"]]
            if da.sizes[f"{pick['name']}_neuron"] != n:
                raise ValidationError(_OBJ, "run", pick["name"], f"the StateProbe on {pop_name!r} must record "
                                                                 "every neuron")
            return (np.asarray(da.values[:-1], dtype=np.float64), da.attrs.get("units", "1"),
                    f"{pick['variable']} of {pop_name} at the start of the bin")
        raise ValidationError(_OBJ, "run", pop_name,
                              f"needs a SpikeProbe (or a StateProbe) on the {side}synaptic population "
                              f"{pop_name!r} of projection {projection!r}")

    x, x_units, x_name = activity(proj["pre"], "pre")
    y, y_units, y_name = activity(proj["post"], "post")
    Wv = np.asarray(W.values, dtype=np.float64)
    units = W.attrs.get("units", "1")
    out = xr.Dataset(
        {"dW": _var(("time", "post", "pre"), Wv[1:] - Wv[:-1], "weight change over the bin", units),
         "W": _var(("time", "post", "pre"), Wv[:-1], "weight at the start of the bin", units),
         "pre": _var(("time", "pre"), x, x_name, x_units),
         "post": _var(("time", "post"), y, y_name, y_units)},
        coords={"time": ("time", t[1:], {"units": "s", "long_name": "end of the bin"})},
        attrs={"source": "spiking run", "projection": projection, "backend": str(ds.attrs.get("backend", "")),
               "bin_width": float(np.median(width))})
    for pr in probes:
        if pr.get("type") == "ModulatorProbe":
            vals = np.asarray(ds[pr["name"]].values, dtype=np.float64)[:-1]
            key = "modulator" if "modulator" not in out else pr["name"]
            out[key] = _var(("time",), vals, f"modulator {pr['modulator']} at the start of the bin")
    return out


def recording_trace(ds: xr.Dataset, *, pre: str = "pre", post: str = "post",
                    projection: str | None = None) -> xr.Dataset:
    """Per-step (or per-bin) weight changes and activities of a recording.

    Parameters
    ----------
    ds : xarray.Dataset
        A recording with ``W (time, post, pre)`` and activities, or a spiking result with
        a ``WeightProbe`` (see the module docstring).
    pre, post : str
        Names of the activity variables of a recording.
    projection : str, optional
        For a spiking result: the projection to analyse (default: the only one with a
        ``WeightProbe``).

    Returns
    -------
    xarray.Dataset
        ``dW``, ``W``, ``pre``, ``post`` and, where recorded, ``error``, ``modulator``.
    """
    spec = _spiking_spec(ds)
    if spec is not None and (projection is not None or "W" not in ds.variables or pre not in ds.variables):
        return _from_spiking(ds, spec, projection)
    return _from_recording(ds, pre, post)
