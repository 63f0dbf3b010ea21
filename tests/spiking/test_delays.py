"""Synaptic delays in the numpy engine: transmission and the presynaptic side of plasticity
shifted by exactly the rounded delay (closed forms, a hand-written STDP loop), delay 0 as
before, chunked == step by step, checkpoints with spikes in flight, results record the delays."""

import numpy as np
import pytest

from plastinet.spiking import (
    LIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    RateUnits,
    SpikeGenerator,
    SpikeProbe,
    StateProbe,
    TripletSTDP,
    TsodyksMarkram,
    run,
)
from plastinet.spiking.engine import Simulator

DT = 1e-4
TAU = 0.01          # RateUnits filter: a delivered weight w adds w / TAU, then decays exactly


def _filtered(arrival_steps, weights, n_steps):
    """x at the end of each step: sum over arrivals n <= k of (w / tau) exp(-(k - n) dt / tau)."""
    k = np.arange(n_steps)[:, None]
    n = np.asarray(arrival_steps)[None, :]
    return np.where(k >= n, (np.asarray(weights) / TAU)[None, :] * np.exp(-(k - n) * DT / TAU), 0.0).sum(axis=1)


def test_transmission_arrives_exactly_the_rounded_delay_later():
    # one pre neuron, five synapses onto five RateUnits with different delays; the rounding
    # is to the nearest step with halves up: 14.4 -> 14, 14.6 -> 15, 0.4 -> 0, 200 -> 200
    delays = np.array([0.0, 0.00144, 0.00146, 0.00004, 0.02])
    expected_steps = np.array([0, 14, 15, 0, 200])
    spike_steps = np.array([10, 12, 300])
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=[0, 0, 0], times=spike_steps * DT))
    post = net.add(RateUnits(name="post", n=5, tau=TAU, inputs=("soma",)))
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    net.add(Projection(name="p", pre=pre, post=post, target="soma", weight=w, delay=delays,
                       connectivity=(np.zeros(5, int), np.arange(5))))
    net.add(StateProbe(name="x", population="post", variable="soma", sample_every=DT))
    n_steps = 700
    ds = run(net, n_steps * DT, dt=DT)
    got = ds.x.values
    for k in range(5):
        want = _filtered(spike_steps + expected_steps[k], [w[k]] * 3, n_steps)
        np.testing.assert_allclose(got[:, k], want, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ds.delay_p.values, expected_steps * DT)
    assert "halves up" in ds.attrs["delay_rounding"]


def test_spikes_of_a_dynamic_population_arrive_delayed_through_the_ring():
    net = Network()
    drive = net.add(PoissonGroup(name="drive", n=50, rate=200.0))
    lif = net.add(LIF(name="lif", n=3, t_ref=0.002))
    net.add(Projection(name="d", pre=drive, post=lif, target="I_e", weight=2e-10, connectivity="all"))
    out = net.add(RateUnits(name="out", n=3, tau=TAU, inputs=("soma",)))
    delay = np.array([0.0, 0.0031, 0.02])                    # 0, 31 and 200 steps
    net.add(Projection(name="r", pre=lif, post=out, target="soma", weight=1.0, delay=delay,
                       connectivity=(np.arange(3), np.arange(3))))
    net.add(SpikeProbe(name="s", population="lif"))
    net.add(StateProbe(name="x", population="out", variable="soma", sample_every=DT))
    n_steps = 3000
    ds = run(net, n_steps * DT, dt=DT, seed=2)
    t, i = ds.spike_time.values, ds.spike_neuron.values
    assert all((i == k).sum() > 5 for k in range(3))
    for k, d in enumerate([0, 31, 200]):
        steps = np.rint(t[i == k] / DT).astype(int) + d
        np.testing.assert_allclose(ds.x.values[:, k], _filtered(steps, np.ones(steps.size), n_steps),
                                   rtol=1e-9, atol=1e-9)


def _stdp_by_hand(pre_steps, post_steps, delays, n_steps, A_plus, A_minus, tau_plus, tau_minus, w0):
    """Pair STDP (all-to-all, additive, no bounds) with the pre side delayed, step by step:
    in step n, first every synapse whose delayed pre spike arrives (x_s += 1, then
    w -= A_minus y), then the post spike (y += 1, then w += A_plus x_s)."""
    n_syn = len(delays)
    w = np.full(n_syn, w0)
    x = np.zeros(n_syn)
    y = 0.0
    arrive = [set(int(s) + int(d) for s in pre_steps) for d in delays]
    post = set(int(s) for s in post_steps)
    for n in range(n_steps):
        x *= np.exp(-DT / tau_plus)
        y *= np.exp(-DT / tau_minus)
        for s in range(n_syn):
            if n in arrive[s]:
                x[s] += 1.0
                w[s] -= A_minus * y
        if n in post:
            y += 1.0
            w += A_plus * x
    return w


