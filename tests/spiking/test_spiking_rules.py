"""Exact STDP windows, triplet/Sjostrom shape, dopamine closed form, Tsodyks-Markram, Kempter drift."""

import numpy as np
import pytest

from plastinet.errors import ValidationError
from plastinet.experiments import protocols as P
from plastinet.spiking import (
    LIF,
    DopamineSTDP,
    Network,
    PairSTDP,
    Projection,
    SpikeGenerator,
    SpikeSignal,
    StateProbe,
    TripletSTDP,
    TsodyksMarkram,
    run,
)

DTS = np.array([-0.08, -0.03, -0.0101, -0.0003, 0.0, 0.0004, 0.0099, 0.025, 0.07])
AP, AM, TP, TM = 0.0107, 0.0093, 0.0168, 0.0337


def _window(dts):
    return np.where(dts >= 0, AP * np.exp(-np.abs(dts) / TP), -AM * np.exp(-np.abs(dts) / TM))


@pytest.mark.parametrize("pairing", ["all", "nearest"])
def test_pair_window_exact(pairing):
    rule = PairSTDP(A_plus=AP, A_minus=AM, tau_plus=TP, tau_minus=TM, pairing=pairing)
    ds = P.pairing_window(rule, DTS)
    assert np.allclose(ds.dw.values, _window(DTS), rtol=1e-12, atol=0)


@pytest.mark.parametrize("pairing", ["all", "nearest"])
def test_soft_bound_window_exact(pairing):
    rule = PairSTDP(A_plus=AP, A_minus=AM, tau_plus=TP, tau_minus=TM, bound="soft", pairing=pairing)
    w0, wmax = 0.3, 1.0
    ds = P.pairing_window(rule, DTS, w0=w0, w_min=0.0, w_max=wmax)
    ana = np.where(DTS >= 0, AP * (wmax - w0) * np.exp(-np.abs(DTS) / TP),
                   -AM * w0 * np.exp(-np.abs(DTS) / TM))
    assert np.allclose(ds.dw.values, ana, rtol=1e-12, atol=1e-17)


NEAREST = dict(A2_plus=4.6e-3, A3_plus=9.1e-3, A2_minus=3e-3, A3_minus=1e-4, tau_x=0.575, tau_y=0.047)


@pytest.mark.parametrize("make", [TripletSTDP.visual_cortex_full, TripletSTDP.hippocampal_full,
                                  TripletSTDP.hippocampal_minimal,
                                  lambda: TripletSTDP(pairing="nearest", **NEAREST)])
def test_triplet_single_pair_window_exact(make):
    rule = make()
    ds = P.pairing_window(rule, DTS)
    ana = np.where(DTS >= 0, rule.A2_plus * np.exp(-np.abs(DTS) / rule.tau_plus),
                   -rule.A2_minus * np.exp(-np.abs(DTS) / rule.tau_minus))
    assert np.allclose(ds.dw.values, ana, rtol=1e-12, atol=0)


PRESETS = ("visual_cortex_minimal", "visual_cortex_full", "hippocampal_full", "hippocampal_minimal")


@pytest.mark.parametrize("preset", PRESETS)
def test_triplet_presets_are_all_to_all_and_refuse_nearest(preset):
    """The presets are Pfister & Gerstner's all-to-all rows; nearest-spike was fitted separately."""
    assert getattr(TripletSTDP, preset)().pairing == "all"
    with pytest.raises(ValidationError, match=rf"TripletSTDP\.{preset}: invalid pairing='nearest'.*all-to-all"):
        getattr(TripletSTDP, preset)(pairing="nearest")
    with pytest.raises(ValidationError, match="pairing='nearest'.*needs explicit A2_plus"):
        getattr(TripletSTDP, preset)().replace(pairing="nearest")


