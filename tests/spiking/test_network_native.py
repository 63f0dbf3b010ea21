"""The compiled step loop of the numpy engine gives the numpy path's results bit for bit."""

import warnings

import numpy as np
import pytest

from plastinet.experiments import network_protocols
from plastinet.spiking import (
    LIF,
    CoincidenceReward,
    DopamineSTDP,
    Izhikevich,
    ModulatorProbe,
    Network,
    NoiseCurrent,
    PairSTDP,
    PoissonGroup,
    Projection,
    Simulator,
    SpikeGenerator,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    TsodyksMarkram,
    WeightProbe,
    network_native,
)
from plastinet.spiking import engine as spiking_engine

PA = 1e-12


def _pairs(n_pre, n_post, p, rng, no_self=False):
    mask = rng.random((n_pre, n_post)) < p
    if no_self:
        np.fill_diagonal(mask, False)
    return np.nonzero(mask)


def _recurrent(pairing="all", bound="additive", t_ref=0.002, stp=False, seed=0, delays=False, noise=False):
    """A small E/I network with Poisson drive, generator input and pair STDP on E->E; with
    ``delays``: heterogeneous delays up to 20 ms on E->E, scalar ones on P->E and I->E; with
    ``noise``: a normal noise current into I's I_e."""
    rng = np.random.default_rng(seed)
    common = dict(v_rest=-0.070, v_thresh=-0.050, v_reset=-0.060, r_m=1e8, tau_e=0.005, tau_i=0.010,
                  t_ref=t_ref)
    P = PoissonGroup("P", 100, rate=40.0)
    G = SpikeGenerator("G", 3, indices=[0, 1, 2, 0], times=[0.01, 0.01, 0.02, 0.05])
    E = LIF("E", 160, tau_m=0.020, v_init=-0.065, **common)
    inh = LIF("I", 40, tau_m=0.010, **common)
    net = Network(P, G, E, inh)
    w = 30 * PA
    rule = PairSTDP(A_plus=0.05 * w, A_minus=1.05 * 0.05 * w, tau_plus=0.02, tau_minus=0.03,
                    pairing=pairing, bound=bound)
    d = (lambda value: {"delay": value}) if delays else (lambda value: {})
    net.add(Projection("PE", P, E, target="I_e", weight=w, connectivity=_pairs(100, 160, 0.5, rng), **d(0.0015)))
    net.add(Projection("PI", P, inh, target="I_e", weight=w, connectivity=_pairs(100, 40, 0.5, rng)))
    net.add(Projection("GE", G, E, target="I_e", weight=200 * PA, connectivity=_pairs(3, 160, 0.5, rng),
                       stp=TsodyksMarkram(U=0.5, tau_rec=0.1) if stp else None))
    ee = _pairs(160, 160, 0.1, rng, no_self=True)
    net.add(Projection("EE", E, E, target="I_e", connectivity=ee, rule=rule, w_min=0.0, w_max=2 * w,
                       weight=rng.uniform(0, 2 * w, ee[0].size), **d(("uniform", 0.0, 0.02))))
    net.add(Projection("EI", E, inh, target="I_e", weight=w, connectivity=_pairs(160, 40, 0.1, rng)))
    net.add(Projection("IE", inh, E, target="I_i", weight=-120 * PA, connectivity=_pairs(40, 160, 0.1, rng),
                       **d(0.0005)))
    net.add(Projection("II", inh, inh, target="I_i", weight=-120 * PA,
                       connectivity=_pairs(40, 40, 0.1, rng, no_self=True)))
    if noise:
        net.add(NoiseCurrent("n", population="I", target="I_e", distribution="normal", mean=5 * PA, std=20 * PA))
    net.add(SpikeProbe("sE", population="E"))
    net.add(SpikeProbe("sI", population="I"))
    net.add(SpikeProbe("sG", population="G"))
    net.add(StateProbe("vE", population="E", variable="v", sample_every=0.0123))
    net.add(WeightProbe("wEE", projection="EE", sample_every=0.0123))
    return net


