"""The NEST backend against the numpy engine (skipped with the reason where NEST is missing)."""

from __future__ import annotations

import numpy as np
import pytest

from plastinet.backends import available_backends, get_backend
from plastinet.errors import RangeError, UnsupportedError
from plastinet.spiking import (
    LIF,
    CoincidenceReward,
    ConductanceLIF,
    DopamineSTDP,
    Izhikevich,
    ModulatorProbe,
    Network,
    NoiseCurrent,
    PairSTDP,
    PoissonGroup,
    Projection,
    SpikeGenerator,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    TripletSTDP,
    WeightProbe,
    run,
)
from plastinet.testing.checks import compare_spiking

try:
    get_backend("nest")
except UnsupportedError as err:              # NEST is an optional extra
    pytest.skip(f"NEST is not installed: {err}", allow_module_level=True)

DT = 1e-4


def _trains(name: str, n: int, rate: float, duration: float, seed: int, avoid: set | None = None,
            dt: float = DT) -> SpikeGenerator:
    """Random spike trains on the step grid, optionally avoiding the steps in ``avoid``."""
    rng = np.random.default_rng(seed)
    steps, idx = [], []
    for k in range(n):
        s = np.unique(rng.integers(0, int(duration / dt), rng.poisson(rate * duration)))
        if avoid is not None:
            s = np.array([x for x in s if x not in avoid], dtype=np.int64)
        steps.append(s)
        idx.append(np.full(s.size, k))
    return SpikeGenerator(name=name, n=n, indices=np.concatenate(idx), times=np.concatenate(steps) * dt)


def _static_lif(i_ext: float = 0.0, v_init=None) -> Network:
    net = Network()
    pre = net.add(_trains("pre", 30, 15.0, 1.1, 1))
    inh = net.add(_trains("inh", 10, 10.0, 1.1, 3))
    post = net.add(LIF(name="post", n=4, t_ref=0.002, i_ext=i_ext, v_init=v_init))
    net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 1.2e-9)))
    net.add(Projection(name="inh_syn", pre=inh, post=post, target="I_i", weight=-0.3e-9, connectivity=0.5))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(StateProbe(name="V", population="post", variable="v", sample_every=0.01))
    net.add(StateProbe(name="Ii", population="post", variable="I_i", sample_every=0.01))
    return net


def _pair_injected(avoid_coincidences: bool) -> Network:
    net = Network()
    post = _trains("post", 1, 12.0, 1.1, 2)
    avoid = set(np.rint(post.times / DT).astype(int)) if avoid_coincidences else None
    pre = net.add(_trains("pre", 40, 15.0, 1.1, 1, avoid=avoid))
    post = net.add(post)
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=("uniform", 0.2, 0.8),
                       w_min=0.0, w_max=1.0, rule=PairSTDP(A_plus=0.01, A_minus=0.0105)))
    net.add(SpikeProbe(name="sp", population="pre"))
    return net


@pytest.mark.parametrize("i_ext, v_init", [(0.0, None), (0.25e-9, -0.055)])
def test_static_lif_network_is_identical(i_ext, v_init):
    """Current LIF (iaf_psc_exp) driven by injected trains: identical spikes, states within 1e-9."""
    net = _static_lif(i_ext, v_init)
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert ref.sizes["spike"] > 20
    errs = compare_spiking(ref, got, "static_lif")
    assert max(errs.values()) < 1e-9
    assert got.attrs["backend"] == "nest" and got.attrs["nest_conventions"] == "[]"


def test_pair_stdp_on_injected_trains_is_identical_without_coincidences():
    """stdp_synapse equals plastinet's PairSTDP (all-to-all, additive) within 1e-9, final weights
    included (NEST's pending potentiation after the last presynaptic spike is completed)."""
    net = _pair_injected(avoid_coincidences=True)
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert not np.allclose(ref.w_syn.values, net.projections["syn"].weight[1] * 0)   # weights moved
    compare_spiking(ref, got, "pair_injected")


def test_same_step_pair_is_the_documented_convention():
    """A pre and a post spike in the same step: +A_plus in plastinet, 0 in NEST (and nothing else differs)."""
    net = _pair_injected(avoid_coincidences=False)
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    pre, post = net.populations["pre"], net.populations["post"]
    post_steps = set(np.rint(post.times / DT).astype(int))
    n_coinc = np.array([len(set(np.rint(pre.times[pre.indices == i] / DT).astype(int)) & post_steps)
                        for i in ref.syn_pre.values])
    assert n_coinc.sum() > 0
    diff = got.w_syn.values - ref.w_syn.values
    np.testing.assert_allclose(diff, -0.01 * n_coinc, atol=1e-12)
    assert "same step" in got.attrs["nest_conventions"]
    assert "same step" in get_backend("nest").unsupported(net)


def test_threads_do_not_change_results():
    """NEST's contract: results depend on the virtual processes, not on threads (1 vs 2 threads)."""
    net = _pair_injected(avoid_coincidences=True)
    lif = _static_lif()
    a, b = (get_backend("nest", threads=t).simulate(net, 0.5, dt=DT, seed=1) for t in (1, 2))
    np.testing.assert_array_equal(a.w_syn.values, b.w_syn.values)
    a, b = (get_backend("nest", threads=t).simulate(lif, 0.5, dt=DT, seed=1) for t in (1, 2))
    np.testing.assert_array_equal(a.spike_time.values, b.spike_time.values)
    np.testing.assert_array_equal(a.V.values, b.V.values)


