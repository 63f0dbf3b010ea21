"""Spiking realisation of a rate fast weight programmer (docs/spiking.md, "Spiking fast weight programmers").

:func:`from_fwp` turns a rate FWP (a rule of :mod:`plastinet.fwp` with a non-negative feature
map), its programmed keys, values and gates, and the queries to read into a spiking
three-factor network; :func:`run_fwp` simulates it and compares the spiking read-outs and
weights with those of :func:`plastinet.fwp.apply`.

Construction: every sequence step ``t`` has a *write* phase; each query ``j`` has a *read*
phase placed after the write of step ``read_after[j]`` (by default one read per step, right
after its write, reading ``q_t``). Every phase lasts ``phase``.

* key/query population ``keys``: ``d_phi * neurons_per_feature`` Poisson neurons; a
  neuron of feature ``f`` fires at ``rate * phi(k_t)_f / s`` in a write phase and at
  ``rate * phi(q_j)_f / s`` in a read phase (``s`` = the largest feature value);
* value population ``values`` (the teacher): for each value dimension ``i`` a positive and
  a negative channel of ``value_neurons`` Poisson neurons firing at
  ``rate * max(+-u_ti, 0) / s_v`` in the write phase, silent in the read phase; they drive
  the ``soma`` input of the post unit ``i`` with weights ``+-s_v / (value_neurons rate kappa)``
  so that ``<soma_i> = u_ti`` (``u_t``: the teacher the rule needs, below);
* post population ``out``: :class:`~plastinet.spiking.RateUnits` with inputs ``soma``
  (teacher) and ``dend`` (the prediction ``sum_j W_ij x_j``, through the plastic
  projection ``fast`` from ``keys``);
* neuromodulator ``beta``: a :class:`~plastinet.spiking.ProgrammedSignal` that is 0 in the
  first quarter of each write phase (the filters settle), ``m_t`` in the remaining three
  quarters (``T_learn``) and 0 in read phases; learning rate
  ``eta = s^2 / (neurons_per_feature rate^2 T_learn kappa^2)``.

Rules (``G_t = alpha_1 ... alpha_t``, the accumulated decay of the decaying rules):

* ``Hebbian`` -> :class:`~plastinet.spiking.ModulatedHebbian` on ``soma``, ``u_t = v_t``,
  ``m_t = beta_t``;
* ``ThreeFactor`` with ``gamma = 0`` -> the same with ``m_t = modulator_t beta_t`` (an
  eligibility that outlives its step, ``gamma > 0``, is not realised);
* ``DecayedHebbian`` (scalar ``alpha_t > 0``) -> the same with ``m_t = beta_t / G_t``; the read-out
  is multiplied by ``G_t``: the synapses store ``W_t / G_t``, and the decay is carried by the
  modulator and the read-out gain (no synaptic decay);
* ``Delta`` -> :class:`~plastinet.spiking.PES` with error ``soma - dend``, ``u_t = v_t`` and
  ``m_t`` from :func:`delta_step_modulator`, which makes the expected weight change of the
  window equal the discrete step ``W += beta (v - W phi) phi^T``, the lag of the filtered
  prediction included (needs ``beta |phi(k_t)|^2 < 1``);
* ``GatedDelta`` (scalar ``alpha_t > 0``) -> PES on ``W_t / G_t`` with teacher
  ``u_t = v_t / G_t`` and the read-out multiplied by ``G_t``.

Read-out: ``y_j = G * mean(dend)`` over the last three quarters of the read phase (``G``
of the step the read follows).

In expectation the spiking weights equal the rate weights, up to a finite-size term of the
delta rules: the prediction and the presynaptic trace share the key spikes, so the expected
error-times-trace holds ``-W_ij Var(x_j)``, a decay of active synapses of relative size
``~ 1 / (neurons_per_feature * rate * tau)`` (measured -1.6 % at 20 neurons per feature and
-0.4 % at 80; hence the default of 50). The spiking noise falls as
``neurons_per_feature * rate * phase`` grows (``docs/spiking.md`` gives the measured figures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import brentq

from plastinet.errors import RangeError, ShapeError, UnsupportedError, ValidationError
from plastinet.results import finalize_dataset, variable
from plastinet.simulation import check_run_options, simulate
from plastinet.spiking.network import Network, PoissonGroup, ProgrammedSignal, Projection, RateUnits, StateProbe
from plastinet.spiking.rules import PES, ModulatedHebbian

__all__ = ["SpikingFWP", "from_fwp", "run_fwp", "simulate_fwp", "feature_weights", "lagged_delta_factor",
           "delta_step_modulator"]

_OBJ = "spiking.from_fwp"


@dataclass
class SpikingFWP:
    """A spiking network realising a rate FWP on one sequence, plus its decoding info.

    Attributes
    ----------
    network : Network
    duration : float
        Total biological time (s): ``(T + Q) phase``.
    phase : float
        Duration of a write or read phase (s).
    weight_scale : float
        Spiking weight per key neuron of one unit of stored weight (``dend`` units per
        key neuron): ``w_ij = W_stored[i, f(j)] * weight_scale`` with
        ``weight_scale = s / (neurons_per_feature * rate * kappa)``, where the stored weights are
        ``W_t / G_t`` (``G_t = 1`` for rules without decay); see :func:`feature_weights`.
    T, d_phi, d_v : int
        Write steps, features, value dimensions.
    read_phase : ndarray of int, shape (Q,)
        Index of each read's phase.
    read_gain : ndarray, shape (Q,)
        ``G`` of each read (the read-out is ``G * mean(dend)``).
    final_gain : float
        ``G_T``.
    """

    network: Network
    duration: float
    phase: float
    weight_scale: float
    T: int
    d_phi: int
    d_v: int
    read_phase: np.ndarray
    read_gain: np.ndarray
    final_gain: float = 1.0
    info: dict = field(default_factory=dict)


def _seq(x: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ShapeError(_OBJ, name, arr, f"expected {ndim} dimensions (one sequence: (T, d) or (T,))")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(_OBJ, name, arr, "all entries must be finite")
    return arr


def lagged_delta_factor(a: float, n_learn: int, p: float) -> float:
    """Remaining error fraction after a spiking delta-rule window, in expectation.

    The mean-field recursion of the construction, per step ``n`` of the learning window in
    the engine's step order: the filtered prediction decays and receives the spikes sent
    through the weights of the previous step, ``D_n = p D_{n-1} + (1 - p) u_{n-1}``, then
    PES moves the true prediction ``u_n = u_{n-1} + a (v - D_n)``; errors are measured
    from the teacher ``v`` and start settled (``D_0 = u_0``).

    Parameters
    ----------
    a : float
        Per-step gain ``eta m dt |<x>|^2`` (dimensionless).
    n_learn : int
        Steps with the modulator on.
    p : float
        Filter decay per step, ``exp(-dt / tau)``.

    Returns
    -------
    float
        ``(v - u_N) / (v - u_0)``; the rate rule's is ``1 - beta |phi(k)|^2``.
    """
    step = np.array([[1.0 - a * (1.0 - p), -a * p], [1.0 - p, p]])
    return float((np.linalg.matrix_power(step, n_learn) @ np.ones(2))[0])


def delta_step_modulator(beta: float, norm2: float, n_learn: int, p: float) -> float:
    """Modulator ``m`` that makes one spiking delta window equal the rate step in expectation.

    Solves ``lagged_delta_factor(m |phi|^2 / n_learn, n_learn, p) = 1 - beta |phi|^2``
    (:func:`lagged_delta_factor`): the error is computed from the filtered prediction, which
    lags the weights by about one filter time constant, so the modulator is smaller than
    the lag-free ``-log(1 - beta |phi|^2) / |phi|^2``.

    Parameters
    ----------
    beta : float
        Learning rate of the step, ``0 <= beta |phi|^2 < 1``.
    norm2 : float
        ``|phi(k)|^2 > 0``.
    n_learn : int
        Steps of the learning window.
    p : float
        Filter decay per step.

    Returns
    -------
    float
        The modulator value (dimensionless).
    """
    target = 1.0 - beta * norm2
    if target >= 1.0:
        return 0.0
    lag_free = -math.log(target) / n_learn          # per-step gain without the lag
    hi = lag_free
    while lagged_delta_factor(hi, n_learn, p) > target:
        hi *= 1.5
        if hi > 0.5 * (1.0 - p):                    # past critical damping: no monotone solution
            raise RangeError(_OBJ, "beta", beta, "the spiking delta rule cannot reach this step "
                             "(beta |phi|^2 too close to 1 for the filter lag): lower beta or tau")
    a = brentq(lambda x: lagged_delta_factor(x, n_learn, p) - target, 0.0, hi, xtol=1e-15, rtol=1e-13)
    return a * n_learn / norm2


def _gates(rule: Any, T: int, beta: Any, alpha: Any, modulator: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``beta (T,)``, the accumulated decay ``G (T,)`` and the modulator ``(T,)`` of a rule."""
    from plastinet.fwp import DecayedHebbian, GatedDelta, ThreeFactor

    beta = np.ones(T) if beta is None else _seq(beta, "beta", 1)
    if beta.shape != (T,):
        raise ShapeError(_OBJ, "beta", beta, f"expected shape ({T},)")
    if beta.min(initial=0) < 0:
        raise RangeError(_OBJ, "beta", beta, "expected beta >= 0 (a firing-rate modulator)")
    gain = np.ones(T)
    if isinstance(rule, (DecayedHebbian, GatedDelta)):
        if alpha is None and rule.decay is None:
            raise ValidationError(_OBJ, "alpha", None, f"{type(rule).__name__} needs a decay gate: pass "
                                  "alpha (T,) or construct the rule with decay=...")
        a = np.full(T, float(rule.decay)) if alpha is None else _seq(alpha, "alpha", 1)
        if a.shape != (T,):
            raise UnsupportedError(_OBJ, "alpha", a, f"expected a scalar decay per step, shape ({T},) "
                                   "(a per-feature decay has no spiking realisation here)")
        if a.min() <= 0 or a.max() > 1:
            raise RangeError(_OBJ, "alpha", a, "expected 0 < alpha <= 1 (alpha = 0, erasing the memory, "
                             "cannot be carried by the modulator and read-out gain)")
        gain = np.cumprod(a)
    elif alpha is not None:
        raise UnsupportedError(_OBJ, "alpha", alpha, f"{type(rule).__name__} has no decay gate")
    mod = np.ones(T)
    if isinstance(rule, ThreeFactor):
        if rule.gamma != 0:
            raise UnsupportedError(_OBJ, "rule.gamma", rule.gamma, "only gamma = 0 has a spiking realisation "
                                   "here (an eligibility trace outliving its step is not realised)")
        if modulator is not None:
            mod = _seq(modulator, "modulator", 1)
            if mod.shape != (T,):
                raise ShapeError(_OBJ, "modulator", mod, f"expected shape ({T},)")
            if mod.min() < 0:
                raise RangeError(_OBJ, "modulator", mod, "expected modulator >= 0")
    elif modulator is not None:
        raise UnsupportedError(_OBJ, "modulator", modulator, f"{type(rule).__name__} reads no modulator")
    return beta, gain, mod


