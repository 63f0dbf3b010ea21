"""Plasticity traces: per-step weight changes with the local variables that drive them.

:func:`plasticity_trace` turns a run into the Dataset :func:`~plastinet.analysis.fit_rule`
reads. Two call forms:

* ``plasticity_trace(rule, q, k, v, beta=..., ...)``: runs the rate engine
  (:func:`plastinet.fwp.apply`, one step at a time, so that every recorded change is the
  engine's own) and records, for one batch element and head:

  ==================  ==============  ===================================================
  variable            dims            meaning
  ==================  ==============  ===================================================
  ``dW``              time, post, pre ``W_t - W_{t-1}``
  ``W``               time, post, pre ``W_{t-1}`` (before the change)
  ``pre``             time, pre       ``phi(k_t)``
  ``post``            time, post      ``v_t`` (the teacher drive of the post neurons); for
                                      :class:`~plastinet.fwp.Oja` the rule's own output
                                      ``u_t = W_{t-1} phi(k_t)``
  ``prediction``      time, post      ``W_{t-1} phi(k_t)``
  ``error``           time, post      ``v_t - W_{t-1} phi(k_t)``
  ``modulator``       time            ``beta_t`` (``m_t`` for ThreeFactor, which also
                                      records ``beta``)
  ``alpha``           time            the scalar decay gate, for decayed/gated rules
  ``y``               time, post      the read-out ``W_t phi(q_t)``
  ==================  ==============  ===================================================

* ``plasticity_trace(layer, x)``: a :class:`~plastinet.fwp.FastWeightLayer` (trained or
  not) run on inputs ``x (B, T, d_in)``. The programmer's outputs ``q, k, v`` and gates
  are recorded with :meth:`FastWeightLayer.run` and replayed through the rate engine as
  above (one ``trial`` and ``head``). Linear, MLP and recurrent programmers are supported
  (the fast-weight update depends only on ``k, v`` and the gates); the self-referential
  programmer is not.

* ``plasticity_trace(dataset)``: a recording with ``W (time, post, pre)`` (weights after
  each recorded step) and the activities ``pre (time, pre)`` and ``post (time, post)``
  (names changeable with ``pre=``, ``post=``); returns ``dW_t = W_t - W_{t-1}`` with
  ``W_{t-1}`` and the activities at ``t`` (steps 1..T-1), plus any ``modulator`` and
  ``error`` variables of the recording. This is how spiking runs with weight probes are
  analysed (pass the filtered rates or traces as ``pre``/``post``).

* ``plasticity_trace(spiking_result, projection="syn")``: a spiking run (numpy engine or
  brian2 backend, the layout of :mod:`plastinet.spiking.recordings`) with a ``WeightProbe`` on
  an all-to-all projection. The probe's samples define bins ``(t_{k-1}, t_k]``; ``dW`` is
  the weight change over a bin, ``W`` the weight at its start, ``pre``/``post`` the
  populations' rates in the bin (spike counts / bin width, Hz; a population needs a
  ``SpikeProbe``, or a ``StateProbe``, e.g. of ``RateUnits``, whose value at the bin start
  is used) and ``modulator`` the ``ModulatorProbe`` value at the bin start. For pair STDP
  between Poisson neurons the expected change per bin is ``(A+ tau+ - A- tau-) x y
  width`` (Kempter et al. 1999), i.e. a Hebbian (or anti-Hebbian) rate rule.

Rate quantities of the rate engine are dimensionless with the step index as time.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import ShapeError, UnstableUpdateWarning, UnsupportedError, ValidationError
from plastinet.fwp import apply
from plastinet.fwp.functional import State, prepare
from plastinet.fwp.rules import DecayedHebbian, GatedDelta, Oja, Rule, ThreeFactor

__all__ = ["plasticity_trace"]

_OBJ = "plasticity_trace"


def _var(dims: tuple[str, ...], data: np.ndarray, long_name: str, units: str = "1") -> tuple:
    return dims, np.asarray(data, dtype=np.float64), {"units": units, "long_name": long_name}


def _as_bhtd(x: Any, name: str) -> Any:
    """Promote ``(T, d)`` arrays to ``(1, 1, T, d)`` and ``(T,)`` gates to ``(1, 1, T)``."""
    if x is None:
        return None
    arr = np.asarray(x)
    if arr.ndim in (1, 2) and name in ("beta", "alpha", "modulator"):
        return arr[None, None] if arr.ndim == 1 or name == "alpha" else arr
    return arr[None, None] if arr.ndim == 2 else arr


def _from_rule(rule: Rule | str, q: Any, k: Any, v: Any, beta: Any, alpha: Any, modulator: Any,
               initial_state: Any, batch: int, head: int) -> xr.Dataset:
    q, k, v = (_as_bhtd(a, n) for a, n in ((q, "q"), (k, "k"), (v, "v")))
    gates = {n: _as_bhtd(g, n) for n, g in (("beta", beta), ("alpha", alpha), ("modulator", modulator))}
    gates = {n: g for n, g in gates.items() if g is not None}
    p = prepare(rule, q, k, v, initial_state=initial_state, **gates)   # validates everything once
    rule = p.rule
    B, H, T = p.shape
    if not (0 <= batch < B and 0 <= head < H):
        raise ValidationError(_OBJ, "batch/head", (batch, head), f"expected 0 <= batch < {B}, 0 <= head < {H}")
    n = batch * H + head
    state: Any = State(*(None if s is None else s.reshape((B, H) + s.shape[1:]) for s in p.state))
    d_v, d_phi = p.state.W.shape[1:]
    Ws = np.empty((T, d_v, d_phi))
    dWs = np.empty((T, d_v, d_phi))
    ys = np.empty((T, d_v))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in range(T):
            step = {name: g[:, :, t: t + 1] for name, g in gates.items()}
            y, new = apply(rule, q[:, :, t: t + 1], k[:, :, t: t + 1], v[:, :, t: t + 1],
                           initial_state=state, return_state=True, **step)
            Ws[t] = state.W[batch, head]
            dWs[t] = new.W[batch, head] - state.W[batch, head]
            ys[t] = y[batch, head, 0]
            state = new
    unstable = [w for w in caught if issubclass(w.category, UnstableUpdateWarning)]
    for w in unstable[:1] + [w for w in caught if not issubclass(w.category, UnstableUpdateWarning)]:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)   # the engine warns per step
    pre = p.k[n].astype(np.float64)
    pred = np.einsum("tij,tj->ti", Ws, pre)
    vals = p.v[n].astype(np.float64)
    is_oja = isinstance(rule, Oja)
    data = {
        "dW": _var(("time", "post", "pre"), dWs, "weight change W_t - W_{t-1}"),
        "W": _var(("time", "post", "pre"), Ws, "weight before the change W_{t-1}"),
        "pre": _var(("time", "pre"), pre, "presynaptic activity phi(k_t)"),
        "post": _var(("time", "post"), pred if is_oja else vals,
                     "postsynaptic activity u_t = W_{t-1} phi(k_t)" if is_oja else "postsynaptic target v_t"),
        "prediction": _var(("time", "post"), pred, "prediction W_{t-1} phi(k_t)"),
        "error": _var(("time", "post"), vals - pred, "error v_t - W_{t-1} phi(k_t)"),
        "y": _var(("time", "post"), ys, "read-out W_t phi(q_t)"),
    }
    if isinstance(rule, ThreeFactor):
        data["modulator"] = _var(("time",), p.modulator[n], "neuromodulator m_t")
        data["beta"] = _var(("time",), p.beta[n], "programmed learning rate beta_t")
    else:
        data["modulator"] = _var(("time",), p.beta[n], "programmed learning rate beta_t")
    if isinstance(rule, (DecayedHebbian, GatedDelta)) and p.alpha.shape[-1] == 1:
        data["alpha"] = _var(("time",), p.alpha[n, :, 0], "decay gate alpha_t")
    coords = {"time": ("time", np.arange(T), {"units": "1", "long_name": "step"})}
    return xr.Dataset(data, coords=coords, attrs={"rule": type(rule).__name__, "equation": rule.equation,
                                                  "batch": batch, "head": head, "source": "fwp.apply"})


def _from_layer(layer: Any, x: Any, trial: int, head: int) -> xr.Dataset:
    if x is None:
        raise ValidationError(_OBJ, "x", None, "a FastWeightLayer needs its inputs x (B, T, d_in)")
    c = layer.config
    if c.programmer == "srwm":
        raise UnsupportedError(_OBJ, "run", layer, "the self-referential programmer reprograms its own "
                                                   "matrix; use a linear, MLP or recurrent programmer")
    gates = tuple(g for g in ("beta", "alpha", "mod") if g in c.gates)
    rec = layer.run(x, record=("q", "k", "v") + gates)
    if not (0 <= trial < rec.sizes["trial"] and 0 <= head < rec.sizes["head"]):
        raise ValidationError(_OBJ, "trial/head", (trial, head),
                              f"expected 0 <= trial < {rec.sizes['trial']}, 0 <= head < {rec.sizes['head']}")
    pick = {n: rec[n].isel(trial=trial, head=head).values for n in ("q", "k", "v") + gates}
    out = _from_rule(layer.rule, pick["q"], pick["k"], pick["v"], pick.get("beta"), pick.get("alpha"),
                     pick.get("mod"), None, 0, 0)
    out.attrs.update({"source": "FastWeightLayer", "programmer": c.programmer, "trial": trial, "head": head})
    return out


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
    """The network description of a spiking result (``model_spec`` with populations), if any."""
    import json

    spec = ds.attrs.get("model_spec")
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


def plasticity_trace(run: Any, q: Any = None, k: Any = None, v: Any = None, *, x: Any = None,
                     beta: Any = None, alpha: Any = None, modulator: Any = None, initial_state: Any = None,
                     batch: int = 0, head: int = 0, pre: str = "pre", post: str = "post",
                     projection: str | None = None) -> xr.Dataset:
    """Per-step weight changes and local variables of a run, for :func:`fit_rule`.

    Parameters
    ----------
    run : Rule, str, FastWeightLayer or xarray.Dataset
        A rate rule (object or registry key), run on ``q, k, v`` with the rate engine; a
        fast-weight layer, run on ``x``; or a recording with ``W (time, post, pre)`` and
        activities (see the module docstring).
    q, k, v : ndarray, optional
        Rate run inputs, ``(B, H, T, d)`` as for :func:`plastinet.fwp.apply`, or ``(T, d)``.
    x : ndarray, shape (B, T, d_in), optional
        Inputs of a FastWeightLayer (also accepted as the second positional argument).
    beta, alpha, modulator : ndarray, optional
        Gates as for :func:`plastinet.fwp.apply` (``(T,)`` accepted for a single sequence).
    initial_state : ndarray or State, optional
        Fast weights before step 0.
    batch, head : int
        Which sequence (trial of a layer) and head to record.
    pre, post : str
        Names of the activity variables of a recording.
    projection : str, optional
        For a spiking result (:func:`plastinet.spiking.run`, ``plastinet.simulate`` or the
        brian2 backend): the projection to analyse (default: the only one with a
        ``WeightProbe``); see the module docstring.

    Returns
    -------
    xarray.Dataset
        ``dW``, ``W``, ``pre``, ``post`` and, where known, ``error``, ``modulator`` (see the
        module docstring).

    Raises
    ------
    ValidationError
        For missing inputs (the message names them) and any input :func:`~plastinet.fwp.apply`
        rejects.

    Examples
    --------
    >>> import numpy as np
    >>> from plastinet.analysis import plasticity_trace
    >>> rng = np.random.default_rng(0)
    >>> k = rng.normal(size=(50, 4)); v = rng.normal(size=(50, 3))
    >>> k /= np.linalg.norm(k, axis=1, keepdims=True)
    >>> ds = plasticity_trace("delta", k, k, v, beta=rng.uniform(0.1, 1.0, 50))
    >>> ds.dW.dims
    ('time', 'post', 'pre')
    """
    if isinstance(run, xr.Dataset):
        spec = _spiking_spec(run)
        if spec is not None and (projection is not None or "W" not in run.variables or pre not in run.variables):
            return _from_spiking(run, spec, projection)
        return _from_recording(run, pre, post)
    from plastinet.fwp.layer import FastWeightLayer

    if isinstance(run, FastWeightLayer):
        return _from_layer(run, x if x is not None else q, batch, head)
    if isinstance(run, (Rule, str)):
        missing = [n for n, a in (("q", q), ("k", k), ("v", v)) if a is None]
        if missing:
            raise ValidationError(_OBJ, ", ".join(missing), None,
                                  "a rate run needs q, k and v arrays ((B, H, T, d) or (T, d))")
        return _from_rule(run, q, k, v, beta, alpha, modulator, initial_state, batch, head)
    raise ValidationError(_OBJ, "run", run, "expected a rate rule (object or name) with q, k, v, a "
                                            "FastWeightLayer with x, or an xarray.Dataset recording "
                                            "with W (time, post, pre)")