def _run(monkeypatch, native, net, duration=0.4, **kw):
    monkeypatch.setenv("PLASTINET_NATIVE", native)
    sim = Simulator(net, dt=1e-4, seed=7, **kw)
    return sim, sim.run(duration)


def _assert_identical(a, b):
    assert set(a.data_vars) == set(b.data_vars)
    for name in b.data_vars:
        assert np.array_equal(a[name].values, b[name].values), name
    assert np.array_equal(a["time"].values, b["time"].values)


@pytest.fixture(autouse=True)
def _compiled():
    if network_native.native_status() != "enabled":
        pytest.skip(f"no compiled loop on this machine: {network_native.native_status()}")


@pytest.mark.parametrize("pairing,bound,t_ref,delays,noise", [("all", "additive", 0.002, False, False),
                                                              ("nearest", "soft", 0.002, False, True),
                                                              ("all", "soft", 0.0, False, False),
                                                              ("all", "additive", 0.002, True, False)])
def test_compiled_loop_gives_the_numpy_spikes_weights_and_states(monkeypatch, pairing, bound, t_ref, delays, noise):
    net = _recurrent(pairing, bound, t_ref, delays=delays, noise=noise)
    sim, fast = _run(monkeypatch, "1", net)
    assert sim._native is not None
    ref_sim, ref = _run(monkeypatch, "0", net)
    assert ref_sim._native is None
    n_e = int((ref.spike_population == "E").sum())
    assert n_e > 200 and int((ref.spike_population == "I").sum()) > 50       # a recurrent regime
    assert not np.array_equal(ref.w_EE.values, net.projections["EE"].weight)  # STDP acted
    _assert_identical(fast, ref)
    for name in ref_sim.dyn:
        for var in ("v", "I_e", "I_i", "ref"):
            assert np.array_equal(getattr(sim.dyn[name], var), getattr(ref_sim.dyn[name], var)), (name, var)
    fast_rule, ref_rule = sim.projs["EE"].plasticity, ref_sim.projs["EE"].plasticity
    assert np.array_equal(fast_rule.y.last, ref_rule.y.last) and np.array_equal(fast_rule.x.val, ref_rule.x.val)
    for name in ref_sim.in_flight:                                      # spikes still in flight
        assert all(np.array_equal(a, b) for a, b in zip(sim.in_flight[name], ref_sim.in_flight[name])), name
    if delays:
        assert sim.projs["EE"].max_delay == 200 and ref_sim.in_flight["E"][0].size > 0


def test_compiled_loop_small_record_buffers_and_chunks(monkeypatch):
    # record buffers that fill within a chunk, and chunks of 1 and 1000 steps (with delays)
    net = _recurrent(delays=True)
    ref = _run(monkeypatch, "0", net, duration=0.2)[1]
    for chunk in (1, 1000):
        monkeypatch.setenv("PLASTINET_NATIVE", "1")
        sim = Simulator(net, dt=1e-4, seed=7, chunk_steps=chunk)
        for name, c in zip(sim.network.populations, sim._native.pops):
            if c.dynamic:
                c.out_cap = c.n + 3                      # room for one step at a time
        _assert_identical(sim.run(0.2), ref)


def test_unsupported_networks_use_the_numpy_path(monkeypatch):
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    sim = Simulator(_recurrent(stp=True), dt=1e-4, seed=7)
    assert sim._native is None
    assert "short-term plasticity" in network_native.unsupported_reason(sim)


