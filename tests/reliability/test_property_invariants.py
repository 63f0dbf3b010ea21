"""Property-based tests (hypothesis) of the engines' invariants and of rule parameters.

Budgets follow the hypothesis profile (``tests/conftest.py``): small in the default suite,
50x larger with ``HYPOTHESIS_PROFILE=fuzz`` (see ``docs/reliability.md``).

* Bounded plasticity: weights of bounded projections stay in ``[w_min, w_max]`` under soft-
  and hard-bound STDP, whatever the amplitudes and spike trains.
* Zero modulator, zero weight change: three-factor rules (spiking ModulatedHebbian, PES,
  dopamine STDP; rate ThreeFactor and beta-gated Hebbian) leave the weights bit-identical
  while their modulator is 0.
* Rule parameters: any value is either accepted and then within its declared range, or
  refused with a :class:`~plastinet.errors.ValidationError` naming the parameter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_helpers import budget

from plastinet.errors import ValidationError
from plastinet.fwp import RULES as RATE_RULES
from plastinet.fwp import Hebbian, State, ThreeFactor, apply
from plastinet.spiking import (
    LIF,
    PES,
    DopamineSTDP,
    ModulatedHebbian,
    Network,
    PairSTDP,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    RateUnits,
    SpikeGenerator,
    SpikeSignal,
    TripletSTDP,
    TsodyksMarkram,
    WeightProbe,
    run,
)
from plastinet.spiking import RULES as SPIKE_RULES

DT = 1e-3


def _trains(draw, n: int, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Random spike trains of ``n`` neurons: at most one spike per neuron and step."""
    steps = int(duration / DT)
    k = draw(st.integers(0, 4 * n))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, steps - 1)), min_size=k, max_size=k,
                          unique=True))
    idx = np.array([p[0] for p in pairs], dtype=np.int64)
    times = np.array([p[1] * DT for p in pairs])
    return idx, times


@st.composite
def bounded_stdp_case(draw):
    rule_kind = draw(st.sampled_from(["pair_soft", "pair_additive", "triplet"]))
    amp = st.floats(0.0, 3.0)
    pairing = draw(st.sampled_from(["all", "nearest"]))
    if rule_kind == "triplet":
        rule = TripletSTDP(A2_plus=draw(amp), A3_plus=draw(amp), A2_minus=draw(amp), A3_minus=draw(amp),
                           tau_x=0.101, tau_y=0.125, pairing=pairing)
    else:
        rule = PairSTDP(A_plus=draw(amp), A_minus=draw(amp), pairing=pairing,
                        bound="soft" if rule_kind == "pair_soft" else "additive")
    w_min = draw(st.floats(-2.0, 0.5))
    w_max = w_min + draw(st.floats(1e-3, 3.0))
    n_pre, n_post = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    w0 = draw(st.lists(st.floats(w_min, w_max), min_size=n_pre * n_post, max_size=n_pre * n_post))
    return rule, w_min, w_max, n_pre, n_post, np.array(w0).reshape(n_post, n_pre), draw(st.data())


@settings(max_examples=budget(25))
@given(bounded_stdp_case())
def test_weights_stay_within_bounds_under_bounded_stdp(case):
    rule, w_min, w_max, n_pre, n_post, w0, data = case
    duration = 0.2
    net = Network()
    pre_i, pre_t = _trains(data.draw, n_pre, duration)
    post_i, post_t = _trains(data.draw, n_post, duration)
    pre = net.add(SpikeGenerator(name="pre", n=n_pre, indices=pre_i, times=pre_t))
    post = net.add(SpikeGenerator(name="post", n=n_post, indices=post_i, times=post_t))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=w0, w_min=w_min, w_max=w_max,
                       rule=rule))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.01))
    ds = run(net, duration, dt=DT, seed=0)
    for w in (ds["w_syn"].values, ds["W"].values):
        assert np.isfinite(w).all() and w.min() >= w_min and w.max() <= w_max


def _modulated_net(rule_kind: str, values: list[float], seed_rates: int) -> Network:
    rng = np.random.default_rng(seed_rates)
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=8, rate=rng.uniform(5, 80, 8)))
    if rule_kind == "pes":
        post = net.add(RateUnits(name="out", n=3, tau=0.01))
        net.add(Projection(name="teacher", pre=inp, post=post, target="soma", weight=rng.uniform(-1, 1, (3, 8))))
        rule, target, w0 = PES(eta=0.5, tau_pre=0.01, modulator="m"), "dend", rng.uniform(-1, 1, (3, 8))
    elif rule_kind == "hebbian_rate":
        post = net.add(RateUnits(name="out", n=3, tau=0.01))
        net.add(Projection(name="drive", pre=inp, post=post, target="soma", weight=rng.uniform(0, 1, (3, 8))))
        rule, target, w0 = ModulatedHebbian(eta=0.1, tau_pre=0.01, modulator="m"), "dend", rng.uniform(-1, 1, (3, 8))
    else:
        post = net.add(LIF(name="out", n=3, i_ext=2.1e-10))
        rule, target, w0 = (ModulatedHebbian(eta=1e-14, tau_pre=0.02, modulator="m"), "I_e",
                            rng.uniform(0, 1e-10, (3, 8)))
    net.add(ProgrammedSignal(name="m", values=values, interval=0.05))
    net.add(Projection(name="plastic", pre=inp, post=post, target=target, weight=w0, rule=rule))
    net.add(WeightProbe(name="W", projection="plastic", sample_every=5 * DT))
    return net


