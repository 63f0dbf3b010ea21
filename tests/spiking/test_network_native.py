"""The compiled step loop of the numpy engine gives the numpy path's results bit for bit."""

import warnings

import numpy as np
import pytest

from plastinet.spiking import (
    LIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    Simulator,
    SpikeGenerator,
    SpikeProbe,
    StateProbe,
    TsodyksMarkram,
    WeightProbe,
    network_native,
)

PA = 1e-12


def _pairs(n_pre, n_post, p, rng, no_self=False):
    mask = rng.random((n_pre, n_post)) < p
    if no_self:
        np.fill_diagonal(mask, False)
    return np.nonzero(mask)


def _recurrent(pairing="all", bound="additive", t_ref=0.002, stp=False, seed=0, delays=False):
    """A small E/I network with Poisson drive, generator input and pair STDP on E->E; with
    ``delays``: heterogeneous delays up to 20 ms on E->E, scalar ones on P->E and I->E."""
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


@pytest.mark.parametrize("pairing,bound,t_ref,delays", [("all", "additive", 0.002, False),
                                                        ("nearest", "soft", 0.002, False),
                                                        ("all", "soft", 0.0, False),
                                                        ("all", "additive", 0.002, True)])
def test_compiled_loop_gives_the_numpy_spikes_weights_and_states(monkeypatch, pairing, bound, t_ref, delays):
    net = _recurrent(pairing, bound, t_ref, delays=delays)
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
