"""Spiking realisation of a rate fast weight programmer (docs/spiking.md, "Spiking fast weight programmers").

:func:`from_fwp` turns a rate FWP (``Hebbian`` or ``Delta`` from :mod:`plastinet.fwp`, a
programmed ``beta``, a positive feature map) and one sequence into a spiking three-factor
network; :func:`run_fwp` simulates it and compares the spiking read-out with the rate
read-out of :func:`plastinet.fwp.apply`.

Construction, for each sequence step ``t`` a *write* phase then a *read* phase, each of
duration ``phase``:

* key/query population ``keys``: ``d_phi * neurons_per_feature`` Poisson neurons; a
  neuron of feature ``f`` fires at ``rate * phi(k_t)_f / s`` in the write phase and at
  ``rate * phi(q_t)_f / s`` in the read phase (``s`` = the largest feature value);
* value population ``values`` (the teacher): for each value dimension ``i`` a positive and
  a negative channel of ``value_neurons`` Poisson neurons firing at
  ``rate * max(+-v_ti, 0) / s_v`` in the write phase, silent in the read phase; they drive
  the ``soma`` input of the post unit ``i`` with weights ``+-s_v / (value_neurons rate)``
  so that ``<soma_i> = v_ti`` (up to the sampling factor ``kappa``, see :func:`from_fwp`);
* post population ``out``: :class:`~plastinet.spiking.RateUnits` with inputs ``soma``
  (teacher) and ``dend`` (the prediction ``sum_j W_ij x_j``, through the plastic
  projection ``fast`` from ``keys``); spiking weights ``W_ij = W_rate[i, f(j)] s /
  (neurons_per_feature rate)``;
* neuromodulator ``beta``: a :class:`~plastinet.spiking.ProgrammedSignal` that is 0 in the
  first quarter of each write phase (the filters settle), ``m_t`` in the remaining three
  quarters and 0 in the read phase;
* rule: Hebbian -> :class:`~plastinet.spiking.ModulatedHebbian` on ``soma``
  (``m_t = beta_t``); Delta -> :class:`~plastinet.spiking.PES` with error
  ``soma - dend`` and ``m_t = -log(1 - beta_t |phi(k_t)|^2) / |phi(k_t)|^2`` so that the
  continuous-time delta rule integrated over the learning window equals the discrete step
  ``W += beta (v - W phi) phi^T`` exactly (in the mean); requires ``beta |phi|^2 < 1``;
  learning rate ``eta = s^2 / (neurons_per_feature rate^2 T_learn)``.
* read-out: ``y_t`` = mean of ``dend`` over the last three quarters of the read phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import RangeError, ShapeError, UnsupportedError, ValidationError
from plastinet.results import finalize_dataset, variable
from plastinet.simulation import check_run_options, simulate
from plastinet.spiking.network import Network, PoissonGroup, ProgrammedSignal, Projection, RateUnits, StateProbe
from plastinet.spiking.rules import PES, ModulatedHebbian

__all__ = ["SpikingFWP", "from_fwp", "run_fwp"]

_OBJ = "spiking.from_fwp"


@dataclass
class SpikingFWP:
    """A spiking network realising a rate FWP on one sequence, plus its decoding info.

    Attributes
    ----------
    network : Network
    duration : float
        Total biological time (s): ``2 T phase``.
    phase : float
        Duration of a write or read phase (s).
    weight_scale : float
        ``W_spiking = W_rate * weight_scale`` (per key neuron).
    T, d_phi, d_v : int
    """

    network: Network
    duration: float
    phase: float
    weight_scale: float
    T: int
    d_phi: int
    d_v: int
    info: dict = field(default_factory=dict)


def _seq(x: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ShapeError(_OBJ, name, arr, f"expected {ndim} dimensions (one sequence: (T, d) or (T,))")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(_OBJ, name, arr, "all entries must be finite")
    return arr


def from_fwp(rule: Any, q: Any, k: Any, v: Any, beta: Any = None, *, neurons_per_feature: int = 20,
             rate: float = 100.0, phase: float = 0.2, value_neurons: int | None = None,
             tau: float = 0.01, dt: float = 1e-3) -> SpikingFWP:
    """Build the spiking three-factor network of a rate FWP for one sequence.

    Parameters
    ----------
    rule : plastinet.fwp.Hebbian or plastinet.fwp.Delta
        The rate rule; its feature map must be non-negative (``"relu"``, ``"elu+1"``,
        ``"softmax"``, DPFP ...).
    q, k : array (T, d_k)
        Queries and keys (before the feature map).
    v : array (T, d_v)
        Values (teacher).
    beta : array (T,), optional
        Programmed learning rate (default 1).
    neurons_per_feature : int
        Key/query neurons per feature.
    rate : float
        Maximum firing rate (Hz).
    phase : float
        Duration of each write and read phase (s).
    value_neurons : int or None
        Teacher neurons per value channel (default ``neurons_per_feature``).
    tau : float
        Filter time constant of traces and post inputs (s); must be <= phase / 12.
    dt : float
        Time step the network will be run with (s). Sampled once per step, a filter
        with jumps ``1/tau`` has mean ``kappa * rate`` with
        ``kappa = (dt/tau) / (1 - exp(-dt/tau))``; the teacher weights and ``eta`` are
        divided by ``kappa`` and ``kappa^2`` to cancel this bias exactly.

    Returns
    -------
    SpikingFWP
    """
    from plastinet.fwp import Delta, Hebbian
    if not isinstance(rule, (Hebbian, Delta)):
        raise UnsupportedError(_OBJ, "rule", rule, "expected plastinet.fwp.Hebbian or plastinet.fwp.Delta")
    if isinstance(rule, Hebbian) and rule.normalize:
        raise UnsupportedError(_OBJ, "rule", rule, "the attention normaliser has no spiking realisation here")
    q, k, v = _seq(q, "q", 2), _seq(k, "k", 2), _seq(v, "v", 2)
    T = k.shape[0]
    if q.shape != k.shape or v.shape[0] != T:
        raise ShapeError(_OBJ, "v", v, f"q {q.shape}, k {k.shape} and v {v.shape} must share T")
    beta = np.ones(T) if beta is None else _seq(beta, "beta", 1)
    if beta.shape != (T,) or beta.min() < 0:
        raise RangeError(_OBJ, "beta", beta, f"expected shape ({T},) and beta >= 0")
    for name, val, low in (("neurons_per_feature", neurons_per_feature, 1), ("rate", rate, 0),
                           ("phase", phase, 0), ("tau", tau, 0)):
        if not val > low - (1 if name == "neurons_per_feature" else 0) or val <= 0:
            raise RangeError(_OBJ, name, val, "expected a positive value")
    if tau > phase / 12:
        raise RangeError(_OBJ, "tau", tau, f"must be <= phase / 12 = {phase / 12:g} s so the filters settle")
    phi = rule.phi
    pk, pq = phi(k), phi(q)
    if pk.min() < 0 or pq.min() < 0:
        raise UnsupportedError(_OBJ, "feature_map", phi.kind,
                               "keys and queries become firing rates: use a non-negative feature map "
                               "('relu', 'elu+1', 'softmax', 'dpfp-<nu>')")
    d_phi, d_v = pk.shape[1], v.shape[1]
    n_k = int(neurons_per_feature)
    n_v = int(value_neurons or n_k)
    s = float(max(pk.max(), pq.max()))
    s = s if s > 0 else 1.0
    s_v = float(np.abs(v).max()) or 1.0
    quarter = phase / 4
    kappa = (dt / tau) / -np.expm1(-dt / tau)
    t_learn = 3 * quarter
    # modulator
    if isinstance(rule, Delta):
        norm2 = np.sum(pk * pk, axis=1)
        prod = beta * norm2
        if prod.max(initial=0) >= 1:
            raise RangeError(_OBJ, "beta", beta, "the spiking delta rule needs beta_t |phi(k_t)|^2 < 1")
        m = np.where(norm2 > 0, -np.log1p(-prod) / np.where(norm2 > 0, norm2, 1), 0.0)
    else:
        m = beta
    mod_vals = np.zeros((T, 8))
    mod_vals[:, 1:4] = m[:, None]
    # populations
    key_rates = np.zeros((2 * T, d_phi * n_k))
    key_rates[0::2] = np.repeat(pk, n_k, axis=1) * (rate / s)
    key_rates[1::2] = np.repeat(pq, n_k, axis=1) * (rate / s)
    val_rates = np.zeros((2 * T, 2 * d_v * n_v))
    val_rates[0::2] = np.concatenate([np.repeat(np.maximum(v, 0), n_v, axis=1),
                                      np.repeat(np.maximum(-v, 0), n_v, axis=1)], axis=1) * (rate / s_v)
    net = Network()
    keys = net.add(PoissonGroup(name="keys", n=d_phi * n_k, rate=key_rates, rate_interval=phase))
    values = net.add(PoissonGroup(name="values", n=2 * d_v * n_v, rate=val_rates, rate_interval=phase))
    out = net.add(RateUnits(name="out", n=d_v, tau=tau, inputs=("soma", "dend")))
    net.add(ProgrammedSignal(name="beta", values=mod_vals.reshape(-1), interval=quarter))
    pre_v = np.arange(2 * d_v * n_v)
    post_v = (pre_v // n_v) % d_v
    sign = np.where(pre_v < d_v * n_v, 1.0, -1.0)
    net.add(Projection(name="teacher", pre=values, post=out, target="soma", weight=sign * s_v / (n_v * rate * kappa),
                       connectivity=(pre_v, post_v)))
    eta = s * s / (n_k * rate * rate * t_learn * kappa * kappa)
    if isinstance(rule, Delta):
        srule = PES(eta=eta, tau_pre=tau, target_variable="soma", prediction_variable="dend", modulator="beta")
    else:
        srule = ModulatedHebbian(eta=eta, tau_pre=tau, post_variable="soma", modulator="beta")
    net.add(Projection(name="fast", pre=keys, post=out, target="dend", weight=0.0, rule=srule))
    return SpikingFWP(network=net, duration=2 * T * phase, phase=phase, weight_scale=s / (n_k * rate),
                      T=T, d_phi=d_phi, d_v=d_v,
                      info={"feature_scale": s, "value_scale": s_v, "modulator": m.tolist(),
                            "neurons_per_feature": n_k, "value_neurons": n_v, "rate": rate, "tau": tau})


def run_fwp(rule: Any, q: Any, k: Any, v: Any, beta: Any = None, *, neurons_per_feature: int = 20,
            rate: float = 100.0, phase: float = 0.2, value_neurons: int | None = None,
            tau: float = 0.01, dt: float = 1e-3, seed: int | None = 0,
            backend: Any = None, run_options: Any = None) -> xr.Dataset:
    """Run the spiking FWP of :func:`from_fwp` and compare it with :func:`plastinet.fwp.apply`.

    Parameters are those of :func:`from_fwp`, plus ``dt`` (s), ``seed``, ``backend`` (any
    backend with the ``"spiking"`` capability, see :func:`plastinet.simulate`; the rate
    reference always comes from :func:`plastinet.fwp.apply`) and ``run_options`` (the
    reliability options of the run, :data:`plastinet.simulation.RUN_OPTIONS`).

    Returns
    -------
    xarray.Dataset
        ``y_spiking(step, value)``, ``y_rate(step, value)`` (rate read-out
        ``y_t = W_t phi(q_t)``), attrs ``correlation`` and ``relative_error``
        (``|y_spiking - y_rate| / |y_rate|``, Frobenius norms).
    """
    from plastinet.fwp import apply
    sfwp = from_fwp(rule, q, k, v, beta, neurons_per_feature=neurons_per_feature, rate=rate,
                    phase=phase, value_neurons=value_neurons, tau=tau, dt=dt)
    net = sfwp.network
    net.add(StateProbe(name="pred", population="out", variable="dend", sample_every=dt))
    ds = simulate(net, sfwp.duration, backend=backend, dt=dt, seed=seed,
                  **check_run_options("run_fwp run_options", run_options))
    pred = ds["pred"].values                       # (steps, d_v)
    steps_phase = int(round(phase / dt))
    T = sfwp.T
    y_s = np.zeros((T, sfwp.d_v))
    for t in range(T):
        a = (2 * t + 1) * steps_phase + steps_phase // 4
        b = (2 * t + 2) * steps_phase
        y_s[t] = pred[a:b].mean(axis=0)
    qa, ka, va = (np.asarray(x, dtype=np.float64)[None, None] for x in (q, k, v))
    ba = None if beta is None else np.asarray(beta, dtype=np.float64)[None, None]
    y_r, _ = apply(rule, qa, ka, va, beta=ba)
    y_r = y_r[0, 0]
    corr = float(np.corrcoef(y_s.ravel(), y_r.ravel())[0, 1])
    rel = float(np.linalg.norm(y_s - y_r) / np.linalg.norm(y_r))
    res = xr.Dataset({"y_spiking": variable(("step", "value"), y_s, "1", "spiking read-out"),
                      "y_rate": variable(("step", "value"), y_r, "1", "rate read-out W_t phi(q_t)")})
    backend_attrs = {k: ds.attrs[k] for k in ("brian2_target", "poisson") if k in ds.attrs}
    return finalize_dataset(res, backend=str(ds.attrs["backend"]), backend_version=str(ds.attrs["backend_version"]),
                            dt=dt, seed=seed,
                            model_spec=net.to_dict(), correlation=corr, relative_error=rel,
                            neurons_per_feature=neurons_per_feature, rate=rate, phase=phase, **backend_attrs)