def test_poisson_inputs_are_the_numpy_engines():
    """Poisson sources are replayed from the numpy engine's streams: same seed, same output spikes."""
    net = Network()
    inp = net.add(PoissonGroup(name="inp", n=200, rate=20.0))
    post = net.add(LIF(name="post", n=3, t_ref=0.002))
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=("uniform", 0.0, 0.6e-9),
                       connectivity=0.5))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(SpikeProbe(name="sp_in", population="inp"))
    ref = run(net, 0.5, dt=DT, seed=7)
    got = get_backend("nest").simulate(net, 0.5, dt=DT, seed=7)
    compare_spiking(ref, got, "poisson")


def test_unsupported_objects_name_the_route():
    net = Network()
    pre = net.add(_trains("pre", 5, 10.0, 0.5, 1))
    post = net.add(LIF(name="post", n=2))
    net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=1e-10, w_min=0.0, w_max=1e-9,
                       rule=TripletSTDP(pairing="nearest", A2_plus=1e-12, A3_plus=1e-12, A2_minus=1e-12,
                                        A3_minus=1e-12, tau_x=0.1, tau_y=0.1)))
    with pytest.raises(UnsupportedError, match="all-to-all"):
        get_backend("nest").simulate(net, 0.1, dt=DT, seed=0)
    net = _static_lif()
    net.projections["syn"] = Projection(name="syn", pre=net.populations["pre"], post=net.populations["post"],
                                        target="I_e", weight=1e-10, w_min=-1e-9, w_max=1e-9,
                                        rule=PairSTDP(A_plus=1e-12, A_minus=1e-12))
    with pytest.raises(UnsupportedError, match="w_min = 0"):
        get_backend("nest").simulate(net, 0.1, dt=DT, seed=0)
    with pytest.raises(RangeError, match="threads"):
        get_backend("nest", threads=0)


def test_sampled_plastic_weights_on_injected_trains_are_identical():
    """WeightProbe of a plastic projection: NEST's weights snapshotted when the spikes up to the
    sample have been delivered, completed by its pending potentiation, equal plastinet's samples."""
    net = _pair_injected(avoid_coincidences=True)
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.01))
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert np.abs(np.diff(ref.W.values, axis=0)).max() > 0.005          # the weights move between samples
    np.testing.assert_allclose(got.W.values, ref.W.values, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("delay", [0.0, 0.0012])
def test_sampled_plastic_weights_onto_neurons_are_the_weights_at_that_step(delay):
    """Onto LIF neurons (NEST's transmission convention makes the weights differ from plastinet's):
    the sample at the end of step s equals the final weights of the same run stopped after step s."""
    net = _injected(PairSTDP(A_plus=1e-11, A_minus=1.05e-11), target="I_e")
    proj = net.projections["syn"]
    net.projections["syn"] = Projection(name="syn", pre=proj.pre, post=proj.post, target="I_e", delay=delay,
                                        weight=("uniform", 0.0, 0.6e-9), w_min=0.0, w_max=2e-9, rule=proj.rule)
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.01))
    got = get_backend("nest").simulate(net, 0.3, dt=DT, seed=0)
    short = get_backend("nest").simulate(net, 0.1001, dt=DT, seed=0)        # ends with step 1000, sample 10
    np.testing.assert_allclose(got.W.values[10].T.ravel(), short.w_syn.values, rtol=1e-12)   # (post, pre)
    assert np.abs(got.W.values[10] - got.W.values[9]).max() > 1e-12


def test_sampled_weights_of_plastic_projections_from_neurons_are_refused_with_the_reason():
    net, _ = _from_neurons(0.0012, 0.0001)
    net.add(WeightProbe(name="W", projection="eo", sample_every=0.1))
    with pytest.raises(UnsupportedError, match="source population"):
        get_backend("nest").simulate(net, 0.2, dt=DT, seed=0)


def test_registered_and_reported():
    assert "nest" in available_backends()
    lines = type(get_backend("nest")).diagnostics(compile=False)
    assert lines and lines[0].startswith("nest 3.") and "MPI" in lines[0] and "threads" in lines[0]


def test_conductance_lif_agrees_to_the_integration_error():
    """ConductanceLIF runs as iaf_cond_exp (adaptive RKF45 in NEST): the membrane potential agrees
    with plastinet's exponential Euler to its integration error, and the difference is listed."""
    net = Network()
    pre = net.add(_trains("pre", 40, 10.0, 0.6, 1))
    post = net.add(ConductanceLIF(name="post", n=2, t_ref=0.002))
    net.add(Projection(name="syn", pre=pre, post=post, target="g_e", weight=("uniform", 0.0, 0.1)))
    net.add(StateProbe(name="V", population="post", variable="v", sample_every=DT))
    ref = run(net, 0.5, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 0.5, dt=DT, seed=0)
    assert "Runge-Kutta" in get_backend("nest").unsupported(net)
    assert "Runge-Kutta" in got.attrs["nest_conventions"]
    v_ref, v_got = ref.V.values, got.V.values
    assert np.abs(v_ref - v_got).max() < 0.5e-3          # < 0.5 mV everywhere (exponential Euler's error)
    assert np.corrcoef(v_ref.ravel(), v_got.ravel())[0, 1] > 0.99


