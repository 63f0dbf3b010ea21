"""Inhibitory STDP (Vogels et al. 2011) and the nearest-spike convention of DopamineSTDP, against
hand-written loops over the spike events and the Poisson drift of the rule."""

import numpy as np
import pytest
from spiking_references import dopamine_eligibility_loop, istdp_loop

from plastinet.errors import ValidationError
from plastinet.spiking import (
    ConductanceLIF,
    DopamineSTDP,
    InhibitorySTDP,
    Network,
    PoissonGroup,
    Projection,
    SpikeGenerator,
    SpikeSignal,
    StateProbe,
    run,
)

DT = 1e-4


def _trains(rng, n, rate, duration):
    """``n`` Poisson trains on the step grid (no two spikes of a neuron in one step), in s."""
    out = []
    for _ in range(n):
        steps = np.flatnonzero(rng.random(int(duration / DT)) < rate * DT)
        out.append(steps * DT)
    return out


def _paired(rule, pre, post, w0, w_min, w_max, duration):
    n = len(pre)
    net = Network()
    a = net.add(SpikeGenerator(name="pre", n=n, indices=np.concatenate([np.full(t.size, i) for i, t in enumerate(pre)]),
                               times=np.concatenate(pre)))
    b = net.add(SpikeGenerator(name="post", n=n, indices=np.concatenate([np.full(t.size, i) for i, t in enumerate(post)]),
                               times=np.concatenate(post)))
    if isinstance(rule, DopamineSTDP):
        net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.0))
    net.add(Projection(name="syn", pre=a, post=b, target="none", weight=w0, connectivity=(np.arange(n), np.arange(n)),
                       w_min=w_min, w_max=w_max, rule=rule))
    return run(net, duration, dt=DT, seed=0)["w_syn"].values