def test_nearest_triplet_requires_explicit_fitted_parameters():
    with pytest.raises(ValidationError, match="TripletSTDP: invalid pairing='nearest'; nearest-spike pairing needs "
                                              "explicit A2_plus, A3_plus, A2_minus, A3_minus, tau_x, tau_y"):
        TripletSTDP(pairing="nearest")
    partial = {k: v for k, v in NEAREST.items() if k != "tau_y"}
    with pytest.raises(ValidationError, match="needs explicit tau_y:"):
        TripletSTDP(pairing="nearest", **partial)
    rule = TripletSTDP(pairing="nearest", **NEAREST)
    assert rule.replace(A2_plus=1e-3).A2_plus == 1e-3 and rule.replace(A2_plus=1e-3).pairing == "nearest"
    assert TripletSTDP(**{k: v for k, v in rule.to_dict().items() if k != "type"}) == rule


def test_triplet_citations_name_the_right_tables():
    """Pfister & Gerstner 2006: Table 3 holds the visual-cortex fits, Table 4 the hippocampal ones."""
    for preset in PRESETS:
        doc = getattr(TripletSTDP, preset).__doc__
        table = "Table 3" if preset.startswith("visual") else "Table 4"
        other = "Table 4" if table == "Table 3" else "Table 3"
        assert table in doc and other not in doc, (preset, doc)
    assert "Table 3: visual cortex" in TripletSTDP.source and "Table 4: hippocampal" in TripletSTDP.source
    from plastinet.analysis import TRIPLET_VISUAL
    from plastinet.experiments import load_model

    assert "Table 3" in TRIPLET_VISUAL.source and "Table 4" not in (type(TRIPLET_VISUAL).__doc__ or "")
    model = load_model("triplet_sjostrom2001")
    assert "Table 3 (visual cortex" in model.source and "Table 4" not in model.source


def test_all_to_all_vs_nearest_differ_on_two_pre_spikes():
    # pre, pre, post: all-to-all sums both pairs, nearest only the nearest one
    d1, d2 = 0.012, 0.004
    for pairing, expected in (("all", AP * (np.exp(-d1 / TP) + np.exp(-d2 / TP))),
                              ("nearest", AP * np.exp(-d2 / TP))):
        net = Network()
        pre = net.add(SpikeGenerator(name="pre", n=1, indices=[0, 0], times=[0.1, 0.1 + d1 - d2]))
        post = net.add(SpikeGenerator(name="post", n=1, indices=[0], times=[0.1 + d1]))
        net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0,
                           rule=PairSTDP(A_plus=AP, A_minus=0.0, tau_plus=TP, tau_minus=TM, pairing=pairing)))
        w = run(net, 0.3).w_syn.values[0]
        assert w == pytest.approx(expected, rel=1e-12)


def test_sjostrom_frequency_dependence_shape():
    ds = P.sjostrom(TripletSTDP.visual_cortex_minimal())
    plus, minus = ds.dw_rel.sel(delta_t=0.01).values, ds.dw_rel.sel(delta_t=-0.01).values
    assert abs(plus[0]) < 0.05                     # ~no change at 0.1 Hz (data -0.04 +- 0.05)
    assert np.all(np.diff(plus) > 0) and plus[-1] > 0.4   # potentiation rising with frequency
    assert np.all(minus[:3] < -0.2)               # depression at low frequency for -10 ms
    assert minus[-1] > 0.4                         # potentiation at 50 Hz
    # every point within 1.3 s.e.m. of the data (largest: -10 ms at 40 Hz, 1.21 s.e.m.)
    err = np.abs(ds.dw_rel.values - ds.data_mean.values) / ds.data_sem.values
    assert err.max() < 1.3 and err[1, 3] == err.max()


def test_kempter_drift_within_10_percent():
    rule = PairSTDP(A_plus=1.0, A_minus=0.5, tau_plus=0.02, tau_minus=0.02)
    d = P.poisson_drift(rule, r_pre=20.0, r_post=20.0, n_pre=200, n_post=10, duration=10.0)
    assert float(d.drift) == pytest.approx(float(d.predicted), rel=0.10)
    assert float(d.drift) == pytest.approx(float(d.predicted_realised), rel=0.05)