@pytest.mark.slow
def test_conductance_lif_rate_converges_to_nest():
    """A conductance LIF firing on fluctuations (Song 2000 parameters, 100 inputs at 1 Hz, 200 background at
    10 Hz: the former reduced Izhikevich 2007 neuron) on frozen trains on the 0.5 ms grid, 40 neurons for 5 s:
    NEST's iaf_cond_exp is dt-independent (125 spikes at 0.5 and 0.1 ms, as a 5 us RK4 integration of the
    same equations), so the lowering is exact; plastinet's exponential Euler holds each step's conductance at
    its start value (a step mean too large by dt / tau_e / (1 - exp(-dt / tau_e)), 5 % at 0.5 ms) and
    converges to it from above: 325 spikes at 0.5 ms, 150 at 0.1 ms, 126 at 0.02 ms (measured)."""
    grid, m, duration = 5e-4, 40, 5.0
    rng = np.random.default_rng(1)
    net = Network()
    post = net.add(ConductanceLIF(name="post", n=m, tau_m=0.01, E_l=-0.074, v_thresh=-0.054, v_reset=-0.060,
                                  E_e=0.0, tau_e=0.005, t_ref=0.002))
    for name, per, rate, w in (("inputs", 100, 1.0, 0.03), ("background", 200, 10.0, 0.025)):
        src, step = np.nonzero(rng.random((m * per, int(duration / grid))) < rate * grid)
        gen = net.add(SpikeGenerator(name=name, n=m * per, indices=src, times=step * grid))
        net.add(Projection(name=name + "_syn", pre=gen, post=post, target="g_e", weight=w,
                           connectivity=(np.arange(m * per), np.arange(m * per) // per)))
    net.add(SpikeProbe(name="sp", population="post"))

    def count(backend, dt):
        return int(get_backend(backend).simulate(net, duration, dt=dt, seed=0).spike_time.size)

    nest = count("nest", 5e-4)
    assert nest > 60 and count("nest", 1e-4) == pytest.approx(nest, rel=0.02)
    assert count("numpy", 5e-4) > 2 * nest                       # exponential Euler's error at 0.5 ms
    assert count("numpy", 1e-4) == pytest.approx(nest, rel=0.25)
    assert count("numpy", 2e-5) == pytest.approx(nest, rel=0.05)


def _injected(rule, stp=None, avoid_coincidences=True, target="none", seed=1) -> Network:
    net = Network()
    post = _trains("post", 2, 12.0, 1.1, 2)
    avoid = set(np.rint(post.times / DT).astype(int)) if avoid_coincidences else None
    pre = net.add(_trains("pre", 30, 15.0, 1.1, seed, avoid=avoid))
    if target == "none":
        post = net.add(post)
        kw = dict(weight=("uniform", 0.2, 0.8), w_min=0.0, w_max=1.0)
    else:
        post = net.add(LIF(name="post", n=3, t_ref=0.002))
        kw = dict(weight=("uniform", 0.0, 1.2e-9))
        net.add(SpikeProbe(name="sp", population="post"))
        net.add(StateProbe(name="V", population="post", variable="v", sample_every=0.01))
    net.add(Projection(name="syn", pre=pre, post=post, target=target, rule=rule, stp=stp, **kw))
    return net


def test_triplet_stdp_on_injected_trains_is_identical():
    """stdp_triplet_synapse equals TripletSTDP (all-to-all) within 1e-9 on injected trains; the
    post neurons carry the post traces' time constants (tau_minus, tau_minus_triplet)."""
    rule = TripletSTDP(A2_plus=5e-3, A3_plus=6.2e-3, A2_minus=7e-3, A3_minus=2.3e-3, tau_minus=0.03, tau_y=0.1)
    net = _injected(rule)
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert np.abs(ref.w_syn.values - got.w_syn.values).max() < 1e-9
    assert np.abs(ref.w_syn.values - 0.5).max() > 0.01          # the weights moved
    compare_spiking(ref, got, "triplet")


@pytest.mark.parametrize("tau_facil", [0.0, 0.5])
def test_tsodyks_markram_onto_lif_is_identical(tau_facil):
    """Tsodyks-Markram as tsodyks2_synapse (started at u = 0, x = 1): identical spikes and states."""
    from plastinet.spiking import TsodyksMarkram

    net = _injected(None, stp=TsodyksMarkram(U=0.4, tau_rec=0.3, tau_facil=tau_facil), target="I_e")
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert ref.sizes["spike"] > 10
    compare_spiking(ref, got, "tsodyks")


def test_pair_stdp_post_trace_time_constant_reaches_the_post_neurons():
    """tau_minus lives on NEST's postsynaptic node: a non-default value must still agree."""
    net = _injected(PairSTDP(A_plus=0.01, A_minus=0.0105, tau_plus=0.015, tau_minus=0.035))
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    compare_spiking(ref, got, "pair_tau_minus")


def test_inhibitory_stdp_on_injected_trains_is_identical():
    """vogels_sprekeler_synapse equals InhibitorySTDP within 1e-9 (weights below w_max, no same-step pairs)."""
    from plastinet.spiking import InhibitorySTDP

    net = _injected(InhibitorySTDP(eta=0.01, tau=0.02, rho0=5.0))
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert ref.w_syn.values.max() < 0.95 and np.abs(ref.w_syn.values - 0.5).max() > 0.01
    compare_spiking(ref, got, "istdp")


@pytest.mark.parametrize("delay", [0.0012, ("uniform", 0.0005, 0.02)])
def test_delays_onto_lif_are_identical(delay):
    """Static and Tsodyks-Markram projections with delays (scalar, heterogeneous up to 20 ms): identical."""
    from plastinet.spiking import TsodyksMarkram

    net = _static_lif()
    net.projections["syn"] = Projection(name="syn", pre=net.populations["pre"], post=net.populations["post"],
                                        target="I_e", weight=("uniform", 0.0, 1.2e-9), delay=delay)
    net.projections["inh_syn"] = Projection(name="inh_syn", pre=net.populations["inh"], post=net.populations["post"],
                                            target="I_i", weight=-0.3e-9, connectivity=0.5, delay=delay,
                                            stp=TsodyksMarkram(U=0.3, tau_rec=0.2))
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert ref.sizes["spike"] > 20 and "delay_rounding" in got.attrs
    compare_spiking(ref, got, "delays")


def test_pair_stdp_with_a_delay_on_injected_trains_is_identical():
    """The presynaptic side of plasticity is delayed (plastinet's convention): NEST's relays are timed so."""
    net = _pair_injected(avoid_coincidences=False)
    proj = net.projections["syn"]
    net.projections["syn"] = Projection(name="syn", pre=proj.pre, post=proj.post, target="none",
                                        weight=("uniform", 0.2, 0.8), w_min=0.0, w_max=1.0, delay=0.0031,
                                        rule=PairSTDP(A_plus=0.01, A_minus=0.0105))
    pre, post = net.populations["pre"], net.populations["post"]
    shifted = set(np.rint(post.times / DT).astype(int) - 31)
    coinc = [len(set(np.rint(pre.times[pre.indices == i] / DT).astype(int)) & shifted) for i in range(pre.n)]
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    diff = got.w_syn.values - ref.w_syn.values
    np.testing.assert_allclose(diff, -0.01 * np.asarray(coinc)[ref.syn_pre.values], atol=1e-12)


@pytest.mark.parametrize("method", ["euler", "half_steps"])
def test_izhikevich_network_with_noise_is_identical(method, monkeypatch):
    """Izhikevich neurons (both schemes; NEST's consistent_integration on/off) driven by injected trains,
    a recurrent pair of populations (delays 0 and 2 steps) and thalamic NoiseCurrent (handed to NEST in
    chunks of 137 steps): the same spikes, and v, u equal to rounding (NEST computes in mV and ms,
    plastinet in V and s)."""
    import plastinet.backends.nest.spiking as nest_spiking

    monkeypatch.setattr(nest_spiking, "NOISE_BLOCK_VALUES", 3 * 137)
    dt = 1e-3
    net = Network()
    pre = net.add(_trains("pre", 40, 20.0, 2.0, 1, dt=dt))
    a = net.add(Izhikevich(name="a", n=5, method=method, v_init=-0.07))
    b = net.add(Izhikevich(name="b", n=3, method=method, a=100.0, d=2.0))
    net.add(Projection(name="inp", pre=pre, post=a, target="I", weight=("uniform", 0.0, 6e-3)))
    net.add(Projection(name="ab", pre=a, post=b, target="I", weight=("uniform", 0.0, 8e-3)))
    net.add(Projection(name="ba", pre=b, post=a, target="I", weight=-2e-3, delay=2 * dt))
    net.add(NoiseCurrent(name="th", population="b", target="I", distribution="uniform", low=-6.5e-3, high=6.5e-3))
    for pop in ("a", "b"):
        net.add(SpikeProbe(name=f"s{pop}", population=pop))
    net.add(StateProbe(name="V", population="a", variable="v", sample_every=dt))
    net.add(StateProbe(name="U", population="b", variable="u", sample_every=dt))
    ref = run(net, 2.0, dt=dt, seed=3)
    got = get_backend("nest").simulate(net, 2.0, dt=dt, seed=3)
    assert ref.spike_time.size > 50
    np.testing.assert_array_equal(ref.spike_time.values, got.spike_time.values)
    np.testing.assert_array_equal(ref.spike_neuron.values, got.spike_neuron.values)
    assert np.abs(ref.V.values - got.V.values).max() < 1e-9            # V; rounding grows on the upstroke
    assert np.median(np.abs(ref.V.values - got.V.values) / np.abs(ref.V.values)) < 1e-13
    np.testing.assert_allclose(got.U.values, ref.U.values, rtol=1e-9, atol=1e-12)
    assert get_backend("nest").unsupported(net) is None and got.attrs["nest_conventions"] == "[]"


def _dopamine(increment: float, delay: float = 0.0, convention: str = "all_to_all", reward: bool = True) -> Network:
    """Injected pre/post trains (no pre arrival in a post spike's step), a SpikeSignal fed by a source
    population and a coincidence reward, dopamine STDP, sampled weights and dopamine level."""
    net = Network()
    post = _trains("post", 2, 12.0, 2.1, 2)
    avoid = set(np.rint(post.times / DT).astype(int) - int(round(delay / DT)))
    pre = net.add(_trains("pre", 30, 15.0, 2.1, 1, avoid=avoid))
    post = net.add(post)
    net.add(_trains("da", 3, 4.0, 2.1, 5))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=increment, sources=("da",)))
    if reward:
        net.add(CoincidenceReward(name="rew", modulator="dopamine", pre="pre", post="post", pre_neuron=0,
                                  post_neuron=0, window=0.05, delay_min=0.1, delay_max=0.3, amount=2 * increment))
    rule = DopamineSTDP(A_plus=0.02, A_minus=0.03, tau_c=0.5, b=0.3, modulator="dopamine", convention=convention)
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=("uniform", 0.2, 0.8), w_min=0.0,
                       w_max=1.0, rule=rule, delay=delay))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
    net.add(ModulatorProbe(name="level", modulator="dopamine", sample_every=0.1))
    return net


