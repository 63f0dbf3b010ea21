"""Recurrent network experiments: Izhikevich 2007's full network and Vogels et al. 2011.

* :func:`izhikevich2007_network` - 1,000 Izhikevich neurons with dopamine-modulated STDP
  solving the distal reward problem (Izhikevich 2007, Fig. 1; his ``daspnet.m``).
* :func:`vogels2011` - 8,000 + 2,000 conductance LIF neurons whose inhibitory STDP brings
  the excitatory rates to a target and balances excitation and inhibition (Vogels et al.
  2011, as in Brian2's ``examples/frompapers/Vogels_et_al_2011.py``).

Both build a :class:`~plastinet.spiking.Network`, run it through
:func:`plastinet.simulate` (``backend``, ``run_options`` as for every protocol of
:mod:`plastinet.experiments.protocols`) and summarise the outcome in the result's attrs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import xarray as xr

from plastinet.errors import RangeError
from plastinet.results import variable
from plastinet.seeds import check_seed
from plastinet.simulation import check_run_options, simulate
from plastinet.spiking.network import (
    CoincidenceReward,
    ConductanceLIF,
    Izhikevich,
    ModulatorProbe,
    Network,
    NoiseCurrent,
    Projection,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    WeightProbe,
)
from plastinet.spiking.rules import DopamineSTDP, InhibitorySTDP

__all__ = ["izhikevich2007_network", "vogels2011", "IZHIKEVICH_DT", "IZHIKEVICH_UNIT"]

#: Time step of Izhikevich's code (s); his per-step quantities (thalamic input) assume it.
IZHIKEVICH_DT = 1e-3
#: One unit of Izhikevich's synaptic strength ``s`` (a jump of 1 mV per spike at 1 ms steps), in V.
IZHIKEVICH_UNIT = 1e-3
#: daspnet.m's per-step decays as time constants (s): STDP traces x0.95 per ms, eligibility
#: x0.99 per 10 ms, dopamine x0.995 per ms.
TAU_STDP = -1e-3 / math.log(0.95)
TAU_ELIGIBILITY = -1e-2 / math.log(0.99)
TAU_DOPAMINE = -1e-3 / math.log(0.995)


def _options(run_options: Mapping[str, Any] | None) -> dict[str, Any]:
    return check_run_options("protocol run_options", run_options)


def _rate(ds: xr.Dataset, population: str, n: int, t0: float, t1: float) -> float:
    """Mean rate (Hz) of ``population`` (``n`` neurons) over ``[t0, t1)`` from the spike table."""
    t = ds["spike_time"].values[ds["spike_population"].values == population]
    return float(np.sum((t >= t0) & (t < t1)) / (n * (t1 - t0))) if t1 > t0 else float("nan")


def izhikevich2007_network(duration: float = 3600.0, n_exc: int = 800, n_inh: int = 200,
                           fan_out: int = 100, seed: int = 0, sample_every: float = 60.0,
                           record_spikes: bool = False, progress: bool = False, backend: Any = None,
                           run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Izhikevich (2007) distal reward in his full network (Fig. 1; ``daspnet.m``).

    ``n_exc`` regular-spiking (a = 0.02/ms, d = 8 mV/ms) and ``n_inh`` fast-spiking
    (a = 0.1/ms, d = 2 mV/ms) :class:`~plastinet.spiking.Izhikevich` neurons (b = 0.2/ms,
    c = -65 mV), integrated with his two 0.5 ms half steps (``method="half_steps"``) at
    ``dt = 1 ms``. Every neuron has ``fan_out`` outgoing synapses: an excitatory neuron's
    targets are drawn uniformly (with repetition) from all neurons, an inhibitory neuron's
    from the excitatory ones. Excitatory synapses start at ``s = 1`` (1 mV), are plastic
    (:class:`~plastinet.spiking.DopamineSTDP` with his nearest-spike trace convention:
    A+ = 0.1, A- = 0.15, traces x0.95 per ms, eligibility x0.99 per 10 ms) and are clipped
    to ``[0, 4]``; inhibitory ones are fixed at ``-1``. Every neuron gets his thalamic
    input ``13 (rand - 0.5)`` mV per ms (:class:`~plastinet.spiking.NoiseCurrent`).
    Dopamine decays x0.995 per ms with a tonic level of 0.002; his update "every 10 ms:
    ``s += (0.002 + DA) sd``" is the continuous ``ds/dt = sd (DA + 0.002) / 10 ms``, i.e.
    ``n = DA / 10 ms`` (a reward of 0.5 adds 50 /s) and ``b = -0.2 /s``.

    The rewarded synapse is the first excitatory-to-excitatory synapse of neuron 0
    (``n1 = 0``, ``n2`` its target); it starts at 0. When ``n2`` fires within 20 ms after
    ``n1`` a reward of 0.5 is delivered after a delay drawn uniformly from 1-3 s.
    Spike delivery: his synapses (all of delay 1 ms) act on the membrane update that
    follows the spike, which is plastinet's same-step delivery (``delay = 0``): a spike
    found in step ``n`` enters the input of step ``n + 1``.

    Parameters
    ----------
    duration : float
        Biological time (s); his Fig. 1 spans one hour.
    n_exc, n_inh : int
        Numbers of excitatory and inhibitory neurons.
    fan_out : int
        Outgoing synapses per neuron.
    seed : int
        Seed of the connectivity and of the run.
    sample_every : float
        Sampling period of the excitatory weights and the dopamine level (s).
    record_spikes : bool
        Record every spike (needed for the rates in the attrs; large for long runs).
    progress, backend, run_options
        As for every protocol.

    Returns
    -------
    xarray.Dataset
        ``W(time, W_synapse)``: the excitatory-to-excitatory strengths ``s`` (units of
        1 mV), ``dopamine_level`` (1/s), final weights; attrs ``rewarded_final``,
        ``others_mean``, ``others_p99``, ``others_max`` (final ``s``), ``t_rewarded_max``
        (first sample at which the rewarded synapse is within 5 % of the bound, NaN if
        never), ``n1``, ``n2``, ``rewarded_synapse`` and, with ``record_spikes``,
        ``rate_exc`` and ``rate_inh`` (Hz).
    """
    for name, value, least in (("n_exc", n_exc, 2), ("n_inh", n_inh, 1), ("fan_out", fan_out, 1)):
        if value < least:
            raise RangeError("izhikevich2007_network", name, value, f"expected an integer >= {least}")
    rng = np.random.default_rng(check_seed("izhikevich2007_network", seed, allow_none=False))
    n_all = n_exc + n_inh
    exc_targets = rng.integers(0, n_all, size=(n_exc, fan_out))
    inh_targets = rng.integers(0, n_exc, size=(n_inh, fan_out))
    pre = np.repeat(np.arange(n_exc), fan_out)
    tgt = exc_targets.reshape(-1)
    to_exc = tgt < n_exc
    ee_pre, ee_post = pre[to_exc], tgt[to_exc]
    ei_pre, ei_post = pre[~to_exc], tgt[~to_exc] - n_exc
    if not np.any(ee_pre == 0):
        raise RangeError("izhikevich2007_network", "seed", seed,
                         "neuron 0 has no excitatory target to reward with this seed; choose another seed")
    rewarded = int(np.flatnonzero(ee_pre == 0)[0])
    n2 = int(ee_post[rewarded])
    s = IZHIKEVICH_UNIT
    w_ee = np.full(ee_pre.size, s)
    w_ee[rewarded] = 0.0
    rule = DopamineSTDP(A_plus=0.1 * s, A_minus=0.15 * s, tau_plus=TAU_STDP, tau_minus=TAU_STDP,
                        tau_c=TAU_ELIGIBILITY, b=-0.002 / 0.01, modulator="dopamine", convention="nearest")
    net = Network()
    exc = net.add(Izhikevich(name="exc", n=n_exc, a=20.0, b=200.0, c=-0.065, d=8.0, method="half_steps"))
    inh = net.add(Izhikevich(name="inh", n=n_inh, a=100.0, b=200.0, c=-0.065, d=2.0, method="half_steps"))
    for pop in ("exc", "inh"):
        net.add(NoiseCurrent(name=f"thalamus_{pop}", population=pop, target="I", distribution="uniform",
                             low=-6.5 * s, high=6.5 * s))
    net.add(SpikeSignal(name="dopamine", tau=TAU_DOPAMINE, increment=0.0))
    net.add(CoincidenceReward(name="reward", modulator="dopamine", pre="exc", post="exc", pre_neuron=0,
                              post_neuron=n2, window=0.02, delay_min=1.0, delay_max=3.0, amount=0.5 / 0.01))
    net.add(Projection(name="ee", pre=exc, post=exc, target="I", connectivity=(ee_pre, ee_post), weight=w_ee,
                       w_min=0.0, w_max=4 * s, rule=rule))
    net.add(Projection(name="ei", pre=exc, post=inh, target="I", connectivity=(ei_pre, ei_post), weight=s,
                       w_min=0.0, w_max=4 * s, rule=rule))
    net.add(Projection(name="ie", pre=inh, post=exc, target="I",
                       connectivity=(np.repeat(np.arange(n_inh), fan_out), inh_targets.reshape(-1)), weight=-s))
    net.add(WeightProbe(name="W", projection="ee", sample_every=sample_every))
    net.add(ModulatorProbe(name="dopamine_level", modulator="dopamine", sample_every=sample_every))
    if record_spikes:
        net.add(SpikeProbe(name="spikes_exc", population="exc"))
        net.add(SpikeProbe(name="spikes_inh", population="inh"))
    ds = simulate(net, duration, backend=backend, dt=IZHIKEVICH_DT, seed=seed, progress=progress,
                  **_options(run_options))
    ds["W"] = ds["W"] / s
    ds["W"].attrs.update(units="1", long_name="synaptic strength s (Izhikevich units: mV)")
    # the engines store synapses sorted by presynaptic neuron (stable): find the rewarded one
    syn_pre, syn_post = ds["ee_pre"].values, ds["ee_post"].values
    k = int(np.flatnonzero((syn_pre == 0) & (syn_post == n2))[0])
    w = ds["w_ee"].values / s
    others = np.delete(w, k)
    traj = ds["W"].values[:, k]
    near_max = np.flatnonzero(traj >= 0.95 * 4.0)
    attrs: dict[str, Any] = {
        "n1": 0, "n2": n2, "rewarded_synapse": k, "rewarded_final": float(w[k]),
        "others_mean": float(others.mean()), "others_p99": float(np.percentile(others, 99)),
        "others_max": float(others.max()),
        "t_rewarded_max": float(ds["time"].values[near_max[0]]) if near_max.size else float("nan")}
    if record_spikes:
        attrs.update(rate_exc=_rate(ds, "exc", n_exc, 0.0, duration), rate_inh=_rate(ds, "inh", n_inh, 0.0, duration))
    ds.attrs.update(attrs)
    return ds


