"""Classic plasticity experiments as functions that build a network, run it and return a Dataset.

* :func:`pairing_window` - the STDP window: ``n_pairings`` pre/post pairs per ``delta_t``.
* :func:`sjostrom` - Sjostrom et al. 2001 frequency dependence (+-10 ms, 60 pairings).
* :func:`poisson_drift` - Kempter et al. 1999 drift of pair STDP under Poisson firing.
* :func:`song2000` - Song, Miller & Abbott 2000 competitive STDP (Brian2's STDP example).
* :func:`izhikevich2007` - Izhikevich 2007 distal reward, reduced to one neuron.
* :func:`pes_learning` - error-modulated (PES) learning of a linear map.
* :func:`spiking_fwp_sequence` - a spiking FWP beside the rate FWP on a random sequence.

Every condition of a sweep is a separate pre/post neuron pair (explicit one-to-one
connectivity) inside one network, so a sweep is one run. Every protocol runs its network
through :func:`plastinet.simulate`: it takes ``backend`` (a registered name or a configured
:class:`~plastinet.backends.Backend` with the ``"spiking"`` capability; ``None`` is the
reference engine) and ``run_options``, a mapping of the reliability options of
:data:`plastinet.simulation.RUN_OPTIONS` (checkpoints, numerical policy) passed to the run.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from plastinet.analysis.stdp_theory import pair_integral
from plastinet.errors import RangeError
from plastinet.results import variable, with_attr_units
from plastinet.seeds import check_seed
from plastinet.simulation import check_run_options, simulate
from plastinet.spiking.network import (
    LIF,
    CoincidenceReward,
    ConductanceLIF,
    ModulatorProbe,
    Network,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    RateUnits,
    SpikeGenerator,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    WeightProbe,
)
from plastinet.spiking.rules import PES, DopamineSTDP, PairSTDP, SpikeRule
from plastinet.units import si_arguments

__all__ = ["pairing_window", "sjostrom", "poisson_drift", "song2000", "izhikevich2007", "pes_learning",
           "spiking_fwp_sequence",
           "SJOSTROM_DATA", "SONG_INITIAL_FRACTION", "SONG_REGULATED_FRACTION", "MIN_COUNTS"]


def _options(run_options: Mapping[str, Any] | None) -> dict[str, Any]:
    return check_run_options("protocol run_options", run_options)


#: Fraction of a :func:`song2000` run at its start over which ``post_rate_initial`` is counted.
SONG_INITIAL_FRACTION = 0.05
#: Fraction of a :func:`song2000` run at its end over which ``post_rate_regulated`` is counted.
SONG_REGULATED_FRACTION = 0.2
#: SI unit of protocol arguments by name (others are dimensionless): every protocol takes
#: numbers (SI), unit strings (``"10 ms"``) or quantities, alone or in lists, for these.
UNITS = {"delta_t": "s", "duration": "s", "dt": "s", "t0": "s", "sample_every": "s", "phase": "s",
         "tau": "s", "segment": "s", "tail": "s", "warmup": "s", "tau_n": "s", "rate": "Hz", "frequency": "Hz",
         "frequencies": "Hz", "r_pre": "Hz", "r_post": "Hz", "background_rate": "Hz", "rates": "Hz", "rho0": "Hz",
         "w_unit": "A", "w_background": "A", "i_ext": "A"}


def protocol(func: Any) -> Any:
    """Decorator of a protocol or measurement: arguments in :data:`UNITS` take unit strings
    (:func:`~plastinet.units.si_arguments`) and the result's numeric attributes get their units
    (:func:`~plastinet.results.with_attr_units`)."""
    return si_arguments(UNITS)(with_attr_units(func))


#: Smallest counts a protocol accepts where 1 is not enough, by protocol and argument:
#: izhikevich2007 compares the rewarded synapse 0 with the others.
MIN_COUNTS = {"izhikevich2007": {"n_inputs": 2}}


#: Sjostrom et al. 2001 relative weight change (mean, s.e.m.) by frequency (Hz) for +10/-10 ms.
SJOSTROM_DATA = {"frequency": [0.1, 10, 20, 40, 50],
                 "plus10": [(-0.04, 0.05), (0.14, 0.10), (0.29, 0.14), (0.53, 0.11), (0.56, 0.26)],
                 "minus10": [(-0.29, 0.08), (-0.41, 0.11), (-0.34, 0.10), (0.56, 0.32), (0.75, 0.19)]}


def _paired_run(rule: SpikeRule, pre_t: list[np.ndarray], post_t: list[np.ndarray], w0: float,
                dt: float, w_min: float, w_max: float, tail: float = 1.0, backend: Any = None,
                run_options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Run one pre->post synapse per condition; returns the final weights."""
    C = len(pre_t)
    idx_pre = np.concatenate([np.full(len(t), c) for c, t in enumerate(pre_t)])
    idx_post = np.concatenate([np.full(len(t), c) for c, t in enumerate(post_t)])
    tp, tq = np.concatenate(pre_t), np.concatenate(post_t)
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=C, indices=idx_pre, times=tp))
    post = net.add(SpikeGenerator(name="post", n=C, indices=idx_post, times=tq))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=w0,
                       connectivity=(np.arange(C), np.arange(C)), w_min=w_min, w_max=w_max, rule=rule))
    duration = float(max(tp.max(initial=0), tq.max(initial=0))) + tail
    ds = simulate(net, duration, backend=backend, dt=dt, seed=0, chunk_steps=8192, **_options(run_options))
    return ds["w_syn"].values