@pytest.mark.parametrize("increment, delay", [(5.0, 0.0), (0.7, 0.0), (0.7, 3e-4)])
def test_dopamine_stdp_on_injected_trains_is_identical(increment, delay):
    """stdp_dopamine_synapse with a volume transmitter: final and sampled weights within 1e-9 relative,
    with NEST's own dopamine step (increment = 1/tau = 5 /s) and with another (0.7 /s: the synapses'
    units are rescaled), rewards sent as double-multiplicity spikes, and a delay; the level is plastinet's."""
    net = _dopamine(increment, delay)
    ref = run(net, 2.0, dt=DT, seed=3)
    got = get_backend("nest").simulate(net, 2.0, dt=DT, seed=3)
    w0 = ref.W.values[0].ravel()
    assert np.abs(ref.w_syn.values - w0).max() > 0.3              # the weights moved
    assert ref.level.values.max() > 2 * increment                 # rewards and dopamine spikes arrived
    scale = np.abs(ref.w_syn.values).max()
    assert np.abs(got.w_syn.values - ref.w_syn.values).max() < 1e-9 * scale
    assert np.abs(got.W.values - ref.W.values).max() < 1e-9 * scale
    np.testing.assert_allclose(got.level.values, ref.level.values, rtol=1e-12)


def test_dopamine_nearest_convention_runs_all_to_all_and_says_so():
    """NEST's traces are all-to-all: Izhikevich's nearest-spike convention runs, listed as inexact, and its
    weights are those of convention='all_to_all' on numpy."""
    net = _dopamine(5.0, convention="nearest", reward=False)
    reason = get_backend("nest").unsupported(net)
    assert reason is not None and "all-to-all" in reason
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    nearest = run(net, 1.0, dt=DT, seed=0)
    all_to_all = run(_dopamine(5.0, reward=False), 1.0, dt=DT, seed=0)
    assert np.abs(got.w_syn.values - all_to_all.w_syn.values).max() < 1e-9
    assert np.abs(got.w_syn.values - nearest.w_syn.values).max() > 1e-6