def from_fwp(rule: Any, q: Any, k: Any, v: Any, beta: Any = None, *, alpha: Any = None, modulator: Any = None,
             read_after: Any = None, neurons_per_feature: int = 50, rate: float = 100.0, phase: float = 0.2,
             value_neurons: int | None = None, tau: float = 0.01, dt: float = 1e-3) -> SpikingFWP:
    """Build the spiking three-factor network of a rate FWP for one sequence.

    Parameters
    ----------
    rule : plastinet.fwp.Hebbian, DecayedHebbian, Delta, GatedDelta or ThreeFactor
        The rate rule; its feature map must be non-negative (``"relu"``, ``"elu+1"``,
        ``"softmax"``, DPFP ...). ``ThreeFactor`` needs ``gamma = 0``; the Hebbian
        normaliser is not realised.
    q : array (Q, d_k)
        Queries (before the feature map), read in order.
    k : array (T, d_k)
        Keys (before the feature map).
    v : array (T, d_v)
        Values (teacher).
    beta : array (T,), optional
        Programmed learning rate (default 1), ``>= 0``.
    alpha : array (T,), optional
        Scalar decay of ``DecayedHebbian`` / ``GatedDelta`` in ``(0, 1]`` (default: the
        rule's ``decay``).
    modulator : array (T,), optional
        Neuromodulator of ``ThreeFactor`` (default 1), ``>= 0``.
    read_after : array of int (Q,), optional
        Write step after which each query is read (non-decreasing). Default
        ``arange(T)`` with ``Q = T``: one read after every write, as
        :func:`plastinet.fwp.apply` reads out.
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
    from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, ThreeFactor

    if not isinstance(rule, (Hebbian, DecayedHebbian, Delta, GatedDelta, ThreeFactor)):
        raise UnsupportedError(_OBJ, "rule", rule, "expected plastinet.fwp.Hebbian, DecayedHebbian, Delta, "
                               "GatedDelta or ThreeFactor")
    if isinstance(rule, Hebbian) and rule.normalize:
        raise UnsupportedError(_OBJ, "rule", rule, "the attention normaliser has no spiking realisation here")
    q, k, v = _seq(q, "q", 2), _seq(k, "k", 2), _seq(v, "v", 2)
    T = k.shape[0]
    if v.shape[0] != T or q.shape[1] != k.shape[1]:
        raise ShapeError(_OBJ, "v", v, f"k {k.shape} and v {v.shape} must share T; q {q.shape} and k share d_k")
    if read_after is None:
        if q.shape[0] != T:
            raise ShapeError(_OBJ, "q", q, f"without read_after, q needs one query per step ({T})")
        read_after = np.arange(T)
    read_after = np.asarray(read_after)
    if (read_after.shape != (q.shape[0],) or not np.issubdtype(read_after.dtype, np.integer)
            or read_after.min(initial=0) < 0 or read_after.max(initial=0) >= T or np.any(np.diff(read_after) < 0)):
        raise RangeError(_OBJ, "read_after", read_after, f"expected {q.shape[0]} non-decreasing integers in [0, {T})")
    beta, gain, mod = _gates(rule, T, beta, alpha, modulator)
    for name, val in (("rate", rate), ("phase", phase), ("tau", tau), ("dt", dt)):
        if not val > 0:
            raise RangeError(_OBJ, name, val, "expected a positive value")
    if not (isinstance(neurons_per_feature, (int, np.integer)) and neurons_per_feature >= 1):
        raise RangeError(_OBJ, "neurons_per_feature", neurons_per_feature, "expected an integer >= 1")
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
    quarter = phase / 4
    kappa = (dt / tau) / -np.expm1(-dt / tau)
    t_learn = 3 * quarter
    is_delta = isinstance(rule, (Delta, GatedDelta))
    teacher = v / gain[:, None] if is_delta else v
    s_v = float(np.abs(teacher).max()) or 1.0
    # modulator per write step
    if is_delta:
        norm2 = np.sum(pk * pk, axis=1)
        if np.max(beta * norm2, initial=0) >= 1:
            raise RangeError(_OBJ, "beta", beta, "the spiking delta rule needs beta_t |phi(k_t)|^2 < 1")
        n_learn = int(round(t_learn / dt))
        m = np.array([delta_step_modulator(b, n2, n_learn, math.exp(-dt / tau)) if n2 > 0 else 0.0
                      for b, n2 in zip(beta, norm2)])
    else:
        m = beta * mod / gain                       # Hebbian family: decay into the modulator
    # phase schedule: write t, then the reads that follow it
    n_phase = T + q.shape[0]
    is_write = np.zeros(n_phase, dtype=bool)
    write_phase = np.arange(T) + np.searchsorted(read_after, np.arange(T), side="left")
    is_write[write_phase] = True
    read_phase = np.flatnonzero(~is_write)
    mod_vals = np.zeros((n_phase, 4))
    mod_vals[write_phase, 1:4] = m[:, None]
    key_rates = np.zeros((n_phase, d_phi * n_k))
    key_rates[write_phase] = np.repeat(pk, n_k, axis=1) * (rate / s)
    key_rates[read_phase] = np.repeat(pq, n_k, axis=1) * (rate / s)
    val_rates = np.zeros((n_phase, 2 * d_v * n_v))
    val_rates[write_phase] = np.concatenate([np.repeat(np.maximum(teacher, 0), n_v, axis=1),
                                             np.repeat(np.maximum(-teacher, 0), n_v, axis=1)], axis=1) * (rate / s_v)
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
    if is_delta:
        srule = PES(eta=eta, tau_pre=tau, target_variable="soma", prediction_variable="dend", modulator="beta")
    else:
        srule = ModulatedHebbian(eta=eta, tau_pre=tau, post_variable="soma", modulator="beta")
    net.add(Projection(name="fast", pre=keys, post=out, target="dend", weight=0.0, rule=srule))
    return SpikingFWP(network=net, duration=n_phase * phase, phase=phase, weight_scale=s / (n_k * rate * kappa),
                      T=T, d_phi=d_phi, d_v=d_v, read_phase=read_phase, read_gain=gain[read_after],
                      final_gain=float(gain[-1]),
                      info={"feature_scale": s, "value_scale": s_v, "modulator": m.tolist(),
                            "neurons_per_feature": n_k, "value_neurons": n_v, "rate": rate, "tau": tau,
                            "kappa": kappa})


def feature_weights(sfwp: SpikingFWP, w: Any, pre: Any, post: Any) -> np.ndarray:
    """Fast weights ``W (d_v, d_phi)`` in rate units from the spiking weights of ``fast``.

    ``W[i, f] = G_T * sum_{j in f} w_ij / (neurons_per_feature * weight_scale)``: the sum over
    the key neurons of feature ``f`` (the read-out sees the sum), times the final gain.

    Parameters
    ----------
    sfwp : SpikingFWP
    w, pre, post : array (n_synapses,)
        Final weights and pre/post indices (``w_fast``, ``fast_pre``, ``fast_post`` of a result).
    """
    n = sfwp.info["neurons_per_feature"]
    W = np.zeros((sfwp.d_v, sfwp.d_phi))
    np.add.at(W, (np.asarray(post), np.asarray(pre) // n), np.asarray(w, dtype=np.float64))
    return W * (sfwp.final_gain / (n * sfwp.weight_scale))


def simulate_fwp(sfwp: SpikingFWP, *, dt: float = 1e-3, seed: int | None = 0, backend: Any = None,
                 run_options: Any = None) -> tuple[np.ndarray, np.ndarray, xr.Dataset]:
    """Run a :class:`SpikingFWP`: its read-outs, final weights (rate units) and the raw result.

    Parameters
    ----------
    sfwp : SpikingFWP
        Built with the same ``dt``.
    dt : float
        Time step (s).
    seed : int or None
        Seed of the run.
    backend : str, Backend or None
        Any backend with the ``"spiking"`` capability (see :func:`plastinet.simulate`).
    run_options : mapping or None
        The reliability options of the run (:data:`plastinet.simulation.RUN_OPTIONS`).

    Returns
    -------
    y : ndarray (Q, d_v)
        Spiking read-outs ``G * mean(dend)`` over the last three quarters of each read phase.
    W : ndarray (d_v, d_phi)
        Final fast weights in rate units (:func:`feature_weights`).
    ds : xarray.Dataset
        The simulator's result.
    """
    net = sfwp.network
    if "pred" not in net.probes:
        net.add(StateProbe(name="pred", population="out", variable="dend", sample_every=dt))
    ds = simulate(net, sfwp.duration, backend=backend, dt=dt, seed=seed,
                  **check_run_options("simulate_fwp run_options", run_options))
    pred = ds["pred"].values                       # (steps, d_v)
    steps_phase = int(round(sfwp.phase / dt))
    y = np.zeros((sfwp.read_phase.size, sfwp.d_v))
    for j, ph in enumerate(sfwp.read_phase):
        a = ph * steps_phase + steps_phase // 4
        y[j] = pred[a:(ph + 1) * steps_phase].mean(axis=0) * sfwp.read_gain[j]
    W = feature_weights(sfwp, ds["w_fast"].values, ds["fast_pre"].values, ds["fast_post"].values)
    return y, W, ds


def rate_reference(rule: Any, q: Any, k: Any, v: Any, beta: Any = None, *, alpha: Any = None,
                   modulator: Any = None, read_after: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Read-outs ``(Q, d_v)`` and final weights ``(d_v, d_phi)`` of :func:`plastinet.fwp.apply`.

    Query ``j`` reads ``W_t phi(q_j)`` with ``t = read_after[j]`` (default: ``q_t`` after
    step ``t``), the convention of :func:`from_fwp`.
    """
    from plastinet.fwp import apply

    k, v = np.asarray(k, dtype=np.float64), np.asarray(v, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    T = k.shape[0]
    ra = np.arange(T) if read_after is None else np.asarray(read_after)
    kw = {name: None if a is None else np.asarray(a, dtype=np.float64)[None, None]
          for name, a in (("beta", beta), ("alpha", alpha), ("modulator", modulator))}
    Ws = []
    for t in range(T):                              # weights after each step (T small)
        sub = {name: None if a is None else a[..., : t + 1] for name, a in kw.items()}
        _, st = apply(rule, k[None, None, : t + 1], k[None, None, : t + 1], v[None, None, : t + 1],
                      return_state=True, **sub)
        Ws.append(st.W[0, 0])
    phq = rule.phi(q)
    y = np.stack([Ws[t] @ phq[j] for j, t in enumerate(ra)])
    return y, Ws[-1]


def run_fwp(rule: Any, q: Any, k: Any, v: Any, beta: Any = None, *, alpha: Any = None, modulator: Any = None,
            read_after: Any = None, neurons_per_feature: int = 50, rate: float = 100.0, phase: float = 0.2,
            value_neurons: int | None = None, tau: float = 0.01, dt: float = 1e-3, seed: int | None = 0,
            backend: Any = None, run_options: Any = None) -> xr.Dataset:
    """Run the spiking FWP of :func:`from_fwp` and compare it with :func:`plastinet.fwp.apply`.

    Parameters are those of :func:`from_fwp`, plus ``dt`` (s), ``seed``, ``backend`` (any
    backend with the ``"spiking"`` capability, see :func:`plastinet.simulate`; the rate
    reference always comes from :func:`plastinet.fwp.apply`) and ``run_options`` (the
    reliability options of the run, :data:`plastinet.simulation.RUN_OPTIONS`).

    Returns
    -------
    xarray.Dataset
        ``y_spiking(step, value)``, ``y_rate(step, value)`` (one row per read: ``y = W_t
        phi(q)``), ``w_spiking(value, feature)`` and ``w_rate(value, feature)`` (final fast
        weights, rate units), attrs ``correlation`` and ``relative_error`` of the read-outs
        (``|y_spiking - y_rate| / |y_rate|``, Frobenius norms).
    """
    sfwp = from_fwp(rule, q, k, v, beta, alpha=alpha, modulator=modulator, read_after=read_after,
                    neurons_per_feature=neurons_per_feature, rate=rate, phase=phase,
                    value_neurons=value_neurons, tau=tau, dt=dt)
    y_s, W_s, ds = simulate_fwp(sfwp, dt=dt, seed=seed, backend=backend, run_options=run_options)
    y_r, W_r = rate_reference(rule, q, k, v, beta, alpha=alpha, modulator=modulator, read_after=read_after)
    corr = float(np.corrcoef(y_s.ravel(), y_r.ravel())[0, 1])
    rel = float(np.linalg.norm(y_s - y_r) / np.linalg.norm(y_r))
    res = xr.Dataset({"y_spiking": variable(("step", "value"), y_s, "1", "spiking read-out"),
                      "y_rate": variable(("step", "value"), y_r, "1", "rate read-out W_t phi(q)"),
                      "w_spiking": variable(("value", "feature"), W_s, "1", "final spiking fast weights (rate units)"),
                      "w_rate": variable(("value", "feature"), W_r, "1", "final rate fast weights")})
    backend_attrs = {k: ds.attrs[k] for k in ("brian2_target", "poisson") if k in ds.attrs}
    return finalize_dataset(res, backend=str(ds.attrs["backend"]), backend_version=str(ds.attrs["backend_version"]),
                            dt=dt, seed=seed,
                            model_spec=sfwp.network.to_dict(), correlation=corr, relative_error=rel,
                            neurons_per_feature=neurons_per_feature, rate=rate, phase=phase, **backend_attrs)