@protocol
def pairing_window(rule: SpikeRule, delta_t: Sequence[float], n_pairings: int = 1,
                   frequency: float = 1.0, w0: float = 0.0, w_min: float = -np.inf,
                   w_max: float = np.inf, dt: float = 1e-4, t0: float = 0.1,
                   backend: Any = None, run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """STDP window: weight change after ``n_pairings`` pairs at each ``delta_t = t_post - t_pre``.

    Parameters
    ----------
    rule : SpikeRule
        PairSTDP or TripletSTDP (any rule with pre/post pathways).
    delta_t : sequence of float
        Spike-timing differences (s).
    n_pairings : int
        Pairs per condition, repeated at ``frequency`` (Hz).
    w0, w_min, w_max : float
        Initial weight and bounds (weight units).
    dt : float
        Time step (s); ``delta_t`` and ``1/frequency`` are rounded to it.
    t0 : float
        Time of the first pre spike (s); ``t0 + min(delta_t)`` must be >= 0.
    backend : str or Backend
        Where the network runs (see :func:`plastinet.simulate`); every protocol takes it.
    run_options : mapping, optional
        Reliability options of the run (:data:`plastinet.simulation.RUN_OPTIONS`); every
        protocol takes them.

    Returns
    -------
    xarray.Dataset
        ``dw(delta_t)`` (weight units).
    """
    dts = np.asarray(delta_t, dtype=np.float64)
    if frequency <= 0:
        raise RangeError("pairing_window", "frequency", frequency, "expected a frequency > 0 Hz")
    if t0 + dts.min(initial=0) < 0:
        raise RangeError("pairing_window", "t0", t0, "t0 + min(delta_t) must be >= 0")
    k = np.arange(n_pairings) / frequency
    pre_t = [t0 + k for _ in dts]
    post_t = [t0 + d + k for d in dts]
    w = _paired_run(rule, pre_t, post_t, w0, dt, w_min, w_max, backend=backend, run_options=run_options)
    return xr.Dataset({"dw": variable("delta_t", w - w0, "1", "weight change")},
                      coords={"delta_t": variable("delta_t", dts, "s", "t_post - t_pre")},
                      attrs={"n_pairings": n_pairings, "frequency": frequency, "rule": repr(rule)})


@protocol
def sjostrom(rule: SpikeRule, frequencies: Sequence[float] = (0.1, 10, 20, 40, 50),
             delta_t: Sequence[float] = (0.01, -0.01), n_pairings: int = 60, w0: float = 1.0,
             dt: float = 1e-4, backend: Any = None,
             run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Sjostrom et al. 2001 protocol: ``n_pairings`` pairs at each frequency and timing.

    Pairs are regular (period ``1/rho``), as in Pfister & Gerstner 2006's description
    (not Clopath's 15 bursts of 5). The relative change is ``dw / w0``.

    Returns
    -------
    xarray.Dataset
        ``dw_rel(delta_t, frequency)`` and the data ``data_mean``, ``data_sem``.
    """
    fr = np.asarray(frequencies, dtype=np.float64)
    dts = np.asarray(delta_t, dtype=np.float64)
    pre_t, post_t = [], []
    t0 = 0.1
    for d in dts:
        for f in fr:
            k = np.arange(n_pairings) / f
            pre_t.append(t0 + k)
            post_t.append(t0 + d + k)
    w = _paired_run(rule, pre_t, post_t, w0, dt, -np.inf, np.inf, backend=backend, run_options=run_options)
    dw_rel = ((w - w0) / w0).reshape(dts.size, fr.size)
    ds = xr.Dataset({"dw_rel": variable(("delta_t", "frequency"), dw_rel, "1", "relative weight change")},
                    coords={"delta_t": variable("delta_t", dts, "s", "t_post - t_pre"),
                            "frequency": variable("frequency", fr, "Hz", "pairing frequency")},
                    attrs={"n_pairings": n_pairings, "rule": repr(rule)})
    if set(np.round(fr, 6)) == set(SJOSTROM_DATA["frequency"]) and set(np.round(dts, 6)) <= {0.01, -0.01}:
        mean = np.zeros_like(dw_rel)
        sem = np.zeros_like(dw_rel)
        for a, d in enumerate(dts):
            rows = SJOSTROM_DATA["plus10" if d > 0 else "minus10"]
            for b, f in enumerate(fr):
                m, s = rows[SJOSTROM_DATA["frequency"].index(float(f) if f != int(f) else int(f))]
                mean[a, b], sem[a, b] = m, s
        ds["data_mean"] = variable(("delta_t", "frequency"), mean, "1", "Sjostrom et al. 2001 mean")
        ds["data_sem"] = variable(("delta_t", "frequency"), sem, "1", "Sjostrom et al. 2001 s.e.m.")
    return ds


@protocol
def poisson_drift(rule: PairSTDP, r_pre: float = 20.0, r_post: float = 20.0, n_pre: int = 200,
                  n_post: int = 10, duration: float = 10.0, dt: float = 1e-4, seed: int = 0,
                  backend: Any = None, run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Mean drift of unbounded pair STDP between independent Poisson neurons (Kempter 1999).

    ``n_pre x n_post`` all-to-all synapses (weights start at 0, no bounds) between Poisson
    neurons at ``r_pre`` and ``r_post`` (Hz), for ``duration`` (s).

    The continuous-time prediction is ``r_pre r_post (A+ tau+ - A- tau-)``. On the clock
    (Bernoulli spikes, ``p = r dt`` per step) the pair sums are Riemann sums over lags
    ``k dt``: a pair in the same step counts as causal (``k >= 0`` for potentiation,
    ``k >= 1`` for depression), so the exact stationary drift is
    ``r_pre r_post dt [A+ / (1 - e^{-dt/tau+}) - A- e^{-dt/tau-} / (1 - e^{-dt/tau-})]``
    ``= r_pre r_post [A+ tau+ - A- tau- + dt (A+ + A-) / 2 + O(dt^2)]``. The offset
    ``dt (A+ + A-) / 2`` matters when ``A+ tau+ - A- tau-`` nearly cancels (Song et al.'s
    ``A- = 1.05 A+``: +10 % at dt = 0.1 ms); it is a property of clock-driven simulation
    (Brian2 schedules pairs the same way), not of the engine.

    Parameters
    ----------
    rule : PairSTDP
        All-to-all pair rule (``bound="additive"``).
    r_pre, r_post : float
        Rates (Hz).
    n_pre, n_post : int
        Neurons.
    duration, dt : float
        Biological time and time step (s).
    seed : int
        Seed.
    backend : str or Backend
        Where it runs (:func:`plastinet.simulate`).

    Returns
    -------
    xarray.Dataset
        Scalars ``drift`` (measured mean dw/dt, 1/s), ``predicted``
        ``= r_pre r_post (A_plus tau_plus - A_minus tau_minus)`` with the nominal rates,
        ``predicted_realised`` with the realised rates, and ``predicted_discrete`` /
        ``predicted_discrete_realised``: the exact expectation on the clock (above).
    """
    net = Network()
    pre = net.add(PoissonGroup(name="pre", n=n_pre, rate=r_pre))
    post = net.add(PoissonGroup(name="post", n=n_post, rate=r_post))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0, rule=rule))
    net.add(SpikeProbe(name="sp_pre", population="pre"))
    net.add(SpikeProbe(name="sp_post", population="post"))
    ds = simulate(net, duration, backend=backend, dt=dt, seed=seed, **_options(run_options))
    T = duration
    drift = float(ds["w_syn"].values.mean() / T)
    k = pair_integral(rule.A_plus, rule.tau_plus, rule.A_minus, rule.tau_minus)
    e_m = np.exp(-dt / rule.tau_minus)
    k_dt = dt * (rule.A_plus / -np.expm1(-dt / rule.tau_plus) - rule.A_minus * e_m / -np.expm1(-dt / rule.tau_minus))
    pops = ds["spike_population"].values
    rp, rq = np.sum(pops == "pre") / (n_pre * T), np.sum(pops == "post") / (n_post * T)
    return xr.Dataset({"drift": variable((), drift, "s-1", "measured mean dw/dt"),
                       "predicted": variable((), r_pre * r_post * k, "s-1", "Kempter drift, nominal rates"),
                       "predicted_realised": variable((), rp * rq * k, "s-1", "Kempter drift, realised rates"),
                       "predicted_discrete": variable((), r_pre * r_post * k_dt, "s-1",
                                                      "exact drift on the clock, nominal rates"),
                       "predicted_discrete_realised": variable((), rp * rq * k_dt, "s-1",
                                                               "exact drift on the clock, realised rates")},
                      attrs={"dt": dt, "duration": duration, "n_pre": n_pre, "n_post": n_post})


@protocol
def song2000(n_inputs: int = 1000, duration: float = 100.0, rate: float = 15.0, g_max: float = 0.01,
             dt: float = 1e-4, seed: int = 0, sample_every: float | None = None,
             progress: bool = False, chunk_steps: int = 256, backend: Any = None,
             run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Song, Miller & Abbott 2000 competitive STDP, as Brian2's ``examples/synapses/STDP.py``.

    ``n_inputs`` Poisson inputs at ``rate`` onto one conductance LIF (Euler, tau_m = 10 ms,
    E_l = -74 mV, threshold -54 mV, reset -60 mV, E_e = 0, tau_e = 5 ms, no refractory period), additive
    all-to-all pair STDP with tau = 20 ms, ``A_plus = 0.01 g_max``,
    ``A_minus = 1.05 A_plus``, weights uniform in ``[0, g_max]`` and clipped to it.

    Returns
    -------
    xarray.Dataset
        Final weights ``w_syn``, the post spike table, optionally weight samples ``W``;
        attrs ``frac_low`` / ``frac_high`` (fractions of weights below 0.1 / above 0.9
        ``g_max``) and three output rates (Hz), counted from the post spike record:
        ``post_rate_initial`` over the first :data:`SONG_INITIAL_FRACTION` (5 %) of the run
        (weights still near their uniform start), ``post_rate_regulated`` over the last
        :data:`SONG_REGULATED_FRACTION` (20 %) (the rate STDP regulates to) and
        ``post_rate``, the mean over the whole run (it includes the initial transient).
    """
    dA = 0.01 * g_max
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=n_inputs, rate=rate))
    post = net.add(ConductanceLIF(name="post", n=1, tau_m=0.01, E_l=-0.074, v_thresh=-0.054,
                                  v_reset=-0.060, E_e=0.0, tau_e=0.005, t_ref=0.0, method="euler"))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=("uniform", 0.0, g_max),
                       w_min=0.0, w_max=g_max,
                       rule=PairSTDP(A_plus=dA, A_minus=1.05 * dA, tau_plus=0.02, tau_minus=0.02)))
    net.add(SpikeProbe(name="post_spikes", population="post"))
    if sample_every:
        net.add(WeightProbe(name="W", projection="syn", sample_every=sample_every))
    ds = simulate(net, duration, backend=backend, dt=dt, seed=seed, progress=progress, chunk_steps=chunk_steps,
                  **_options(run_options))
    w = ds["w_syn"].values / g_max
    t = ds["spike_time"].values
    first, last = SONG_INITIAL_FRACTION * duration, SONG_REGULATED_FRACTION * duration
    ds.attrs.update({"frac_low": float(np.mean(w < 0.1)), "frac_high": float(np.mean(w > 0.9)),
                     "post_rate": float(t.size / duration),
                     "post_rate_initial": float(np.sum(t < first) / first),
                     "post_rate_regulated": float(np.sum(t >= duration - last) / last), "g_max": g_max})
    return ds


@protocol
def izhikevich2007(duration: float = 2000.0, n_inputs: int = 100, rate: float = 1.0,
                   w_unit: float = 35e-12, n_background: int = 100, background_rate: float = 10.0,
                   w_background: float = 40e-12, i_ext: float = -100e-12, dt: float = 5e-4, seed: int = 0,
                   sample_every: float = 1.0, progress: bool = False, backend: Any = None,
                   run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Izhikevich 2007 distal reward, reduced: ``n_inputs`` Poisson inputs onto one neuron.

    Reduction (documented in ``docs/spiking.md``): instead of 1000 recurrently coupled
    Izhikevich neurons, one current-based :class:`LIF` (tau_m = 20 ms, rest -70 mV,
    threshold -50 mV, reset -60 mV, r_m = 100 MOhm, exponential currents tau_e = 5 ms,
    t_ref = 2 ms; integrated exactly, as NEST's ``iaf_psc_exp``) receives ``n_inputs``
    plastic excitatory synapses from Poisson neurons at ``rate`` and ``n_background``
    static ones (current jumps ``w_background``) from Poisson neurons at
    ``background_rate``, which stand in for the recurrent drive; the constant current
    ``i_ext`` (negative: below rest) sets how far below threshold that drive holds the
    membrane, hence the post rate (about 0.45 Hz). Synapse 0 is the rewarded one: when the
    post neuron fires within 20 ms after input 0, dopamine ``+0.5`` is delivered after a
    uniform 1-3 s delay. Synaptic strengths ``s`` follow Izhikevich's values (start 1,
    bounds [0, 4], STDP A+ = 0.1, A- = 0.15, tau = 20 ms, tau_c = 1 s, tau_d = 0.2 s,
    tonic dopamine 0.002); the synaptic current jump is ``w_unit * s``. His update "every
    10 ms: s += (0.002 + d) c" is the continuous ``ds/dt = c (d + 0.002) / 10 ms``, i.e.
    NEST's ``stdp_dopamine_synapse`` with ``n = d / 10 ms`` (increment 50 /s per reward)
    and ``b = -0.2 /s`` (NEST's per-ms units: ``b = -2e-4 /ms``). The STDP traces are
    all-to-all (:class:`DopamineSTDP`); Izhikevich's ``daspnet.m`` resets them at each
    spike (nearest-spike pairing).

    Parameters
    ----------
    duration : float
        Biological time (s).
    n_inputs : int
        Plastic inputs (synapse 0 is rewarded).
    rate, background_rate : float
        Poisson rates of the plastic and background inputs (Hz).
    w_unit : float
        Current jump of strength ``s = 1`` (A).
    n_background : int
        Static background inputs.
    w_background : float
        Current jump of a background spike (A).
    i_ext : float
        Constant current into the neuron (A).
    dt : float
        Time step (s).
    seed : int
    sample_every : float
        Sampling interval of ``W`` and the dopamine level (s).

    Returns
    -------
    xarray.Dataset
        ``W(time, W_post, W_pre)`` in units of ``s`` (divided by ``w_unit``), ``dopamine_level``,
        final weights, spikes; attrs ``rewarded_final``, ``others_mean``, ``others_max`` (final
        ``s``), ``t_rewarded_max`` (first sample with the rewarded ``s >= 0.95 x 4``, NaN if
        none), ``others_mean_at_max`` (the others' mean ``s`` then), ``post_rate`` (Hz) and
        ``w_unit`` (A).

    Raises
    ------
    RangeError
        If ``n_inputs < 2`` (synapse 0 is rewarded; at least one other is compared with it).
    """
    least = MIN_COUNTS["izhikevich2007"]["n_inputs"]
    if n_inputs < least:
        raise RangeError("izhikevich2007", "n_inputs", n_inputs,
                         f"expected an integer >= {least}: synapse 0 is rewarded and compared with the others")
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=n_inputs, rate=rate))
    post = net.add(LIF(name="post", n=1, tau_m=0.02, v_rest=-0.070, v_thresh=-0.050, v_reset=-0.060, r_m=1e8,
                       tau_e=0.005, t_ref=0.002, i_ext=i_ext))
    bg = net.add(PoissonGroup(name="background", n=n_background, rate=background_rate))
    net.add(Projection(name="bg", pre=bg, post=post, target="I_e", weight=w_background))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.0))
    net.add(CoincidenceReward(name="reward", modulator="dopamine", pre="inputs", post="post",
                              pre_neuron=0, post_neuron=0, window=0.02, delay_min=1.0,
                              delay_max=3.0, amount=0.5 / 0.01))
    rule = DopamineSTDP(A_plus=0.1 * w_unit, A_minus=0.15 * w_unit, tau_plus=0.02, tau_minus=0.02,
                        tau_c=1.0, b=-0.002 / 0.01, modulator="dopamine")
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=w_unit, w_min=0.0,
                       w_max=4 * w_unit, rule=rule))
    net.add(SpikeProbe(name="spikes", population="post"))
    net.add(SpikeProbe(name="in0", population="inputs"))
    net.add(WeightProbe(name="W", projection="syn", sample_every=sample_every))
    net.add(ModulatorProbe(name="dopamine_level", modulator="dopamine", sample_every=sample_every))
    ds = simulate(net, duration, backend=backend, dt=dt, seed=seed, progress=progress, chunk_steps=1024,
                  **_options(run_options))
    ds["W"] = ds["W"] / w_unit
    ds["W"].attrs.update(units="1", long_name="synaptic strength s (Izhikevich units)")
    w = ds["w_syn"].values / w_unit
    pops = ds["spike_population"].values
    traj = ds["W"].values[:, 0, :]
    near_max = np.flatnonzero(traj[:, 0] >= 0.95 * 4.0)
    ds.attrs.update({"rewarded_final": float(w[0]), "others_mean": float(w[1:].mean()),
                     "others_max": float(w[1:].max()),
                     "t_rewarded_max": float(ds["time"].values[near_max[0]]) if near_max.size else float("nan"),
                     "others_mean_at_max": float(traj[near_max[0], 1:].mean()) if near_max.size else float("nan"),
                     "post_rate": float(np.sum(pops == "post") / duration), "w_unit": w_unit})
    return ds