def test_programmed_signal_is_refused_with_the_route():
    from plastinet.spiking import ModulatedHebbian, ProgrammedSignal
    net = Network()
    pre = net.add(_trains("pre", 3, 10.0, 0.2, 1))
    post = net.add(LIF(name="post", n=1))
    net.add(ProgrammedSignal(name="m", values=[1.0], interval=0.1))
    net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=0.0,
                       rule=ModulatedHebbian(eta=1e-3, tau_pre=0.01, modulator="m")))
    reason = get_backend("nest").unsupported(net)
    assert "ProgrammedSignal 'm'" in reason and "NESTML" in reason


def _adex_run(dt: float, backend: str):
    from plastinet.spiking import AdEx

    net = Network()
    pre = net.add(_trains("pre", 40, 15.0, 0.6, 1))
    inh = net.add(_trains("inh", 10, 10.0, 0.6, 3))
    post = net.add(AdEx(name="post", n=4, t_ref=0.002, V_peak=-0.0404, i_ext=0.4e-9))
    net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 0.25e-9)))
    net.add(Projection(name="inh_syn", pre=inh, post=post, target="I_i", weight=-0.1e-9, connectivity=0.5))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(StateProbe(name="V", population="post", variable="v", sample_every=1e-4))
    net.add(StateProbe(name="W", population="post", variable="w", sample_every=1e-4))
    ds = run(net, 0.5, dt=dt, seed=0) if backend == "numpy" else get_backend("nest").simulate(net, 0.5, dt=dt, seed=0)
    return net, ds


def _spike_lists(ds, n):
    idx, t = ds.spike_neuron.values, ds.spike_time.values
    return [np.sort(t[idx == i]) for i in range(n)]


def test_adex_agrees_to_eulers_error():
    """AdEx as aeif_psc_exp (NEST: adaptive RKF45; plastinet: forward Euler). On injected trains
    the same spikes fire, within 1 ms at dt = 0.1 ms (measured 0.9 ms after 0.5 s of tonic firing)
    and within 0.2 ms at dt = 25 us (measured 0.15 ms: Euler converges to NEST's solution); v and
    w within 0.05 mV and 2 pA (medians; they differ by a spike's jump b around offset spikes)."""
    worst = {}
    for dt in (1e-4, 2.5e-5):
        net, ref = _adex_run(dt, "numpy")
        _, got = _adex_run(dt, "nest")
        a, b = _spike_lists(ref, 4), _spike_lists(got, 4)
        assert [x.size for x in a] == [x.size for x in b] and sum(x.size for x in a) > 20
        worst[dt] = max(np.abs(x - y).max() for x, y in zip(a, b) if x.size)
        dv = np.abs(ref.V.values - got.V.values)
        assert np.median(dv) < 0.05e-3
        assert np.median(np.abs(ref.W.values - got.W.values)) < 2e-12
    assert worst[1e-4] <= 1e-3 and worst[2.5e-5] <= 0.2e-3 and worst[2.5e-5] < worst[1e-4] / 2
    assert "Runge-Kutta" in get_backend("nest").unsupported(net)
    assert "aeif_psc_exp" in got.attrs["nest_conventions"]


_A = 5e-13


