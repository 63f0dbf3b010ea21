"""fit_rule: planted-rule recovery, interval coverage, classification and input errors."""

import json

import numpy as np
import pytest
import xarray as xr

from plastinet.analysis import BI_POO, LIBRARY, OJA, fit_rule, synthetic_trace
from plastinet.analysis.biological import BCMRule
from plastinet.errors import UnsupportedError, ValidationError


@pytest.mark.parametrize("name", list(LIBRARY))
def test_planted_rule_is_recovered(name):
    rule = LIBRARY[name]
    ds = synthetic_trace(rule, seed=1)
    fit = fit_rule(ds, seed=0)
    assert fit.best == rule.family
    expected = json.loads(ds.attrs["expected"])
    c = fit.coefficients
    for coef, true in expected.items():
        sel = c.sel(coefficient=coef)
        assert float(sel.ci_low) <= true <= float(sel.ci_high), (coef, true, sel)
    assert fit.r2 > 0.85
    table = fit.table()
    assert table.family.values[0] == rule.family and table.delta_bic.values[0] == 0


def test_oja_is_classified_oja_like():
    fit = fit_rule(synthetic_trace(OJA, seed=3))
    assert fit.classification.startswith("Oja-like")


def test_modulated_rules_name_their_gate():
    fit = fit_rule(synthetic_trace(LIBRARY["dopamine_stdp"], seed=2))
    assert "gated by a third factor correlated with modulator" in fit.classification
    assert "eligibility time constant" in fit.classification


def test_bootstrap_intervals_cover_the_truth():
    """Over 40 independent planted data sets the 95 % intervals cover eta and theta ~95 %."""
    rule = BCMRule(theta=11.0)
    hits = []
    for seed in range(40):
        ds = synthetic_trace(rule, T=120, n_pre=4, n_post=3, seed=100 + seed)
        c = fit_rule(ds, families=["bcm"], seed=seed, n_boot=200).coefficients
        exp = json.loads(ds.attrs["expected"])
        hits.append([float(c.sel(coefficient=k).ci_low) <= exp[k] <= float(c.sel(coefficient=k).ci_high)
                     for k in ("eta", "theta")])
    coverage = np.mean(hits, axis=0)
    assert np.all(coverage >= 0.85) and np.all(coverage <= 1.0), coverage


def test_table_and_coefficients_are_xarray_with_units():
    fit = fit_rule(synthetic_trace(BI_POO, seed=0), families=["hebbian", "bcm", "polynomial"])
    t = fit.table()
    assert isinstance(t, xr.Dataset) and set(t.family.values) == {"hebbian", "bcm", "polynomial"}
    assert np.all(np.diff(t.bic.values) >= 0)
    c = fit.coefficients
    assert isinstance(c, xr.DataArray) and {"ci_low", "ci_high", "units"} <= set(c.coords)
    assert c.units.values[0] == "1 / (Hz^2)"


def _minimal(T=20):
    rng = np.random.default_rng(0)
    return xr.Dataset({"dW": (("time", "post", "pre"), rng.normal(size=(T, 2, 3))),
                       "pre": (("time", "pre"), rng.normal(size=(T, 3))),
                       "post": (("time", "post"), rng.normal(size=(T, 2)))})


def test_missing_variables_are_named():
    with pytest.raises(ValidationError, match=r"missing post.*needs dW \(time, post, pre\)"):
        fit_rule(_minimal().drop_vars("post"))
    with pytest.raises(ValidationError, match=r"family 'oja' needs W \('time', 'post', 'pre'\)"):
        fit_rule(_minimal(), families=["oja"])
    with pytest.raises(ValidationError, match="family 'modulated_delta' needs modulator.*error"):
        fit_rule(_minimal(), families=["modulated_delta"])
    with pytest.raises(ValidationError, match="expected an xarray.Dataset"):
        fit_rule(np.zeros((3, 3)))


def test_too_few_samples_and_bad_inputs():
    with pytest.raises(ValidationError, match="too few samples: needs at least 10 time steps, got 5"):
        fit_rule(_minimal(T=5))
    with pytest.raises(ValidationError, match="expected dims"):
        fit_rule(_minimal().assign(pre=(("time", "x"), np.zeros((20, 3)))))
    with pytest.raises(UnsupportedError, match="known families"):
        fit_rule(_minimal(), families=["stdp_magic"])
    bad = _minimal()
    bad["dW"][0, 0, 0] = np.nan
    with pytest.raises(ValidationError, match="finite"):
        fit_rule(bad)


def test_constant_modulator_skips_modulated_families():
    ds = _minimal().assign(modulator=("time", np.ones(20)))
    fit = fit_rule(ds)
    assert not any(f.family.modulated for f in fit.fits.values())
    assert "modulator is constant" in fit.table().attrs["notes"]


@pytest.mark.parametrize("name", ["dopamine_stdp", "btsp", "bcm", "oja"])
def test_noise_free_planted_rules_lie_inside_their_intervals(name):
    """Without noise the intervals shrink to the numerical resolution but still hold the truth."""
    rule = LIBRARY[name]
    ds = synthetic_trace(rule, noise=0.0, seed=4)
    fit = fit_rule(ds, families=[rule.family], seed=0)
    c = fit.coefficients
    for coef, true in json.loads(ds.attrs["expected"]).items():
        sel = c.sel(coefficient=coef)
        assert float(sel.ci_low) <= true <= float(sel.ci_high), (coef, true, sel.values)
        assert float(sel.ci_high - sel.ci_low) <= 1e-4 * abs(true)        # and they are tight