@pytest.mark.parametrize("seed", [0, 1])
def test_drift_of_near_cancelling_rule_is_the_discrete_time_kempter_drift(seed):
    """Song et al.'s A- = 1.05 A+: the net integral is 5 % of each lobe, so the clock's offset
    dt (A+ + A-) / 2 shifts the drift by +10 % at dt = 0.1 ms; the exact discrete expectation
    (realised rates) holds within 6 %, and it tends to the continuous formula as dt -> 0."""
    rule = PairSTDP(A_plus=1e-4, A_minus=1.05e-4, tau_plus=0.02, tau_minus=0.02)
    d = P.poisson_drift(rule, r_pre=20.0, r_post=20.0, n_pre=200, n_post=10, duration=10.0, seed=seed)
    assert float(d.drift) == pytest.approx(float(d.predicted_discrete_realised), rel=0.06)
    offset = float(d.predicted_discrete / d.predicted - 1)
    dt, integral = 1e-4, rule.A_plus * rule.tau_plus - rule.A_minus * rule.tau_minus
    assert offset == pytest.approx(dt * (rule.A_plus + rule.A_minus) / 2 / integral, rel=0.01)   # -10 %
    fine = P.poisson_drift(rule, n_pre=2, n_post=2, duration=0.01, dt=1e-6, seed=seed)
    assert abs(float(fine.predicted_discrete / fine.predicted - 1)) < 0.0011


def _dopamine_net(t_pre, t_post, t_da, b=0.0, w_max=np.inf):
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=[0], times=[t_pre]))
    post = net.add(SpikeGenerator(name="post", n=1, indices=[0], times=[t_post]))
    da = net.add(SpikeGenerator(name="da", n=1, indices=[0], times=[t_da]))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=1 / 0.2, sources=("da",)))
    rule = DopamineSTDP(A_plus=1.0, A_minus=1.5, tau_plus=0.02, tau_minus=0.02, tau_c=1.0, b=b)
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0, w_min=-np.inf,
                       w_max=w_max, rule=rule))
    return net, da


def test_dopamine_closed_form():
    # eligibility c0 = A+ exp(-10 ms / tau+) at t = 0.11 s, one dopamine spike at 0.5 s
    net, _ = _dopamine_net(0.1, 0.11, 0.5)
    w = run(net, 30.0, dt=1e-4).w_syn.values[0]
    c0 = np.exp(-0.01 / 0.02) * np.exp(-(0.5 - 0.11) / 1.0)
    tau_s = 1.0 * 0.2 / 1.2
    n0 = 1 / 0.2
    assert w == pytest.approx(c0 * n0 * tau_s * -np.expm1(-(30.0 - 0.5) / tau_s), rel=1e-12)


def test_dopamine_baseline_term_exact():
    b = -0.3
    net, _ = _dopamine_net(0.1, 0.11, 100.0, b=b)   # dopamine spike never comes
    T = 2.0
    w = run(net, T, dt=1e-4).w_syn.values[0]
    c0 = np.exp(-0.01 / 0.02)
    assert w == pytest.approx(-b * c0 * 1.0 * -np.expm1(-(T - 0.11) / 1.0), rel=1e-12)