def _from_neurons(delay_ee: float, delay_eo: float) -> tuple[Network, dict[str, np.ndarray]]:
    """Injected trains (silent after 0.7 s) drive 20 LIF neurons with plastic recurrent E->E synapses
    and plastic feed-forward synapses onto 3 LIF neurons (explicit initial weights, far from the bounds)."""
    rng = np.random.default_rng(9)
    w0 = {"ee": rng.uniform(0.05e-9, 0.15e-9, (20, 20)) * (rng.random((20, 20)) < 0.3),
          "eo": rng.uniform(0.06e-9, 0.12e-9, (3, 20))}
    np.fill_diagonal(w0["ee"], 0.0)
    net = Network()
    inp = net.add(_trains("inp", 60, 20.0, 0.7, 5))
    exc = net.add(LIF(name="exc", n=20, t_ref=0.002))
    out = net.add(LIF(name="out", n=3, t_ref=0.002))
    net.add(Projection(name="drive", pre=inp, post=exc, target="I_e", weight=("uniform", 0.0, 0.1e-9),
                       connectivity=0.5))
    pre_ix, post_ix = np.nonzero(w0["ee"].T)
    for name, post, delay, conn in (("ee", exc, delay_ee, (pre_ix, post_ix)), ("eo", out, delay_eo, "all")):
        net.add(Projection(name=name, pre=exc, post=post, target="I_e", connectivity=conn, delay=delay,
                           weight=w0[name] if conn == "all" else w0[name].T[pre_ix, post_ix],
                           w_min=0.0, w_max=2e-9, rule=PairSTDP(A_plus=_A, A_minus=1.05 * _A)))
    net.add(SpikeProbe(name="sp", population="exc"))
    net.add(SpikeProbe(name="sp_out", population="out"))
    return net, w0


def _nest_pairing(ds, pre: str, post: str, n_pre: int, n_post: int, d_steps: int, proj: Projection):
    """plastinet's PairSTDP on injected trains with NEST's pairing: a presynaptic spike in step s
    meets a postsynaptic one in step t at t - s + d_steps; same-step pairs removed (+A_plus each)."""
    def train(pop):
        sel = ds.spike_population.values == pop
        return np.rint(ds.spike_time.values[sel] / DT).astype(np.int64), ds.spike_neuron.values[sel]
    (ps, pi), (qs, qi) = train(pre), train(post)
    inj = Network()
    a = inj.add(SpikeGenerator(name="pre", n=n_pre, indices=pi, times=ps * DT))
    b = inj.add(SpikeGenerator(name="post", n=n_post, indices=qi, times=(qs + d_steps) * DT))
    inj.add(Projection(name="syn", pre=a, post=b, target="none", connectivity=proj.connectivity,
                       weight=proj.weight, w_min=proj.w_min, w_max=proj.w_max, rule=proj.rule))
    m = run(inj, 1.1, dt=DT, seed=0)
    same = [np.isin(ps[pi == i], qs[qi == j] + d_steps).sum() for i, j in zip(m.syn_pre.values, m.syn_post.values)]
    return m.w_syn.values - proj.rule.A_plus * np.asarray(same), int(np.sum(same))


@pytest.mark.parametrize("delay_ee, delay_eo", [(0.0012, 0.0001), (0.0, 0.0005)])
def test_plastic_projections_from_neurons_pair_as_nest_documents(delay_ee, delay_eo):
    """Recurrent E->E and feed-forward neuron->neuron stdp_synapse: transmission is exact (delay D
    steps, D = 0 lowered to 1) and NEST pairs a presynaptic spike in step s with a postsynaptic one in
    step t at t - s + max(D, 1) where plastinet pairs them at t - s - D. Replaying NEST's own spikes
    through plastinet's rule with that pairing (and same-step pairs removed) gives NEST's final
    weights within 1e-9 relative: every pair and every Δt is accounted for."""
    net, w0 = _from_neurons(delay_ee, delay_eo)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    for name, post, n_post, delay in (("ee", "exc", 20, delay_ee), ("eo", "out", 3, delay_eo)):
        d = max(int(round(delay / DT)), 1)
        mapped, n_same = _nest_pairing(got, "exc", post, 20, n_post, d, net.projections[name])
        w = getattr(got, f"w_{name}").values
        assert np.abs(w - w0[name][got[f"{name}_post"].values, got[f"{name}_pre"].values]).max() > 20 * _A
        assert np.abs(w - mapped).max() < 1e-9 * 2e-9
        assert n_same > 0 and f"{name}: NEST transmits" in got.attrs["nest_conventions"]
    assert "max(2D, 1) steps later" in get_backend("nest").unsupported(net)


def test_plastic_projections_from_neurons_network_difference():
    """The same network on numpy and NEST: transmission is exact but the pairing offset of max(2D, 1)
    steps (see above) changes the weights, hence later spikes. Measured (docs/backends.md): weight
    changes correlate 0.43 (E->E, D = 12) and 0.77 (feed-forward, D = 1); means within 30 %, stds 10 %."""
    net, w0 = _from_neurons(0.0012, 0.0001)
    ref = run(net, 1.0, dt=DT, seed=0)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=0)
    assert abs(got.sizes["spike"] - ref.sizes["spike"]) < 0.1 * ref.sizes["spike"]
    for name, corr in (("ee", 0.3), ("eo", 0.6)):
        init = w0[name][ref[f"{name}_post"].values, ref[f"{name}_pre"].values]
        a, b = ref[f"w_{name}"].values - init, got[f"w_{name}"].values - init
        assert np.corrcoef(a, b)[0, 1] > corr
        assert abs(b.mean() - a.mean()) < 0.35 * abs(a.mean()) and abs(b.std() - a.std()) < 0.2 * a.std()


