"""The step-by-step spiking memory and a trained recurrent programmer driving it.

The memory (plastinet.experiments.spiking_memory) runs every write and read phase as its own
simulation; its delta rule takes the error from the weights before the step through an
independent copy of the key neurons, so the expected step equals the rate rule for every
beta, beta |phi|^2 > 1 included (which the single-network bridge refuses).
"""

import math

import numpy as np
import pytest

from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.experiments import load_model
from plastinet.experiments.fwp_bridge import from_fwp
from plastinet.experiments.spiking_memory import SpikingMemory
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, ThreeFactor, apply


def _sequence(rule):
    rng = np.random.default_rng(0)
    phik, v = np.abs(rng.normal(size=(4, 4))), rng.uniform(-1, 1, size=(4, 3))
    phiq, beta = np.abs(rng.normal(size=(2, 4))), np.full(4, 0.3)
    W = np.zeros((3, 4))
    for t in range(4):
        pred = W @ phik[t] if isinstance(rule, Delta) else 0.0
        W = W + beta[t] * np.outer(v[t] - pred, phik[t])
    return phik, v, beta, phiq, W


def _runs(rule, seeds, n, **options):
    """Weight slopes on the rate weights and read-out errors over seeds."""
    phik, v, beta, phiq, W = _sequence(rule)
    slopes, errors = [], []
    for seed in seeds:
        mem = SpikingMemory(rule, 4, 3, neurons_per_feature=n, readout_neurons=n, error_neurons=n, y_range=2.0,
                            seed=seed, **options)
        for t in range(4):
            mem.write(phik[t], v[t], beta[t])
        y = mem.read(phiq)
        slopes.append(float((mem.W * W).sum() / (W * W).sum()))
        errors.append(float(np.linalg.norm(y - phiq @ W.T) / np.linalg.norm(phiq @ W.T)))
    slopes = np.array(slopes)
    return slopes.mean(), slopes.std(ddof=1) / math.sqrt(slopes.size), float(np.mean(errors))


def test_delta_step_beyond_beta_phi2_one_is_exact_in_expectation():
    rule = Delta(feature_map="relu")
    phik, v, beta, phiq, _ = _sequence(rule)
    assert (beta * (phik ** 2).sum(1)).max() > 2           # 2.26: one step overshoots the target
    with pytest.raises(RangeError, match="beta"):          # the closed-loop bridge cannot realise it
        from_fwp(rule, phik, phik, v, beta)
    mean, se, _ = _runs(rule, range(12), 20)
    assert se < 0.02, se
    assert abs(mean - 1) < 4 * se, (mean, se)


def test_hebbian_memory_is_unbiased():
    mean, se, _ = _runs(Hebbian(feature_map="relu"), range(6), 80)
    assert se < 0.025, se
    assert abs(mean - 1) < 4 * se, (mean, se)


ALPHA = np.array([0.9, 0.5, 0.0, 0.8])                     # alpha = 0 erases the memory
MOD = np.array([1.0, -0.5, 2.0, 0.7])


@pytest.mark.parametrize("rule,gate", [(DecayedHebbian(feature_map="relu"), {"alpha": ALPHA}),
                                       (GatedDelta(feature_map="relu"), {"alpha": ALPHA}),
                                       (ThreeFactor(feature_map="relu", gamma=0.6), {"modulator": MOD})],
                         ids=["decayed_hebbian", "gated_delta", "three_factor_gamma"])
@pytest.mark.filterwarnings("ignore::plastinet.errors.UnstableUpdateWarning")   # beta |phi|^2 = 2.26 on purpose
def test_decay_and_eligibility_match_apply_in_expectation(rule, gate):
    phik, v, beta, _, _ = _sequence(rule)
    _, state = apply(rule, phik[None, None], phik[None, None], v[None, None], beta=beta[None, None],
                     return_state=True, **{k: a[None, None] for k, a in gate.items()})
    W = state.W[0, 0]
    slopes = []
    for seed in range(6):
        mem = SpikingMemory(rule, 4, 3, neurons_per_feature=20, seed=seed)
        for t in range(4):
            mem.write(phik[t], v[t], beta[t], **{k: a[t] for k, a in gate.items()})
        slopes.append(float((mem.W * W).sum() / (W * W).sum()))
    mean, se = np.mean(slopes), np.std(slopes, ddof=1) / math.sqrt(len(slopes))
    assert se < 0.05, se                                    # measured 0.03 (4 seeds)
    assert abs(mean - 1) < 4 * se, (mean, se)


@pytest.mark.parametrize("options", [{}, pytest.param({"readout": "lif"}, marks=pytest.mark.slow),
                                     pytest.param({"error": "lif"}, marks=pytest.mark.slow)])
def test_readout_error_falls_with_the_neurons(options):
    rule = Delta(feature_map="relu")
    _, _, small = _runs(rule, range(2), 5, **options)
    _, _, large = _runs(rule, range(2), 40, **options)
    assert large < 0.7 * small, (small, large)