@pytest.mark.parametrize("w_max, rho0", [(np.inf, 3.0), (0.05, 3.0), (np.inf, 100.0)])
def test_inhibitory_stdp_matches_the_hand_loop(w_max, rho0):
    rng = np.random.default_rng(11)
    pre, post = _trains(rng, 12, 30.0, 2.0), _trains(rng, 12, 8.0, 2.0)
    # a pre and a post spike in the same step, and a pair one step apart, in synapse 0
    pre[0] = np.union1d(pre[0], [0.5, 0.7]).round(4)
    post[0] = np.union1d(post[0], [0.5, 0.7001]).round(4)
    rule = InhibitorySTDP(eta=0.01, tau=0.02, rho0=rho0)
    got = _paired(rule, pre, post, 0.02, 0.0, w_max, 2.5)
    want = [istdp_loop(p, q, 0.02, 0.01, 0.02, rho0, 0.0, w_max)[0] for p, q in zip(pre, post)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    if np.isfinite(w_max):
        assert np.any(got == w_max)                         # the upper bound was hit
    if rho0 > 10:
        assert np.any(got == 0.0)                           # the lower bound was hit


def test_inhibitory_stdp_transmits_the_weight_before_its_update():
    """on_pre is '{target} += w' first: the k-th pre spike (the post never fires) delivers
    w0 - k eta alpha, then w loses eta alpha."""
    pre = np.array([0.010, 0.015, 0.020])
    net = Network()
    a = net.add(SpikeGenerator(name="pre", n=1, indices=[0, 0, 0], times=pre))
    b = net.add(ConductanceLIF(name="b", n=1, v_thresh=10.0, v_reset=-0.06, method="euler", tau_i=0.01))
    net.add(Projection(name="syn", pre=a, post=b, target="g_i", weight=0.1, w_min=0.0, rule=InhibitorySTDP(eta=0.05)))
    net.add(StateProbe(name="gi", population="b", variable="g_i", sample_every=DT))
    ds = run(net, 0.03, dt=DT, seed=0)
    gi = ds["gi"].values[:, 0]
    alpha = 2 * 3.0 * 0.02
    ci = 1 - DT / 0.01
    for k, s in enumerate(np.rint(pre / DT).astype(int)):
        assert gi[s] - gi[s - 1] * ci == pytest.approx(0.1 - k * 0.05 * alpha, rel=1e-9)
    assert ds["w_syn"].values[0] == pytest.approx(0.1 - 3 * 0.05 * alpha, rel=1e-12)


def test_inhibitory_stdp_poisson_drift():
    """<dw/dt> = eta r_pre (2 tau r_post - alpha) = 2 eta tau r_pre (r_post - rho0) (all-to-all traces)."""
    n, duration, r_pre, r_post = 400, 4.0, 20.0, 10.0
    rule = InhibitorySTDP(eta=1e-3, tau=0.02, rho0=3.0)
    for rho_post in (r_post, 1.0):
        net = Network()
        a = net.add(PoissonGroup(name="pre", n=n, rate=r_pre))
        b = net.add(PoissonGroup(name="post", n=n, rate=rho_post))
        net.add(Projection(name="syn", pre=a, post=b, target="none", weight=1.0, connectivity=(np.arange(n), np.arange(n)),
                           w_min=0.0, rule=rule))
        w = run(net, duration, dt=DT, seed=4)["w_syn"].values
        drift = (w.mean() - 1.0) / duration
        predicted = 2 * 1e-3 * 0.02 * r_pre * (rho_post - 3.0)
        spread = 1e-3 * np.sqrt(r_pre * duration * (1 + 4 * 0.02 * rho_post)) / duration / np.sqrt(n)
        assert abs(drift - predicted) < 5 * spread + 0.03 * abs(predicted), (rho_post, drift, predicted)


def test_inhibitory_stdp_chunked_equals_stepped():
    def net():
        n = Network()
        src = n.add(PoissonGroup(name="src", n=40, rate=20.0))
        inh = n.add(PoissonGroup(name="inh", n=20, rate=15.0))
        post = n.add(ConductanceLIF(name="post", n=5, method="euler", t_ref=0.002, g_l=10e-9, i_ext=150e-12))
        n.add(Projection(name="exc", pre=src, post=post, target="g_e", weight=0.05))
        n.add(Projection(name="syn", pre=inh, post=post, target="g_i", weight=0.0, w_min=0.0, w_max=5.0,
                         rule=InhibitorySTDP(eta=0.02)))
        return n

    a = run(net(), 1.0, seed=2, chunk_steps=1)
    b = run(net(), 1.0, seed=2, chunk_steps=300)
    assert np.any(a["w_syn"].values > 0)
    np.testing.assert_array_equal(a["w_syn"].values, b["w_syn"].values)


def test_inhibitory_stdp_refuses_negative_lower_bound():
    a = SpikeGenerator(name="a", n=1, indices=[0], times=[0.01])
    b = ConductanceLIF(name="b", n=1)
    with pytest.raises(ValidationError, match="w_min"):
        Projection(name="p", pre=a, post=b, target="g_i", weight=0.0, rule=InhibitorySTDP())


@pytest.mark.parametrize("convention", ["all_to_all", "nearest"])
def test_dopamine_stdp_conventions_match_the_hand_loop(convention):
    """Tonic dopamine only (b < 0): w integrates c exactly; c from all-to-all or nearest-spike traces."""
    rng = np.random.default_rng(5)
    pre, post = _trains(rng, 10, 25.0, 1.5), _trains(rng, 10, 25.0, 1.5)
    rule = DopamineSTDP(A_plus=0.1, A_minus=0.15, tau_plus=0.02, tau_minus=0.02, tau_c=1.0, b=-0.2,
                        convention=convention)
    got = _paired(rule, pre, post, 1.0, -np.inf, np.inf, 2.0)
    want = [dopamine_eligibility_loop(p, q, 0.1, 0.15, 0.02, 0.02, 1.0, -0.2, 2.0, 1.0, convention == "nearest")
            for p, q in zip(pre, post)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_dopamine_stdp_nearest_differs_as_documented():
    """Pre at 0 and 10 ms, post at 20 ms: c gains A+ (e^-1 + e^-0.5) all-to-all, A+ e^-0.5 nearest."""
    pre, post = [np.array([0.0, 0.010])], [np.array([0.020])]
    out = {}
    for conv in ("all_to_all", "nearest"):
        rule = DopamineSTDP(A_plus=1.0, A_minus=0.0, tau_plus=0.02, tau_c=1.0, b=-1.0, convention=conv)
        out[conv] = _paired(rule, pre, post, 0.0, -np.inf, np.inf, 0.020 + 5.0)[0]
    # w(inf) = -b c0 tau_c (1 - e^{-5}) with c0 the eligibility after the post spike
    scale = 1.0 * 1.0 * (1 - np.exp(-5.0))
    assert out["all_to_all"] == pytest.approx((np.exp(-1) + np.exp(-0.5)) * scale, rel=1e-9)
    assert out["nearest"] == pytest.approx(np.exp(-0.5) * scale, rel=1e-9)
