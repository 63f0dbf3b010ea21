"""Spec features of the numpy engine: time-varying Poisson rates, projections (fixed
probability, index lists, dense), weight bounds, exact LIF integration, facilitating
Tsodyks-Markram synapses, independent seeded streams, the progress bar, spec errors."""

import numpy as np
import pytest

from plastinet.errors import ValidationError
from plastinet.spiking import (
    LIF,
    DopamineSTDP,
    ModulatedHebbian,
    Network,
    PairSTDP,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    RateUnits,
    SpikeGenerator,
    SpikeProbe,
    StateProbe,
    TsodyksMarkram,
    WeightProbe,
    run,
    spike_trains,
)


def test_poisson_rate_schedule_segments_and_chunking():
    rates = np.array([[5.0, 60.0], [60.0, 5.0], [0.0, 30.0]])        # (segments, n): 3 x 2
    net = Network(PoissonGroup(name="p", n=400, rate=np.repeat(rates, 200, axis=1), rate_interval=0.5),
                  SpikeProbe(name="s", population="p"))
    a = run(net, 1.5, seed=0, chunk_steps=1)
    b = run(net, 1.5, seed=0, chunk_steps=700)
    assert np.array_equal(a.spike_time.values, b.spike_time.values)
    t, i = a.spike_time.values, a.spike_neuron.values
    for seg in range(3):
        in_seg = (t >= 0.5 * seg) & (t < 0.5 * (seg + 1))
        for half in range(2):
            sel = in_seg & (i // 200 == half)
            expected = rates[seg, half] * 200 * 0.5
            assert abs(sel.sum() - expected) <= 4 * np.sqrt(expected) + 1, (seg, half, sel.sum(), expected)
    assert not np.any((t >= 1.0) & (i < 200))                       # rate 0 means silent


def test_populations_have_independent_streams():
    net = Network(PoissonGroup(name="a", n=50, rate=20.0), PoissonGroup(name="b", n=50, rate=20.0),
                  SpikeProbe(name="sa", population="a"), SpikeProbe(name="sb", population="b"))
    ds = run(net, 1.0, seed=7)
    ta, tb = (spike_trains(ds, p, 50) for p in ("a", "b"))
    assert not all(np.array_equal(x, y) for x, y in zip(ta, tb))
    # a population added later does not change the spikes of the earlier ones
    net.add(PoissonGroup(name="c", n=10, rate=50.0))
    ds2 = run(net, 1.0, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(ta, spike_trains(ds2, "a", 50)))


def _delivered(connectivity, weight, n_pre=4, n_post=3):
    """RateUnits input right after one spike of every pre neuron (x += w / tau)."""
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=n_pre, indices=np.arange(n_pre), times=np.full(n_pre, 0.01)))
    post = net.add(RateUnits(name="post", n=n_post, tau=0.01, inputs=("soma",)))
    net.add(Projection(name="syn", pre=pre, post=post, target="soma", weight=weight, connectivity=connectivity))
    net.add(StateProbe(name="x", population="post", variable="soma", sample_every=1e-4))
    return run(net, 0.0102, dt=1e-4).x.values[100] * 0.01


def test_index_lists_dense_and_probability_connectivity():
    pre_i, post_i = np.array([0, 0, 2, 3, 3, 3]), np.array([1, 2, 0, 0, 1, 2])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_allclose(_delivered((pre_i, post_i), w), [3 + 4, 1 + 5, 2 + 6], rtol=1e-12)
    dense = np.arange(12.0).reshape(3, 4)                              # (post, pre)
    np.testing.assert_allclose(_delivered("all", dense), dense.sum(axis=1), rtol=1e-12)
    # fixed probability: the realised fraction and the recorded synapse table agree with p
    net = Network()
    pre = net.add(PoissonGroup(name="a", n=200, rate=1.0))
    post = net.add(LIF(name="b", n=50))
    net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=1e-12, connectivity=0.2,
                       rule=PairSTDP(A_plus=0.0, A_minus=0.0)))
    ds = run(net, 0.01, seed=3)
    n_syn = ds.sizes["syn_synapse"]
    assert abs(n_syn - 2000) < 4 * np.sqrt(10000 * 0.2 * 0.8)
    pairs = set(zip(ds.syn_pre.values.tolist(), ds.syn_post.values.tolist()))
    assert len(pairs) == n_syn                                           # no duplicate synapses
    assert np.all(np.diff(ds.syn_pre.values) >= 0)                       # ordered by pre index