def _ei_currents(ds: xr.Dataset, g_l: float, E_e: float, E_i: float, t0: float, t1: float
                 ) -> tuple[float, float, float, float]:
    """Mean excitatory and inhibitory input currents (A) and two E/I correlations.

    ``I_exc = g_l g_e (E_e - v)``, ``I_inh = g_l g_i (E_i - v)`` of the recorded neurons
    over samples in ``[t0, t1)``. Temporal: the correlation of ``I_exc`` with ``-I_inh``
    over time, computed per neuron and averaged (NaN where a current is constant).
    Across neurons: the correlation, over the recorded neurons, of each neuron's mean
    ``I_exc`` with its mean ``-I_inh`` (detailed balance: a neuron with more excitation
    receives more inhibition).
    """
    t = ds["time"].values
    sel = (t >= t0) & (t < t1)
    v, ge, gi = (ds[name].values[sel] for name in ("p_v", "p_g_e", "p_g_i"))
    i_exc, i_inh = g_l * ge * (E_e - v), g_l * gi * (E_i - v)
    a = i_exc - i_exc.mean(axis=0)
    b = -i_inh + i_inh.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (a * b).sum(axis=0) / den
    corr = corr[np.isfinite(corr)]
    m_exc, m_inh = i_exc.mean(axis=0), -i_inh.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        across = float(np.corrcoef(m_exc, m_inh)[0, 1]) if m_exc.size > 1 else float("nan")
    return (float(i_exc.mean()), float(i_inh.mean()), float(corr.mean()) if corr.size else float("nan"),
            across)


