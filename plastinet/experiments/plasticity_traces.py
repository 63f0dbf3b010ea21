"""Plasticity traces: per-step weight changes with the local variables that drive them.

:func:`plasticity_trace` turns a run into the Dataset :func:`~plastinet.analysis.fit_rule`
reads; it runs the rate engine for rules and layers, and hands recordings to
:func:`plastinet.analysis.recording_trace`. Call forms:

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

What a replayed trace can show. The rule and layer forms replay the run's own keys, values
and gates through the *same* rule, so every recorded change is that rule's update: the family
that contains the rule fits it exactly (R^2 = 1 by construction), and families that contain
it as a special case fit as well. Fitting such a trace asks which biological families *can
express* the learned updates on these inputs, not which rule generated them or which rule a
brain uses. Such traces carry the attributes ``replayed = 1`` and ``caveat`` (this, in one
sentence), which :func:`~plastinet.analysis.fit_rule` repeats in its summary and warnings.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from plastinet.analysis.trace import recording_trace
from plastinet.errors import UnstableUpdateWarning, UnsupportedError, ValidationError
from plastinet.fwp import apply
from plastinet.fwp.functional import State, prepare
from plastinet.fwp.layer import FastWeightLayer
from plastinet.fwp.rules import DecayedHebbian, GatedDelta, Oja, Rule, ThreeFactor

__all__ = ["plasticity_trace", "REPLAY_CAVEAT"]

#: What a fit of a replayed trace cannot show (stored in the trace's ``caveat`` attribute).
REPLAY_CAVEAT = ("the weight changes are the {rule} rule's own updates replayed on the run's keys, values and "
                 "gates, so a family that contains {rule} fits them exactly (R^2 = 1 by construction): the "
                 "comparison shows which families can express these updates, not which rule generated them")

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
                                                  "batch": batch, "head": head, "source": "fwp.apply",
                                                  "replayed": 1,
                                                  "caveat": REPLAY_CAVEAT.format(rule=type(rule).__name__)})


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
        return recording_trace(run, pre=pre, post=post, projection=projection)

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
