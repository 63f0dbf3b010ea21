"""plasticity_trace on rate FWP runs: consistency with the engine and rule classification."""

import numpy as np
import pytest
import xarray as xr

from plastinet.analysis import fit_rule
from plastinet.errors import ValidationError
from plastinet.experiments import plasticity_trace
from plastinet.fwp import ThreeFactor, apply


def _inputs(T=150, d_k=6, d_v=4, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(T, d_k))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    return rng, k, rng.normal(size=(T, d_v))


def test_trace_matches_the_engine():
    rng, k, v = _inputs()
    beta = rng.uniform(0.1, 1.0, len(k))
    ds = plasticity_trace("delta", k, k, v, beta=beta)
    _, W = apply("delta", k[None, None], k[None, None], v[None, None], beta=beta[None, None])
    np.testing.assert_allclose(ds.W[-1] + ds.dW[-1], W[0, 0], atol=1e-12)
    np.testing.assert_allclose(ds.W[1:], (ds.W + ds.dW)[:-1], atol=1e-12)
    np.testing.assert_allclose(ds.error, ds.post - np.einsum("tij,tj->ti", ds.W, ds.pre), atol=1e-12)


def test_delta_run_is_delta_like_gated_by_beta():
    rng, k, v = _inputs()
    fit = fit_rule(plasticity_trace("delta", k, k, v, beta=rng.uniform(0.1, 1.0, len(k))))
    assert fit.best == "modulated_delta"
    assert fit.classification.startswith("delta-like, gated by a third factor correlated with modulator")
    assert fit.r2 > 0.999


def test_hebbian_run_is_hebbian():
    _, k, v = _inputs()
    fit = fit_rule(plasticity_trace("hebbian", k, k, v))
    assert fit.best == "hebbian" and fit.classification == "Hebbian-like"
    np.testing.assert_allclose(float(fit.coefficients.sel(coefficient="eta")), 1.0, rtol=1e-8)


def test_three_factor_run_recovers_gamma():
    rng, k, v = _inputs()
    fit = fit_rule(plasticity_trace(ThreeFactor(gamma=0.8), k, k, v, modulator=rng.normal(size=len(k))))
    assert fit.best == "three_factor"
    np.testing.assert_allclose(float(fit.coefficients.sel(coefficient="gamma")), 0.8, rtol=1e-5)


def test_oja_and_decayed_runs():
    rng, k, v = _inputs()
    W0 = 0.3 * rng.normal(size=(1, 1, 4, 6))
    assert fit_rule(plasticity_trace("oja", k, k, v, beta=np.full(len(k), 0.05), initial_state=W0)).best == "oja"
    fit = fit_rule(plasticity_trace("decayed_hebbian", k, k, v, alpha=np.full(len(k), 0.9)))
    assert fit.best == "hebbian_decay"
    np.testing.assert_allclose(fit.coefficients.values[:2], [1.0, 0.1], rtol=1e-6)


def test_recording_form_and_errors():
    _, k, v = _inputs(T=30)
    run = plasticity_trace("hebbian", k, k, v)
    rec = xr.Dataset({"W": run.W, "pre": run.pre, "post": run.post})
    ds = plasticity_trace(rec)
    np.testing.assert_allclose(ds.dW, run.dW[:-1], atol=1e-12)
    with pytest.raises(ValidationError, match="missing post"):
        plasticity_trace(rec.drop_vars("post"))
    with pytest.raises(ValidationError, match="needs q, k and v"):
        plasticity_trace("delta", k=k)
    with pytest.raises(ValidationError, match="expected a rate rule"):
        plasticity_trace(42)


def test_expanding_run_warns_once():
    from plastinet.errors import UnstableUpdateWarning

    _, k, v = _inputs(T=20)
    with pytest.warns(UnstableUpdateWarning) as record:
        plasticity_trace("delta", 2 * k, 2 * k, v)
    assert sum(issubclass(w.category, UnstableUpdateWarning) for w in record) == 1


def _spiking_pair_run(seed=0, K=60, width=1.0, probes=True):
    spiking = pytest.importorskip("plastinet.spiking")
    rng = np.random.default_rng(seed)
    net = spiking.Network()
    pre = net.add(spiking.PoissonGroup(name="pre", n=10, rate=rng.uniform(5, 40, (K, 10)), rate_interval=width))
    post = net.add(spiking.PoissonGroup(name="post", n=4, rate=rng.uniform(5, 40, (K, 4)), rate_interval=width))
    net.add(spiking.Projection(name="syn", pre=pre, post=post, target="none", weight=0.0,
                               rule=spiking.PairSTDP(A_plus=1.0, A_minus=0.5, tau_plus=0.02, tau_minus=0.02)))
    if probes:
        net.add(spiking.SpikeProbe(name="a", population="pre"))
        net.add(spiking.SpikeProbe(name="b", population="post"))
    net.add(spiking.WeightProbe(name="W", projection="syn", sample_every=width))
    return spiking.run(net, K * width, seed=seed)


def test_spiking_run_gives_a_plasticity_trace_and_reads_as_kempter_hebbian():
    ds = _spiking_pair_run()
    tr = plasticity_trace(ds)                                # the only weight-probed projection
    assert tr.dW.dims == ("time", "post", "pre") and tr.sizes["time"] == 59
    assert tr.pre.attrs["units"] == "Hz" and tr.attrs["projection"] == "syn"
    # the binned rates are the spike counts of the event table
    t = ds.spike_time.values[ds.spike_population.values == "pre"]
    t0, t1 = float(ds.time[0]), float(ds.time[-1])                     # bins cover (t0, t1]
    assert float(tr.pre.sum()) * 1.0 == np.sum((t > t0 + 1e-9) & (t <= t1 + 1e-9))
    np.testing.assert_allclose(tr.W[1:], (tr.W + tr.dW)[:-1], atol=1e-12)
    fit = fit_rule(tr)
    assert fit.classification.startswith("Hebbian-like")
    # Kempter et al. 1999: E dW per bin = (A+ tau+ - A- tau-) x y width = 0.01 s x y
    assert float(fit.coefficients.sel(coefficient="eta")) == pytest.approx(0.01, rel=0.1)


def test_spiking_trace_says_what_is_missing():
    with pytest.raises(ValidationError, match="needs a SpikeProbe .* on the presynaptic population 'pre'"):
        plasticity_trace(_spiking_pair_run(K=3, probes=False))
    with pytest.raises(ValidationError, match="known projections"):
        plasticity_trace(_spiking_pair_run(K=3), projection="nope")