def test_presynaptic_side_of_plasticity_is_delayed_and_the_postsynaptic_side_is_not():
    pre_steps, post_steps = np.array([20, 150, 400]), np.array([60, 170, 420, 650])
    delay_steps = np.array([0, 10, 35, 180, 250])            # same pre neuron, five delays
    n = delay_steps.size
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=np.zeros(3, int), times=pre_steps * DT))
    post = net.add(SpikeGenerator(name="post", n=1, indices=np.zeros(4, int), times=post_steps * DT))
    rule = PairSTDP(A_plus=0.01, A_minus=0.012, tau_plus=0.02, tau_minus=0.03)
    net.add(Projection(name="p", pre=pre, post=post, target="none", weight=0.5, rule=rule,
                       connectivity=(np.zeros(n, int), np.zeros(n, int)), delay=delay_steps * DT))
    n_steps = 800
    got = run(net, n_steps * DT, dt=DT).w_p.values
    want = _stdp_by_hand(pre_steps, post_steps, delay_steps, n_steps, 0.01, 0.012, 0.02, 0.03, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert len(set(np.round(got, 12))) == n                   # every delay gives its own weight


def _recurrent(delay_ee, delay_in):
    net = Network()
    inp = net.add(PoissonGroup(name="inp", n=100, rate=25.0))
    e = net.add(LIF(name="e", n=40, t_ref=0.002))
    net.add(Projection(name="ie", pre=inp, post=e, target="I_e", weight=("uniform", 0, 1.5e-10), connectivity=0.3,
                       w_min=0, w_max=2e-10, rule=PairSTDP(A_plus=1e-12, A_minus=1.05e-12), delay=delay_in))
    net.add(Projection(name="ee", pre=e, post=e, target="I_e", weight=5e-11, connectivity=0.2, w_min=0,
                       w_max=1e-10, rule=TripletSTDP(), delay=delay_ee, stp=TsodyksMarkram(U=0.3)))
    net.add(SpikeProbe(name="s", population="e"))
    return net


@pytest.mark.parametrize("delay_ee,delay_in", [(("uniform", 0.0, 0.005), 0.002), (0.003, ("uniform", 0.0005, 0.021))])
def test_chunked_run_with_delays_equals_step_by_step(delay_ee, delay_in):
    net = _recurrent(delay_ee, delay_in)
    a = run(net, 0.25, seed=5, chunk_steps=1)
    b = run(net, 0.25, seed=5, chunk_steps=256)
    assert a.spike_time.size > 100
    for k in a.data_vars:
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)


def test_zero_delay_keeps_same_step_delivery_bit_for_bit():
    base = run(_recurrent(0.0, 0.0), 0.15, seed=1)
    tiny = run(_recurrent(0.00004, ("uniform", 0.0, 0.00004)), 0.15, seed=1)   # rounds to 0 steps
    for k in ("spike_time", "spike_neuron", "w_ee", "w_ie"):
        np.testing.assert_array_equal(base[k].values, tiny[k].values)
    assert not np.any(tiny.delay_ee.values) and "delay_ee" not in base


def test_checkpoint_resumes_with_spikes_in_flight(tmp_path):
    net = _recurrent(("uniform", 0.002, 0.02), 0.004)
    full = run(net, 0.3, seed=9)
    path = tmp_path / "ck.npz"
    sim = Simulator(net, seed=9)
    sim.run(0.15, checkpoint_path=path)
    assert sim.in_flight["e"][0].size > 0                     # spikes still travelling at the checkpoint
    resumed = Simulator(net, seed=9).run(0.3, checkpoint_path=path)
    for k in full.data_vars:
        np.testing.assert_array_equal(full[k].values, resumed[k].values, err_msg=k)


def test_memory_check_counts_the_delay_arrays(monkeypatch):
    import plastinet.sizes
    from plastinet.errors import SizeError

    def net(delay):
        n = Network()
        pre = n.add(PoissonGroup(name="pre", n=100, rate=5.0))
        post = n.add(LIF(name="post", n=100))
        n.add(Projection(name="p", pre=pre, post=post, target="I_e", weight=1e-12, delay=delay))
        return n

    # 10^4 synapses: 32 bytes each without a delay (3.2e5), 56 with one (5.6e5), plus 1.6e3 for neurons
    monkeypatch.setattr(plastinet.sizes, "available_memory", lambda: 450_000)
    Simulator(net(0.0))
    with pytest.raises(SizeError) as info:
        Simulator(net(0.001))
    assert "projection 'p'" in str(info.value) and "5.6e+05" in str(info.value)
