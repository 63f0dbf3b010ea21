"""Acceptance 5: every analysis rejects inputs it cannot use with an error that says what is needed."""

import numpy as np
import pytest
import xarray as xr

from plastinet.analysis import (
    OJA,
    attention_weights,
    fit_frequency_dependence,
    fit_power_law,
    fit_rate_dependence,
    fit_rule,
    fit_stdp_window,
    infer_rule,
    synthetic_trace,
    transition_spectrum,
)
from plastinet.errors import ValidationError
from plastinet.experiments import (
    capacity_curves,
    forgetting_curve,
    measure_frequency_dependence,
    measure_rate_dependence,
    measure_stdp_window,
    plasticity_trace,
    rate_spike_scaling,
)
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian

K = np.random.default_rng(0).normal(size=(10, 4))
GRID = {"r_pre": [1.0, 2, 3], "r_post": [1.0, 2, 3]}
FREQ = {"frequency": [1.0, 2, 3], "delta_t": [0.01, -0.01]}

CASES = [
    (lambda: capacity_curves(Hebbian(), []), "non-empty list of positive integers"),
    (lambda: capacity_curves(Hebbian(), [4], trials=0), "trials"),
    (lambda: forgetting_curve(Hebbian(), 5, trials=0), "trials.*positive integer"),
    (lambda: forgetting_curve(Hebbian(), 5, beta=np.nan), "beta.*finite"),
    (lambda: transition_spectrum(Delta(), np.ones(4)), r"shape \(T, d_k\)"),
    (lambda: transition_spectrum(Delta(), np.zeros((0, 4))), r"T, d_k >= 1"),
    (lambda: transition_spectrum(Delta(), K * np.nan), "finite"),
    (lambda: transition_spectrum(GatedDelta(), K, alpha=np.ones(3)), r"alpha.*shape \(10,\), one per key"),
    (lambda: transition_spectrum(Hebbian(), K), "needs a Delta or GatedDelta"),
    (lambda: attention_weights(DecayedHebbian(), K, K, alpha=np.ones(3)), "one decay per write"),
    (lambda: attention_weights(Hebbian(), K * np.nan, K), "finite"),
    (lambda: attention_weights(Hebbian(), np.zeros((0, 4)), K), r"k \(T, d_k\)"),
    (lambda: attention_weights(Hebbian(), K, K, beta=np.ones(3)), "one learning rate per write"),
    (lambda: fit_power_law(xr.DataArray([1.0, 2.0], dims="n", coords={"n": [1, 2]})), "too few samples: needs"),
    (lambda: fit_power_law(xr.DataArray(np.ones(4), dims="n")), "needs numeric coordinates"),
    (lambda: rate_spike_scaling(Hebbian(feature_map="relu"), K[:3], K[:3], K[:3, :2], neurons=(5,), rates=(50.0,),
                                phases=(0.2,), seeds=(0,)), "at least 2 distinct values"),
    (lambda: fit_stdp_window(xr.DataArray(np.ones(8), dims="delta_t")), "'delta_t' needs a coordinate"),
    (lambda: fit_stdp_window(xr.DataArray([1.0, np.nan], dims="delta_t", coords={"delta_t": [-0.01, 0.01]})),
     "finite"),
    (lambda: fit_rate_dependence(xr.DataArray(np.full((3, 3), np.nan), dims=("r_pre", "r_post"), coords=GRID)),
     "finite"),
    (lambda: fit_rate_dependence(xr.DataArray(np.ones((3, 3)), dims=("r_pre", "r_post"))),
     "'r_pre' needs a coordinate"),
    (lambda: fit_frequency_dependence(xr.DataArray(np.ones((3, 2)), dims=("frequency", "delta_t"))),
     "'frequency' needs a coordinate"),
    (lambda: fit_frequency_dependence(xr.DataArray(np.ones((1, 2)), dims=("frequency", "delta_t"),
                                                   coords={"frequency": [1.0], "delta_t": [0.01, -0.01]})),
     "at least 2 pairing frequencies"),
    (lambda: fit_rule(synthetic_trace(OJA, n_pre=1, n_post=1, T=10), families=["polynomial"]), "too few samples"),
    (lambda: plasticity_trace(xr.Dataset({"W": (("time", "post", "pre"), np.zeros((1, 2, 2)))})), "missing pre, post"),
    (lambda: synthetic_trace("oja"), "expected a rule of plastinet.analysis.LIBRARY"),
    (lambda: infer_rule(xr.Dataset({"pre": (("time", "pre"), np.ones((10, 2)))})), "missing post or choice"),
    (lambda: infer_rule(xr.Dataset({"pre": (("time", "pre"), K), "post": (("time", "post"), K * np.nan)})), "finite"),
]


@pytest.mark.parametrize("call,needed", CASES)
def test_unusable_inputs_say_what_is_needed(call, needed):
    with pytest.raises(ValidationError, match=needed):
        call()


def test_protocol_measurements_reject_rules_they_cannot_measure():
    spiking = pytest.importorskip("plastinet.spiking")
    for call, needed in ((lambda: measure_stdp_window(spiking.PES()), "needs a spike-timing rule"),
                         (lambda: measure_stdp_window(spiking.DopamineSTDP(), n_pairings=3), "single pairs"),
                         (lambda: measure_rate_dependence(spiking.PES()), "needs PairSTDP or TripletSTDP"),
                         (lambda: measure_rate_dependence(spiking.PairSTDP(), r_pre=(1.0,), r_post=(1.0, 2.0)),
                          "at least 6"),
                         (lambda: measure_frequency_dependence(spiking.ModulatedHebbian()),
                          "needs PairSTDP or TripletSTDP")):
        with pytest.raises(ValidationError, match=needed):
            call()