def test_weights_stay_within_bounds():
    net = Network()
    pre = net.add(PoissonGroup(name="a", n=20, rate=40.0))
    post = net.add(PoissonGroup(name="b", n=5, rate=40.0))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=("uniform", 0.2, 0.8), w_min=0.0,
                       w_max=1.0, rule=PairSTDP(A_plus=0.05, A_minus=0.0)))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.05))
    ds = run(net, 2.0, seed=1)
    assert float(ds.W.min()) >= 0.0 and float(ds.W.max()) <= 1.0
    assert np.mean(ds.w_syn.values == 1.0) > 0.9                          # potentiation saturates at w_max


def test_lif_psp_is_exact():
    """One input current jump: v(t) - v_rest = r_m I0 tau_e / (tau_e - tau_m) (e^-t/tau_e - e^-t/tau_m)."""
    tm, te, r, I0, dt = 0.02, 0.005, 1e8, 2e-10, 1e-4
    net = Network()
    src = net.add(SpikeGenerator(name="s", n=1, indices=[0], times=[0.01]))
    n = net.add(LIF(name="n", n=1, tau_m=tm, tau_e=te, r_m=r, v_rest=-0.07, v_thresh=0.0, v_reset=-0.08))
    net.add(Projection(name="syn", pre=src, post=n, target="I_e", weight=I0))
    net.add(StateProbe(name="v", population="n", variable="v", sample_every=dt))
    v = run(net, 0.1, dt=dt).v.values[:, 0]
    t = (np.arange(v.size) - 100) * dt                      # the input acts from the next step on
    expected = np.where(t > 0, r * I0 * te / (te - tm) * (np.exp(-t / te) - np.exp(-t / tm)), 0.0)
    np.testing.assert_allclose(v + 0.07, expected, rtol=1e-9, atol=1e-15)


def test_tsodyks_markram_facilitation_matches_the_recursion():
    U, tau_rec, tau_f, period, n_sp = 0.15, 0.2, 0.6, 0.03, 20
    times = 0.01 + period * np.arange(n_sp)
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=np.zeros(n_sp, int), times=times))
    post = net.add(RateUnits(name="post", n=1, tau=0.01, inputs=("soma",)))
    net.add(Projection(name="syn", pre=pre, post=post, target="soma", weight=1.0,
                       stp=TsodyksMarkram(U=U, tau_rec=tau_rec, tau_facil=tau_f)))
    net.add(StateProbe(name="x", population="post", variable="soma", sample_every=1e-4))
    x = run(net, times[-1] + 0.001, dt=1e-4).x.values[:, 0]
    steps = np.rint(times / 1e-4).astype(int)
    jumps = (x[steps] - x[steps - 1] * np.exp(-1e-4 / 0.01)) * 0.01     # delivered efficacy w u R
    u, R, expected = 0.0, 1.0, []
    for k in range(n_sp):
        if k:
            u *= np.exp(-period / tau_f)
            R = 1 + (R - 1) * np.exp(-period / tau_rec)
        u += U * (1 - u)
        expected.append(u * R)
        R -= u * R
    np.testing.assert_allclose(jumps, expected, rtol=1e-9)
    assert jumps[3] > jumps[0]                                             # facilitation first ...
    assert jumps[-1] < max(jumps)                                          # ... then depression


def test_progress_bar(capsys):
    run(Network(PoissonGroup(name="p", n=5, rate=10.0)), 0.05, progress=True)
    assert "spiking (numpy)" in capsys.readouterr().err


def test_modulator_kinds_are_checked():
    net = Network()
    a = net.add(PoissonGroup(name="a", n=2, rate=5.0))
    b = net.add(PoissonGroup(name="b", n=2, rate=5.0))
    net.add(ProgrammedSignal(name="dopamine", values=[1.0]))
    net.add(Projection(name="s", pre=a, post=b, target="none", rule=DopamineSTDP()))
    with pytest.raises(ValidationError, match="DopamineSTDP.*modulator.*needs a SpikeSignal"):
        run(net, 0.01)
    units = RateUnits(name="r", n=2)
    with pytest.raises(ValidationError, match="ModulatedHebbian.*post_variable.*has inputs"):
        Projection(name="h", pre=a, post=units, target="dend", rule=ModulatedHebbian(post_variable="x"))


def test_soft_bounds_need_finite_bounds():
    a, b = PoissonGroup(name="a", n=2, rate=5.0), PoissonGroup(name="b", n=2, rate=5.0)
    with pytest.raises(ValidationError, match="PairSTDP.*bound.*'s'.*finite w_min and w_max"):
        Projection(name="s", pre=a, post=b, target="none", rule=PairSTDP(bound="soft"))
    Projection(name="s", pre=a, post=b, target="none", w_min=0.0, w_max=1.0, rule=PairSTDP(bound="soft"))