def vogels2011(n_exc: int = 8000, n_inh: int = 2000, p: float = 0.02, duration: float = 10.0,
               warmup: float = 1.0, eta: float = 1e-3, rho0: float = 3.0, tau: float = 0.02,
               dt: float = 1e-4, n_record: int = 50, seed: int = 0, progress: bool = False,
               backend: Any = None, run_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Vogels et al. (2011): inhibitory STDP balances a recurrent network (Brian2's example).

    ``n_exc`` excitatory and ``n_inh`` inhibitory :class:`~plastinet.spiking.ConductanceLIF`
    neurons (C = 200 pF, g_L = 10 nS, so tau_m = 20 ms; E_L = -60 mV, E_exc = 0 mV,
    E_inh = -80 mV, threshold -50 mV, reset -60 mV, refractory 5 ms, background current
    200 pA; forward Euler as Brian2's example) connected with probability ``p``: E->E and
    E->I add 0.3 nS to g_ampa (tau 5 ms), I->I adds 3 nS to g_gaba (tau 10 ms), and I->E
    synapses start at 0 and learn with :class:`~plastinet.spiking.InhibitorySTDP`
    (``eta``, ``tau``, target rate ``rho0``; weights in [0, 100 nS]). Conductances are in
    units of g_L (0.3 nS is 0.03), so ``eta = 1e-3`` is the example's ``eta = 1e-2`` nS.

    The example first runs 1 s without plasticity. Here that is a separate run of the same
    network (same seed) with ``eta = 0`` for ``warmup`` seconds: its second half gives the
    rates and currents *before* plasticity; the plastic run starts from the same initial
    state and lasts ``duration``; its last second (or last half, if shorter) gives them
    *after*. The E/I balance is measured on ``n_record`` excitatory neurons sampled every
    1 ms: the mean excitatory and inhibitory currents, the temporal correlation of the
    excitatory current with the (sign-flipped) inhibitory one, and their correlation
    across neurons (each neuron's mean excitatory against its mean inhibitory current: the
    detailed balance that iSTDP builds up, neuron by neuron).

    The excitatory rate approaches ``rho0`` slowly, here as in Brian2's example: from
    162 Hz it falls to 8 Hz in 10 s (the example's duration) and to about 5.6 Hz after
    30-40 s (the example run for 30 s: 5.4 Hz). Two things slow it: as the inhibition
    grows the excitatory rate falls and with it the inhibitory rate, so the inhibitory
    conductance grows more slowly than the weights; and the rule's fixed point is ``rho0``
    only for uncorrelated spikes: an inhibitory spike delays its targets' spikes, and at
    30-40 s the I->E pairs count 0.83 of the chance coincidences, which moves the fixed
    point to about ``rho0 / 0.83 = 3.6 Hz``.

    Parameters
    ----------
    n_exc, n_inh : int
        Population sizes.
    p : float
        Connection probability of every projection.
    duration, warmup : float
        Plastic run and control run (s).
    eta : float
        iSTDP learning rate (units of g_L).
    rho0 : float
        Target rate (Hz).
    tau : float
        iSTDP trace time constant (s).
    dt : float
        Time step (s).
    n_record : int
        Excitatory neurons whose currents are recorded.
    seed : int
        Seed of both runs.
    progress, backend, run_options
        As for every protocol.

    Returns
    -------
    xarray.Dataset
        The plastic run: spikes, ``p_v``, ``p_g_e``, ``p_g_i`` of the recorded neurons,
        final I->E weights ``w_ie`` (units of g_L), ``rate_exc(time_bin)`` (Hz, 100 ms bins);
        attrs ``rate_exc_before``, ``rate_exc_after``, ``rate_inh_before``,
        ``rate_inh_after`` (Hz), ``i_exc_before/after``, ``i_inh_before/after`` (A),
        ``ei_correlation_before/after`` (temporal), ``ei_neuron_correlation_before/after``
        (across neurons) and ``w_ie_mean`` (nS).
    """
    if not 0.0 < p <= 1.0:
        raise RangeError("vogels2011", "p", p, "a connection probability must lie in (0, 1]")
    if n_record > n_exc:
        raise RangeError("vogels2011", "n_record", n_record, f"at most n_exc = {n_exc} neurons can be recorded")
    g_l = 10e-9
    nS = 1e-9 / g_l

    def network(learning_rate: float) -> Network:
        kw = dict(tau_m=0.02, g_l=g_l, E_l=-0.060, v_thresh=-0.050, v_reset=-0.060, E_e=0.0, E_i=-0.080,
                  tau_e=0.005, tau_i=0.010, t_ref=0.005, i_ext=200e-12, method="euler")
        net = Network()
        exc = net.add(ConductanceLIF(name="exc", n=n_exc, **kw))
        inh = net.add(ConductanceLIF(name="inh", n=n_inh, **kw))
        net.add(Projection(name="ee", pre=exc, post=exc, target="g_e", connectivity=p, weight=0.3 * nS))
        net.add(Projection(name="ei", pre=exc, post=inh, target="g_e", connectivity=p, weight=0.3 * nS))
        net.add(Projection(name="ii", pre=inh, post=inh, target="g_i", connectivity=p, weight=3.0 * nS))
        net.add(Projection(name="ie", pre=inh, post=exc, target="g_i", connectivity=p, weight=1e-10 * nS,
                           w_min=0.0, w_max=100.0 * nS, rule=InhibitorySTDP(eta=learning_rate, tau=tau, rho0=rho0)))
        net.add(SpikeProbe(name="spikes_exc", population="exc"))
        net.add(SpikeProbe(name="spikes_inh", population="inh"))
        for var in ("v", "g_e", "g_i"):
            net.add(StateProbe(name=f"p_{var}", population="exc", variable=var, indices=np.arange(n_record),
                               sample_every=1e-3))
        return net

    options = _options(run_options)
    before = simulate(network(0.0), warmup, backend=backend, dt=dt, seed=seed, progress=progress, **options)
    ds = simulate(network(eta), duration, backend=backend, dt=dt, seed=seed, progress=progress, **options)
    late = max(duration - 1.0, duration / 2)
    E_e, E_i = 0.0, -0.080
    ie_b, ii_b, corr_b, across_b = _ei_currents(before, g_l, E_e, E_i, warmup / 2, warmup)
    ie_a, ii_a, corr_a, across_a = _ei_currents(ds, g_l, E_e, E_i, late, duration)
    bins = np.arange(0.0, duration + 1e-9, 0.1)
    t_exc = ds["spike_time"].values[ds["spike_population"].values == "exc"]
    counts = np.histogram(t_exc, bins=bins)[0] if bins.size > 1 else np.zeros(0)
    ds["rate_exc"] = variable("time_bin", counts / (n_exc * 0.1), "Hz", "mean excitatory rate in 100 ms bins")
    ds = ds.assign_coords(time_bin=variable("time_bin", bins[:-1] + 0.05, "s", "centre of the rate bin"))
    ds.attrs.update({
        "rate_exc_before": _rate(before, "exc", n_exc, warmup / 2, warmup),
        "rate_inh_before": _rate(before, "inh", n_inh, warmup / 2, warmup),
        "rate_exc_after": _rate(ds, "exc", n_exc, late, duration),
        "rate_inh_after": _rate(ds, "inh", n_inh, late, duration),
        "i_exc_before": ie_b, "i_inh_before": ii_b, "ei_correlation_before": corr_b,
        "i_exc_after": ie_a, "i_inh_after": ii_a, "ei_correlation_after": corr_a,
        "ei_neuron_correlation_before": across_b, "ei_neuron_correlation_after": across_a,
        "w_ie_mean": float(ds["w_ie"].values.mean() / nS), "rho0": rho0, "warmup": warmup})
    return ds
