"""Every rate rule's spiking realisation equals plastinet.fwp.apply in expectation.

The spiking weights (in rate units) are averaged over seeds; the slope of the mean spiking
weights on the rate weights must be 1 within four standard errors of the seed average
(the standard error is measured in the test and must itself be small), and the lag-
compensated delta rule within 1 % at the default settings (slow test, 150 seeds).
"""

import math

import numpy as np
import pytest

from plastinet.errors import RangeError, UnsupportedError
from plastinet.experiments.fwp_bridge import delta_step_modulator, lagged_delta_factor, run_fwp
from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, ThreeFactor

FM = FeatureMap("relu", normalize="l2")
ALPHA = np.array([0.9, 0.7, 0.8, 0.95])
RULES = {"hebbian": (Hebbian(feature_map=FM), {}),
         "decayed_hebbian": (DecayedHebbian(feature_map=FM), {"alpha": ALPHA}),
         "delta": (Delta(feature_map=FM), {}),
         "gated_delta": (GatedDelta(feature_map=FM), {"alpha": ALPHA}),
         "three_factor": (ThreeFactor(feature_map=FM), {"modulator": np.array([1.0, 0.5, 2.0, 0.3])})}


def _sequence():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(4, 4))
    return k + 0.1 * rng.normal(size=(4, 4)), k, rng.uniform(0, 1, size=(4, 3)), np.full(4, 0.8)


def _slopes(rule, kw, seeds, **options):
    q, k, v, beta = _sequence()
    slopes = []
    for seed in seeds:
        ds = run_fwp(rule, q, k, v, beta, seed=seed, **kw, **options)
        w_s, w_r = ds["w_spiking"].values, ds["w_rate"].values
        slopes.append(float((w_s * w_r).sum() / (w_r * w_r).sum()))
    slopes = np.array(slopes)
    return slopes.mean(), slopes.std(ddof=1) / math.sqrt(slopes.size)


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_matches_apply_in_expectation(name):
    rule, kw = RULES[name]
    mean, se = _slopes(rule, kw, range(10), neurons_per_feature=50)
    assert se < 0.012, se                       # measured 0.005-0.009
    assert abs(mean - 1) < 4 * se, (mean, se)


@pytest.mark.slow
def test_delta_exact_in_expectation_at_default_settings():
    mean, se = _slopes(*RULES["delta"], range(150))
    assert se < 0.003, se
    assert abs(mean - 1) < 0.01, (mean, se)


def test_delta_modulator_compensates_the_filter_lag():
    p = math.exp(-0.1)                          # dt = 1 ms, tau = 10 ms
    for bn in (0.3, 0.8, 0.95):
        m = delta_step_modulator(bn, 1.0, 150, p)
        assert lagged_delta_factor(m / 150, 150, p) == pytest.approx(1 - bn, rel=1e-10)
        assert m < -math.log(1 - bn)            # the lag-free modulator overshoots
    # without the filter (p = 0) the lag-free continuous-time modulator is recovered as dt -> 0
    assert delta_step_modulator(0.8, 1.0, 20000, 0.0) == pytest.approx(-math.log(0.2), rel=1e-3)


def test_unrealised_rules_and_gates_are_refused():
    q, k, v, beta = _sequence()
    with pytest.raises(UnsupportedError, match="gamma"):
        run_fwp(ThreeFactor(feature_map=FM, gamma=0.5), q, k, v, beta)
    with pytest.raises(RangeError, match="alpha"):
        run_fwp(DecayedHebbian(feature_map=FM), q, k, v, beta, alpha=np.array([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(UnsupportedError, match="alpha"):
        run_fwp(Delta(feature_map=FM), q, k, v, beta, alpha=ALPHA)