@settings(max_examples=budget(15))
@given(st.sampled_from(["pes", "hebbian_rate", "hebbian_spiking"]),
       st.lists(st.sampled_from([0.0, 0.0, 1.0, -0.5, 2.0]), min_size=2, max_size=6), st.integers(0, 10 ** 6))
def test_zero_modulator_means_zero_weight_change_spiking(rule_kind, values, seed):
    """While the programmed modulator is 0 the weights do not change by a single bit."""
    net = _modulated_net(rule_kind, values, seed)
    ds = run(net, 0.05 * len(values), dt=DT, seed=seed)
    W = ds["W"].values.reshape(ds.sizes["time"], -1)
    w0 = net.projections["plastic"].weight.reshape(-1)                     # dense (post, pre), as W
    seg = np.arange(ds.sizes["time"]) // 10                                # 10 samples per 50 ms segment
    for k, m in enumerate(values):
        rows = W[seg == k]
        if m == 0.0:
            assert np.array_equal(rows, np.broadcast_to(rows[0], rows.shape)), (rule_kind, values, k)
            if all(v == 0.0 for v in values[: k + 1]):
                assert np.array_equal(rows[0], w0)                           # nothing changed yet
    w0_syn = net.projections["plastic"].weight.T.reshape(-1)               # synapses ordered by pre
    if all(m == 0.0 for m in values):
        assert np.array_equal(ds["w_plastic"].values, w0_syn)
    else:
        assert not np.array_equal(ds["w_plastic"].values, w0_syn)            # the test can fail


@settings(max_examples=budget(15))
@given(st.integers(0, 10 ** 6), st.floats(0.0, 0.5), st.floats(0.0, 2.0))
def test_dopamine_stdp_without_dopamine_changes_nothing(seed, A, rate_scale):
    """No dopamine (n = 0) and no baseline (b = 0): eligibility builds up, the weights stay put."""
    rng = np.random.default_rng(seed)
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=6, rate=20.0 * rate_scale))
    post = net.add(LIF(name="post", n=2, i_ext=2.1e-10))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.0))
    w0 = rng.uniform(0, 1e-10, (2, 6))
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=w0, w_min=0.0, w_max=1e-9,
                       rule=DopamineSTDP(A_plus=A, A_minus=1.5 * A, b=0.0, modulator="dopamine")))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.01))
    ds = run(net, 0.3, dt=DT, seed=seed)
    assert np.array_equal(ds["w_syn"].values, w0.T.reshape(-1))
    assert np.array_equal(ds["W"].values, np.broadcast_to(w0, ds["W"].shape))


@settings(max_examples=budget(20))
@given(st.integers(0, 10 ** 6), st.integers(1, 12), st.floats(0.0, 1.0), st.booleans())
def test_zero_modulator_means_zero_weight_change_rate(seed, T, gamma, partly):
    """Rate rules: ThreeFactor keeps W exactly while m = 0; Hebbian with beta = 0 keeps W0 (every form)."""
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(2, 1, 2, T, 3))
    v = rng.normal(size=(1, 2, T, 2))
    W0, E0 = rng.normal(size=(2, 1, 2, 2, 3))
    h = T // 2 if partly else 0                          # plasticity on in the first h steps only
    m = np.zeros((1, 2, T))
    m[..., :h] = rng.normal(size=h)
    _, W = apply(ThreeFactor(gamma=gamma), q, k, v, modulator=m, initial_state=State(W0, None, E0))
    W_h = W0
    if h:
        _, W_h = apply(ThreeFactor(gamma=gamma), q[:, :, :h], k[:, :, :h], v[:, :, :h], modulator=m[..., :h],
                       initial_state=State(W0, None, E0))
        assert not np.array_equal(W_h, W0)                   # the test can fail
    assert np.array_equal(W, W_h)
    for form in Hebbian().forms:
        _, W = apply(Hebbian(), q, k, v, beta=np.zeros((1, 2, T)), initial_state=W0, form=form)
        assert np.array_equal(W, W0), form


# -- rule parameters ------------------------------------------------------------------------------
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 6, 10 ** 6), st.booleans(), st.none(),
    st.sampled_from(["20 ms", "-3 ms", "5 mV", "1e-3", "fast", "", "10 Hz", "all", "nearest", "soft", "additive",
                     "relu", "dpfp-2", "beta", "m"]),
    st.lists(st.floats(-1, 1), max_size=3),
)
RULE_CLASSES = sorted({*SPIKE_RULES.values(), TsodyksMarkram, *RATE_RULES.values()}, key=lambda c: c.__name__)


@settings(max_examples=budget(60))
@given(st.sampled_from(RULE_CLASSES), st.data())
def test_rule_parameters_are_validated(cls, data):
    name = data.draw(st.sampled_from(sorted(cls.parameters())), label="parameter")
    value = data.draw(VALUES, label="value")
    param = cls.parameters()[name]
    try:
        rule = cls(**{name: value})
    except ValidationError as err:
        assert err.parameter in cls.parameters() or err.parameter in ("feature_map", "kind", "nu", "normalize")
        assert err.parameter in str(err)
        return
    stored = getattr(rule, name)
    if param.choices is not None:
        assert stored in param.choices
    elif param.convert is None and stored is not None:
        assert isinstance(stored, (int, float)) and math.isfinite(stored)
        assert param.low is None or stored > param.low or (stored == param.low and not param.low_open)
        assert param.high is None or stored < param.high or (stored == param.high and not param.high_open)
        if param.integer:
            assert stored == int(stored)
    assert type(rule)(**rule.get_params()) == rule                   # accepted values round-trip


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=lambda c: c.__name__)
def test_every_rule_builds_with_its_defaults(cls):
    rule = cls()
    assert cls(**rule.get_params()) == rule