def test_dopamine_nest_units_per_millisecond():
    """NEST's b and n are per ms and it integrates w to the end of the run: NEST's closed form in
    ms with b_NEST = 2e-4 /ms equals this engine with b = 1000 b_NEST = 0.2 /s (times in s)."""
    b_nest, tau_c, tau_n = 2e-4, 1000.0, 200.0                    # /ms, ms, ms
    t_post, t_da, T = 110.0, 500.0, 3000.0                         # ms; pre spike at 100 ms
    c0 = np.exp(-10.0 / 20.0)                                      # A+ = 1, tau_plus = 20 ms
    tau_s = tau_c * tau_n / (tau_c + tau_n)
    before = -b_nest * c0 * tau_c * -np.expm1(-(t_da - t_post) / tau_c)
    c_da, D = c0 * np.exp(-(t_da - t_post) / tau_c), T - t_da
    after = c_da * ((1 / tau_n) * tau_s * -np.expm1(-D / tau_s) - b_nest * tau_c * -np.expm1(-D / tau_c))
    net, _ = _dopamine_net(0.1, 0.11, 0.5, b=1000 * b_nest)
    w = run(net, T / 1000, dt=1e-4).w_syn.values[0]
    assert w == pytest.approx(before + after, rel=1e-12)
    shorter = run(_dopamine_net(0.1, 0.11, 0.5, b=1000 * b_nest)[0], 1.0, dt=1e-4).w_syn.values[0]
    assert shorter != pytest.approx(w, rel=1e-3)                   # integrated to the end of each run
    assert "per millisecond" in DopamineSTDP.__doc__ and "end of the simulation" in DopamineSTDP.__doc__


def test_dopamine_traces_are_all_to_all():
    """Pre spikes at 0 and 10 ms, a post spike at 20 ms: the eligibility is the all-to-all sum
    A+ (e^-1 + e^-0.5), not daspnet.m's nearest-spike A+ e^-0.5 (the documented convention)."""
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=[0, 0], times=[0.10, 0.11]))
    post = net.add(SpikeGenerator(name="post", n=1, indices=[0], times=[0.12]))
    da = net.add(SpikeGenerator(name="da", n=1, indices=[0], times=[0.5]))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=1 / 0.2, sources=(da.name,)))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0, w_min=-np.inf, w_max=np.inf,
                       rule=DopamineSTDP(A_plus=1.0, A_minus=1.5, tau_plus=0.02, tau_minus=0.02, tau_c=1.0)))
    w = run(net, 5.0, dt=1e-4).w_syn.values[0]
    factor = np.exp(-(0.5 - 0.12) / 1.0) * (1 / 0.2) * (1.0 * 0.2 / 1.2) * -np.expm1(-(5.0 - 0.5) / (1.0 * 0.2 / 1.2))
    assert w == pytest.approx((np.exp(-1.0) + np.exp(-0.5)) * factor, rel=1e-12)
    assert w / (np.exp(-0.5) * factor) == pytest.approx(1.606, abs=1e-3)    # daspnet.m's reset would give 1
    assert "daspnet.m" in DopamineSTDP.__doc__ and "all-to-all" in DopamineSTDP.__doc__
    from plastinet.experiments import load_model

    assert "all-to-all STDP traces" in load_model("izhikevich2007_distal_reward").description


def test_tsodyks_markram_steady_state():
    U, tau_rec, period = 0.4, 0.3, 0.05
    n_sp = 60
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=np.zeros(n_sp, int), times=0.01 + period * np.arange(n_sp)))
    post = net.add(LIF(name="post", n=1, tau_e=0.005, t_ref=0.0, v_thresh=10.0, v_reset=-1.0))
    net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=1e-9,
                       stp=TsodyksMarkram(U=U, tau_rec=tau_rec)))
    net.add(StateProbe(name="I", population="post", variable="I_e", sample_every=1e-4))
    ds = run(net, 0.01 + period * n_sp, dt=1e-4)
    I = ds.I.values[:, 0]
    steps = np.rint((0.01 + period * np.arange(n_sp)) / 1e-4).astype(int)
    jumps = I[steps] - I[steps - 1] * np.exp(-1e-4 / 0.005)
    E = np.exp(-period / tau_rec)
    R_star = (1 - E) / (1 - (1 - U) * E)
    assert jumps[0] == pytest.approx(1e-9 * U, rel=1e-9)
    assert jumps[-1] == pytest.approx(1e-9 * U * R_star, rel=1e-9)
