"""plasticity_trace on rate FWP runs: consistency with the engine and rule classification."""

import numpy as np
import pytest
import xarray as xr

from plastinet.analysis import fit_rule, plasticity_trace
from plastinet.errors import ValidationError
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