def test_dopamine_stdp_with_multapses_is_identical():
    """Several synapses of one (pre, post) pair (targets drawn with repetition, as in Izhikevich's network):
    NEST sorts its connections, so each rank of a pair lives on its own model copy and reads back exactly."""
    net = _dopamine(5.0, reward=False)
    proj = net.projections["syn"]
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 30, 80), rng.integers(0, 2, 80)
    assert np.unique(i * 2 + j).size < 80
    net.projections["syn"] = Projection(name="syn", pre=proj.pre, post=proj.post, target="none", connectivity=(i, j),
                                        weight=rng.uniform(0.2, 0.8, 80), w_min=0.0, w_max=1.0, rule=proj.rule)
    ref = run(net, 1.0, dt=DT, seed=3)
    got = get_backend("nest").simulate(net, 1.0, dt=DT, seed=3)
    assert np.abs(got.W.values - ref.W.values).max() < 1e-9 and np.abs(got.w_syn.values - ref.w_syn.values).max() < 1e-9


def test_izhikevich2007_network_short_run_agrees_with_numpy_at_rate_level():
    """Izhikevich's network (scaled down) on NEST: transmission, thalamic noise and the frozen-weight
    dynamics are exact, so the rates agree (identical here); the weights differ only by NEST's all-to-all
    traces and pairing shift (both listed), so their changes correlate with numpy's."""
    from plastinet.experiments.network_protocols import izhikevich2007_network

    kw = dict(duration=5.0, n_exc=200, n_inh=50, fan_out=25, seed=0, sample_every=1.0, record_spikes=True)
    ref = izhikevich2007_network(backend="numpy", **kw)
    got = izhikevich2007_network(backend="nest", **kw)
    for key in ("rate_exc", "rate_inh"):
        assert got.attrs[key] == pytest.approx(ref.attrs[key], rel=0.02)
    assert "all-to-all" in got.attrs["nest_conventions"]
    dw_ref, dw_got = ref.w_ee.values / 1e-3 - 1.0, got.w_ee.values / 1e-3 - 1.0
    assert np.abs(dw_ref).max() > 0.5                                 # the weights moved
    assert np.corrcoef(dw_ref, dw_got)[0, 1] > 0.95
    assert got.attrs["others_mean"] == pytest.approx(ref.attrs["others_mean"], abs=1e-3)


def test_izhikevich2007_reduced_short_run_as_on_numpy():
    """The reduced Izhikevich 2007 model (one LIF as iaf_psc_exp, exact on both) for 8 s, seed 7 (input 0
    then the neuron 2 ms later at 0.8 s: a reward, delivered at 3.06 s): the same spikes and the same rewards as on numpy; the weights
    differ only by the listed pairing conventions (NEST pairs a Poisson input's spike with a post spike 2
    steps = 1 ms later: the rewarded synapse's change is e^(-1 ms / 20 ms) = 0.95 of numpy's)."""
    import plastinet.experiments.protocols as P

    kw = dict(duration=8.0, seed=7, sample_every=0.5)
    ref = P.izhikevich2007(**kw)
    got = P.izhikevich2007(backend="nest", **kw)
    assert ref.dopamine_level.values.max() > 0, "no reward was delivered: the test lost its point"
    for name in ("spike_time", "spike_neuron", "spike_population"):
        np.testing.assert_array_equal(got[name].values, ref[name].values)
    np.testing.assert_allclose(got.dopamine_level.values, ref.dopamine_level.values, rtol=1e-12)
    assert "2D + 2 steps later" in got.attrs["nest_conventions"]
    dw_ref, dw_got = ref.w_syn.values.ravel() / 35e-12 - 1.0, got.w_syn.values.ravel() / 35e-12 - 1.0
    assert dw_ref[0] > 0.05                                          # the reward moved the rewarded synapse
    assert dw_got[0] / dw_ref[0] == pytest.approx(np.exp(-1e-3 / 0.02), rel=0.02)
    assert np.corrcoef(dw_ref, dw_got)[0, 1] > 0.99


@pytest.mark.slow
def test_izhikevich2007_reduced_outcome_on_nest(izhikevich_reduced_outcome):
    """The reduced Izhikevich 2007 model over its 2000 s on NEST: the outcome of the numpy engine's slow test
    (the rewarded synapse reaches the bound, the others stay near their start)."""
    import plastinet.experiments.protocols as P

    izhikevich_reduced_outcome(P.izhikevich2007(backend="nest", seed=0))


@pytest.mark.slow
def test_izhikevich2007_network_hour_on_nest_reaches_the_bound(izhikevich_fig1_outcome):
    """Izhikevich (2007), Fig. 1 on NEST (the numpy engine's slow test, same criteria: the rewarded synapse
    reaches the bound within the hour while the others stay low)."""
    from plastinet.experiments.network_protocols import izhikevich2007_network

    izhikevich_fig1_outcome(izhikevich2007_network(duration=3600.0, backend="nest", seed=0))


def test_dopamine_stdp_threads_do_not_change_results():
    """Volume transmitter, rewards and model copies: 1 and 2 threads give the same weights."""
    net = _dopamine(0.7, 3e-4)
    a, b = (get_backend("nest", threads=t).simulate(net, 1.0, dt=DT, seed=3) for t in (1, 2))
    np.testing.assert_array_equal(a.w_syn.values, b.w_syn.values)
    np.testing.assert_array_equal(a.W.values, b.W.values)