def test_memory_refuses_what_it_cannot_realise():
    with pytest.raises(UnsupportedError, match="rule"):
        SpikingMemory(Oja(), 4, 3)
    with pytest.raises(UnsupportedError, match="error"):
        SpikingMemory(Hebbian(feature_map="relu"), 4, 3, error="lif")
    with pytest.raises(ValidationError, match="readout"):
        SpikingMemory(Delta(feature_map="relu"), 4, 3, readout="poisson")
    mem = SpikingMemory(Delta(feature_map="relu"), 4, 3)
    with pytest.raises(UnsupportedError, match="non-negative"):
        mem.write(np.array([1.0, -0.5, 0.0, 0.0]), np.zeros(3), 0.5)
    with pytest.raises(RangeError, match="beta"):
        mem.write(np.ones(4), np.zeros(3), -1.0)
    with pytest.raises(UnsupportedError, match="alpha"):
        mem.write(np.ones(4), np.zeros(3), 0.5, alpha=0.9)
    with pytest.raises(UnsupportedError, match="modulator"):
        mem.write(np.ones(4), np.zeros(3), 0.5, modulator=0.9)
    with pytest.raises(RangeError, match="alpha"):
        SpikingMemory(DecayedHebbian(feature_map="relu"), 4, 3).write(np.ones(4), np.zeros(3), 0.5, alpha=1.5)
    with pytest.raises(UnsupportedError, match="scalar"):
        SpikingMemory(GatedDelta(feature_map="relu"), 4, 3).write(np.ones(4), np.zeros(3), 0.5, alpha=np.ones(4))


def _ba2016(quick, overrides=None):
    return load_model("spiking_ba2016_retrieval", overrides, quick=quick).run(progress=False)


def test_quick_recurrent_programmer_fed_by_the_spiking_readout():
    ds = _ba2016(True, {"protocol.sequences": 4, "protocol.neurons": [2, 10], "protocol.rates": ["50 Hz", "100 Hz"]})
    assert ds.attrs["programmer"] == "recurrent"
    # more spikes per token: the logits approach the rate model's (measured 0.20 -> 0.086);
    # at 200 spikes per token every sequence is classified as by the rate model
    err = ds["relative_error"].values
    assert err[1] < 0.6 * err[0], err
    assert ds["agreement"].values[-1] == 1.0
    assert ds.attrs["accuracy_spiking"] >= 0.9 * ds.attrs["accuracy_rate"]


@pytest.mark.slow
def test_full_recurrent_programmer_reaches_ninety_five_percent_of_the_rate_model():
    ds = _ba2016(False)
    assert ds.attrs["beta_phi2_max"] > 1                    # measured 1.06: beyond the closed-loop bridge
    assert ds.attrs["accuracy_rate"] >= 0.8                 # measured 0.90 (20 sequences)
    assert ds.attrs["accuracy_spiking"] >= 0.95 * ds.attrs["accuracy_rate"]
    assert 0 < ds.attrs["smallest_budget_95"] <= ds.attrs["spikes_per_token"]


@pytest.mark.parametrize("rule,options,gate", [(Delta(feature_map="relu"), {"readout": "lif", "error": "lif"}, {}),
                                               (DecayedHebbian(feature_map="relu"), {}, {"alpha": 0.7})],
                         ids=["delta_lif", "decayed_hebbian"])
def test_memory_runs_identically_on_brian2(rule, options, gate):
    pytest.importorskip("brian2")
    rng = np.random.default_rng(0)
    phik, v = np.abs(rng.normal(size=(2, 3))), rng.uniform(-1, 1, size=(2, 2))
    got = {}
    for backend in ("numpy", "brian2"):
        mem = SpikingMemory(rule, 3, 2, neurons_per_feature=4, readout_neurons=3, error_neurons=3, phase=0.04,
                            tau=0.003, seed=1, backend=backend, **options)
        for t in range(2):
            mem.write(phik[t], v[t], 0.5, **gate)
        got[backend] = (mem.W, mem.read(phik))
    assert np.abs(got["numpy"][0]).max() > 0.1
    np.testing.assert_allclose(got["brian2"][0], got["numpy"][0], rtol=0, atol=1e-12)   # measured 6e-17
    np.testing.assert_allclose(got["brian2"][1], got["numpy"][1], rtol=0, atol=1e-12)


def test_a_model_trained_with_plastinet_train_runs_in_spikes(tmp_path):
    from plastinet.experiments.spiking_classifier import spiking_ba2016_retrieval

    load_model("ba2016_retrieval", quick=True).run(progress=False, out_dir=tmp_path)   # = plastinet train --quick
    ds = spiking_ba2016_retrieval(trained="ba2016_retrieval", checkpoint=tmp_path, sequences=2, neurons=(10,),
                                  rates=(100.0,))
    assert ds.attrs["programmer"] == "linear" and ds.attrs["trained"] == "ba2016_retrieval"
    assert ds["relative_error"].values[0] < 0.15             # measured 0.092
    with pytest.raises(ValidationError, match="checkpoint"):
        spiking_ba2016_retrieval(trained="ba2016_retrieval")