@protocol
def pes_learning(n_pre: int = 40, n_post: int = 4, rate: float = 50.0, segment: float = 0.2,
                 n_segments: int = 40, eta: float = 2e-3, tau: float = 0.01, dt: float = 1e-3,
                 seed: int = 0, progress: bool = False, backend: Any = None,
                 run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Error-modulated (PES) learning of a linear map by a spiking network.

    ``n_pre`` Poisson inputs fire at ``rate * u_j`` with a new random pattern
    ``u ~ U[0, 1]^n_pre`` every ``segment`` seconds. A fixed random *teacher* projection
    drives the ``soma`` input of ``n_post`` rate units; a plastic projection from the same
    inputs drives their ``dend`` input and learns with the spiking delta rule
    ``dw_ij/dt = eta m e_i x_j``, ``e = soma - dend`` (Nengo's PES; MacNeil & Eliasmith 2011),
    with the modulator ``m = 1``. ``backend`` and ``run_options`` as for every protocol.

    Returns
    -------
    xarray.Dataset
        ``soma``, ``dend`` ``(time, neuron)``, ``error (time)`` (mean absolute error),
        ``w_learner`` and ``w_teacher`` ``(syn_synapse)`` and the attrs ``error_first``,
        ``error_last`` (mean absolute error over the first and last 20 % of the run) and
        ``weight_correlation`` (learned vs teacher weights).
    """
    rng = np.random.default_rng(check_seed("pes_learning", seed, allow_none=False))
    pattern = rng.uniform(0.0, 1.0, size=(n_segments, n_pre))
    teacher = rng.uniform(-1.0, 1.0, size=(n_post, n_pre)) / n_pre
    net = Network()
    inputs = net.add(PoissonGroup(name="inputs", n=n_pre, rate=rate * pattern, rate_interval=segment))
    out = net.add(RateUnits(name="out", n=n_post, tau=tau))
    net.add(ProgrammedSignal(name="m", values=[1.0], interval=segment * n_segments))
    net.add(Projection(name="teacher", pre=inputs, post=out, target="soma", weight=teacher))
    net.add(Projection(name="learner", pre=inputs, post=out, target="dend", weight=np.zeros((n_post, n_pre)),
                       rule=PES(eta=eta, tau_pre=tau, modulator="m")))
    for var in ("soma", "dend"):
        net.add(StateProbe(name=f"p_{var}", population="out", variable=var, sample_every=10 * dt))
    ds = simulate(net, segment * n_segments, backend=backend, dt=dt, seed=seed, progress=progress,
                  **_options(run_options))
    err = np.abs(ds["p_soma"].values - ds["p_dend"].values).mean(axis=1)
    n = err.size
    ds["error"] = variable("time", err, "1", "mean absolute error |soma - dend|")
    ds["w_teacher"] = variable(ds["w_learner"].dims, teacher.reshape(-1)[: ds["w_learner"].size], "1",
                               "teacher weights")
    w = ds["w_learner"].values
    ds.attrs.update(error_first=float(err[: max(1, n // 5)].mean()), error_last=float(err[-max(1, n // 5):].mean()),
                    weight_correlation=float(np.corrcoef(w, teacher.reshape(-1))[0, 1]))
    return ds


@protocol
def spiking_fwp_sequence(fwp_rule: str = "delta", feature_map: str = "relu", steps: int = 6, d_key: int = 4,
                         d_value: int = 3, neurons_per_feature: int = 20, rate: float = 100.0,
                         phase: float = 0.2, tau: float = 0.01, dt: float = 1e-3, beta: float = 0.8,
                         seed: int = 0, backend: Any = None,
                         run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """A spiking realisation of a rate FWP on a random key/value sequence, beside the rate FWP.

    ``fwp_rule`` is ``"hebbian"`` or ``"delta"``; ``phi(k)`` and ``phi(q)`` are
    L2-normalised and every step writes with learning rate ``beta`` (< 1, as the spiking
    delta rule requires ``beta ||phi(k)||^2 < 1``). Draws ``steps`` random keys, queries (normal) and values (uniform in [0, 1]) and runs
    :func:`plastinet.experiments.fwp_bridge.run_fwp` (key/query neurons at rates proportional
    to ``phi(k), phi(q)``, value neurons as teacher, a neuromodulator carrying beta) on
    ``backend`` with ``run_options``, as every protocol.
    """
    from plastinet.experiments.fwp_bridge import run_fwp
    from plastinet.fwp import RULES as RATE_RULES
    from plastinet.fwp import FeatureMap
    from plastinet.fwp.feature_maps import as_feature_map

    rng = np.random.default_rng(check_seed("spiking_fwp_sequence", seed, allow_none=False))
    k = rng.normal(size=(steps, d_key))
    q = k + 0.1 * rng.normal(size=(steps, d_key))
    v = rng.uniform(0.0, 1.0, size=(steps, d_value))
    phi = as_feature_map(feature_map)
    rate_rule = RATE_RULES[fwp_rule](feature_map=FeatureMap(phi.kind, nu=phi.nu, normalize="l2"))
    return run_fwp(rate_rule, q, k, v, np.full(steps, beta), neurons_per_feature=neurons_per_feature, rate=rate, phase=phase,
                   tau=tau, dt=dt, seed=seed, backend=backend,
                   run_options=run_options)