class _NetworkSizes:
    """PyNEST whose ``Simulate`` first records the kernel's node and connection counts."""

    def __init__(self, nest) -> None:
        self._nest, self.sizes = nest, []

    def __getattr__(self, name: str):
        return getattr(self._nest, name)

    def Simulate(self, t: float) -> None:  # noqa: N802 (PyNEST's name)
        status = self._nest.GetKernelStatus()
        self.sizes.append((status["network_size"], status["num_connections"]))
        self._nest.Simulate(t)


@pytest.mark.parametrize("delay_min", [0.1, 0.0022])
def test_rewards_reach_nest_without_changing_the_network_between_runs(monkeypatch, delay_min):
    """Rewards are scanned between NEST runs and sent ahead through a relay built before the first
    run: no node or connection is created between runs (under MPI, rewards sent through nodes created
    between runs changed NEST's dopamine weights: 2 ranks x 1 thread differed from 1 process; docs/cluster.md)."""
    from plastinet.backends.nest import spiking

    sizes = _NetworkSizes(spiking.import_nest())
    monkeypatch.setattr(spiking, "import_nest", lambda: sizes)
    net = _dopamine(0.7)
    net.rewards["rew"] = CoincidenceReward(name="rew", modulator="dopamine", pre="pre", post="post", pre_neuron=0,
                                           post_neuron=0, window=0.05, delay_min=delay_min, delay_max=0.3,
                                           amount=1.4)
    got = get_backend("nest").simulate(net, 2.0, dt=DT, seed=3)
    assert len(sizes.sizes) > 10 and set(sizes.sizes) == {sizes.sizes[0]}, sizes.sizes
    ref = run(net, 2.0, dt=DT, seed=3)
    scale = np.abs(ref.w_syn.values).max()
    assert np.abs(got.w_syn.values - ref.w_syn.values).max() < 1e-9 * scale
    assert np.abs(got.W.values - ref.W.values).max() < 1e-9 * scale
    np.testing.assert_allclose(got.level.values, ref.level.values, rtol=1e-12)
    del net.rewards["rew"]
    assert np.abs(ref.level.values - run(net, 2.0, dt=DT, seed=3).level.values).max() > 1.0, "no reward earned"


def test_dopamine_events_nest_cannot_count_are_refused():
    """A volume transmitter counts spikes: event sizes must be whole multiples of one size, and rewards
    must be due at least two steps after they are earned (they are sent ahead between runs)."""
    net = _dopamine(0.7)
    net.rewards["rew"] = CoincidenceReward(name="rew", modulator="dopamine", pre="pre", post="post", window=0.05,
                                           delay_min=0.1, delay_max=0.3, amount=1.0)
    assert "whole multiples" in get_backend("nest").unsupported(net)
    net = _dopamine(0.7)
    net.rewards["rew"] = CoincidenceReward(name="rew", modulator="dopamine", pre="pre", post="post", window=0.05,
                                           delay_min=1e-4, delay_max=0.3, amount=1.4)
    with pytest.raises(UnsupportedError, match="shorter than 2 steps"):
        get_backend("nest").simulate(net, 0.1, dt=DT, seed=0)


@pytest.mark.slow
def test_song2000_bimodal_as_on_numpy_100s():
    """Song 2000 (1,000 Poisson inputs replayed from the numpy engine's streams, conductance LIF as
    iaf_cond_exp, stdp_synapse) on NEST for 100 s: the weights become bimodal as on numpy. NEST's
    adaptive integration of the membrane (plastinet: Euler) changes the output spikes, so the
    outcome statistics are compared, not the weights: both tails grow from 10 % (uniform start),
    within 0.05 of numpy's fractions, mean weight within 5 % (measured for seed 0: 23.2 % / 16.8 %
    near 0 / g_max and mean 0.468 g_max on NEST, 23.9 % / 18.8 % and 0.472 g_max on numpy)."""
    from plastinet.experiments import protocols as P

    ref = P.song2000(n_inputs=1000, duration=100.0, seed=0)
    got = P.song2000(n_inputs=1000, duration=100.0, seed=0, backend="nest")
    for ds in (ref, got):
        assert ds.attrs["frac_low"] > 0.2 and ds.attrs["frac_high"] > 0.15
    for key in ("frac_low", "frac_high"):
        assert abs(got.attrs[key] - ref.attrs[key]) < 0.05, (key, got.attrs[key], ref.attrs[key])
    assert got.w_syn.values.mean() == pytest.approx(ref.w_syn.values.mean(), rel=0.05)
    assert "Runge-Kutta" in got.attrs["nest_conventions"]


def test_song2000_network_kind_runs_on_nest():
    """The network-kind song2000_network (its WeightProbe included) runs on NEST (1 s, the model's
    quick settings): its last weight sample is the weights at that step and the weights move."""
    from plastinet.experiments.models import load_model

    model = load_model("song2000_network", quick=True)
    got = model.run("nest", progress=False)
    ref = model.run(progress=False)
    assert got.W.shape == ref.W.shape and got.attrs["backend"] == "nest"
    moved = [(ds.W.values[-1] - ds.W.values[0]).ravel() for ds in (got, ref)]
    assert moved[0].std() > 1e-4                               # g_max = 0.01: the weights move
    # the same input spikes, output spikes differing by the membrane's integration: changes
    # correlate (measured 0.70)
    assert np.corrcoef(*moved)[0, 1] > 0.5