def test_without_a_compiler_the_numpy_path_is_used_and_it_says_why(monkeypatch, tmp_path):
    net = _recurrent()
    ref = _run(monkeypatch, "0", net, duration=0.1)[1]
    monkeypatch.setenv("PLASTINET_CACHE_DIR", str(tmp_path))      # nothing cached
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(network_native, "_lib", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim, out = _run(monkeypatch, "1", net, duration=0.1)
        _run(monkeypatch, "1", net, duration=0.1)
    said = [w for w in caught if "compiled spiking step loop is unavailable" in str(w.message)]
    assert len(said) == 1                                           # once per process
    assert sim._native is None
    assert network_native.native_status().startswith("unavailable")
    _assert_identical(out, ref)


def _vogels_like(seed=0, method="euler"):
    """A small Vogels et al. 2011 network: conductance LIF with background current, iSTDP on I->E."""
    from plastinet.spiking import ConductanceLIF, InhibitorySTDP

    rng = np.random.default_rng(seed)
    kw = dict(tau_m=0.02, g_l=10e-9, E_l=-0.060, v_thresh=-0.050, v_reset=-0.060, E_e=0.0, E_i=-0.080,
              tau_e=0.005, tau_i=0.010, t_ref=0.005, i_ext=200e-12, method=method)
    exc, inh = ConductanceLIF("exc", 160, v_init=-0.055, **kw), ConductanceLIF("inh", 40, **kw)
    net = Network(exc, inh)
    for name, pre, post, target, w in (("ee", exc, exc, "g_e", 0.03), ("ei", exc, inh, "g_e", 0.03),
                                       ("ii", inh, inh, "g_i", 0.3)):
        net.add(Projection(name, pre, post, target=target, weight=w,
                           connectivity=_pairs(pre.n, post.n, 0.1, rng, no_self=pre is post)))
    ie = _pairs(40, 160, 0.1, rng)
    net.add(Projection("ie", inh, exc, target="g_i", connectivity=ie, weight=rng.uniform(0, 0.5, ie[0].size),
                       w_min=0.0, w_max=10.0, rule=InhibitorySTDP(eta=0.01, tau=0.02, rho0=3.0)))
    net.add(SpikeProbe("s", population="exc"))
    net.add(StateProbe("g", population="exc", variable="g_i", sample_every=0.0101))
    return net


def test_compiled_loop_conductance_lif_and_inhibitory_stdp(monkeypatch):
    net = _vogels_like()
    sim, fast = _run(monkeypatch, "1", net, duration=0.3)
    assert sim._native is not None
    ref_sim, ref = _run(monkeypatch, "0", net, duration=0.3)
    assert int((ref.spike_population == "exc").sum()) > 300
    assert not np.array_equal(ref.w_ie.values, sim.projs["ie"].proj.weight)   # iSTDP acted
    _assert_identical(fast, ref)
    for name in ref_sim.dyn:
        for var in ("v", "g_e", "g_i", "ref", "_use_gi"):
            assert np.array_equal(getattr(sim.dyn[name], var), getattr(ref_sim.dyn[name], var)), (name, var)
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    assert "exponential_euler" in network_native.unsupported_reason(
        Simulator(_vogels_like(method="exponential_euler"), dt=1e-4, seed=7))


MV = 1e-3


def _izhikevich(convention="nearest", method="half_steps", delays=False, seed=0):
    """A small Izhikevich E/I network with thalamic noise, dopamine STDP on E->E and E->I and a
    coincidence reward of short delay, so that several rewards arrive within a second."""
    rng = np.random.default_rng(seed)
    exc = Izhikevich("exc", 160, a=20.0, b=200.0, c=-0.065, d=8.0, method=method)
    inh = Izhikevich("inh", 40, a=100.0, b=200.0, c=-0.065, d=2.0, method=method)
    net = Network(exc, inh)
    for pop in (exc, inh):
        net.add(NoiseCurrent(f"th_{pop.name}", population=pop.name, target="I", low=-10 * MV, high=10 * MV))
    net.add(SpikeSignal("dopamine", tau=0.2, increment=0.0))
    net.add(CoincidenceReward("reward", modulator="dopamine", pre="exc", post="exc", pre_neuron=0, post_neuron=1,
                              window=0.2, delay_min=0.01, delay_max=0.05, amount=50.0))
    rule = DopamineSTDP(A_plus=0.1 * MV, A_minus=0.15 * MV, tau_plus=0.02, tau_minus=0.02, tau_c=1.0, b=-0.2,
                        modulator="dopamine", convention=convention)
    d = (lambda value: {"delay": value}) if delays else (lambda value: {})
    ee = _pairs(160, 160, 0.1, rng, no_self=True)
    net.add(Projection("ee", exc, exc, target="I", connectivity=ee, weight=rng.uniform(0, 2 * MV, ee[0].size),
                       w_min=0.0, w_max=4 * MV, rule=rule, **d(("uniform", 0.0, 0.005))))
    net.add(Projection("ei", exc, inh, target="I", connectivity=_pairs(160, 40, 0.1, rng), weight=MV,
                       w_min=0.0, w_max=4 * MV, rule=rule))
    net.add(Projection("ie", inh, exc, target="I", connectivity=_pairs(40, 160, 0.2, rng), weight=-MV))
    net.add(SpikeProbe("s_exc", population="exc"))
    net.add(SpikeProbe("s_inh", population="inh"))
    net.add(StateProbe("u", population="exc", variable="u", sample_every=0.037))
    net.add(WeightProbe("W", projection="ee", sample_every=0.037))
    net.add(ModulatorProbe("da", modulator="dopamine", sample_every=0.037))
    return net


@pytest.mark.parametrize("convention,method,delays", [("nearest", "half_steps", False),
                                                      ("all_to_all", "euler", True)])
def test_compiled_loop_izhikevich_noise_dopamine_stdp_and_rewards(monkeypatch, convention, method, delays):
    net = _izhikevich(convention, method, delays)
    runs = {}
    for native in ("1", "0"):
        monkeypatch.setenv("PLASTINET_NATIVE", native)
        sim = Simulator(net, dt=1e-3, seed=3, chunk_steps=100)
        runs[native] = sim, sim.run(1.5)
    (sim, fast), (ref_sim, ref) = runs["1"], runs["0"]
    assert sim._native is not None and ref_sim._native is None
    assert ref_sim._reward_counter >= 3 and ref.da.values.max() > 10.0          # rewards arrived
    assert int((ref.spike_population == "exc").sum()) > 500
    assert not np.array_equal(ref.w_ee.values, net.projections["ee"].weight)    # dopamine STDP acted
    _assert_identical(fast, ref)
    assert sim._reward_counter == ref_sim._reward_counter and sim.reward_queue == ref_sim.reward_queue
    for name in ref_sim.dyn:
        for var in ("v", "u", "I"):
            assert np.array_equal(getattr(sim.dyn[name], var), getattr(ref_sim.dyn[name], var)), (name, var)
    for name in ("ee", "ei"):
        a, b = sim.projs[name], ref_sim.projs[name]
        assert np.array_equal(a.w, b.w), name
        for key, arr in b.plasticity.state().items():
            assert np.array_equal(a.plasticity.state()[key], arr), (name, key)
    assert sim.mods["dopamine"].val == ref_sim.mods["dopamine"].val


def test_compiled_loop_runs_the_izhikevich_2007_network(monkeypatch):
    used = []

    def spy(sim):
        out = network_native.native_network(sim)
        used.append(out is not None)
        return out

    monkeypatch.setattr(spiking_engine, "native_network", spy)
    results = {}
    for native in ("1", "0"):
        monkeypatch.setenv("PLASTINET_NATIVE", native)
        results[native] = network_protocols.izhikevich2007_network(
            duration=2.0, n_exc=200, n_inh=50, fan_out=50, sample_every=0.5, record_spikes=True)
    assert used == [True, False]
    fast, ref = results["1"], results["0"]
    assert ref.attrs["rate_exc"] > 0.5
    _assert_identical(fast, ref)
    for key in ("rewarded_final", "others_mean", "others_p99", "rate_exc", "rate_inh"):
        assert fast.attrs[key] == ref.attrs[key], key


def test_networks_the_compiled_loop_does_not_cover_use_the_numpy_path(monkeypatch):
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    net = _izhikevich()
    net.add(NoiseCurrent("second", population="exc", target="I", low=-MV, high=MV))
    sim = Simulator(net, dt=1e-3, seed=3)
    assert sim._native is None and "more than one noise current" in network_native.unsupported_reason(sim)
    net = _izhikevich()
    net.add(SpikeSignal("other", tau=0.1, sources=("inh",)))
    sim = Simulator(net, dt=1e-3, seed=3)
    assert sim._native is None and "modulator 'other'" in network_native.unsupported_reason(sim)
