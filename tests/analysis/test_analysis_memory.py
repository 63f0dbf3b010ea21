"""Capacity, forgetting and transition spectra against their analytic references."""

import numpy as np
import pytest

from plastinet.analysis import transition_spectrum
from plastinet.errors import UnsupportedError, ValidationError
from plastinet.experiments import capacity_curves, forgetting_curve
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian


def test_additive_crosstalk_matches_analytic_within_10_percent():
    ds = capacity_curves({"hebbian": Hebbian(), "delta": Delta()}, [8, 16, 32, 64], d_key=32, trials=48)
    sim = ds.recall_error.sel(rule="hebbian", key_distribution="gaussian", beta=1.0).mean("trial")
    rel = np.abs(sim / ds.crosstalk_reference - 1)
    assert float(rel.max()) < 0.10, rel.values
    # the delta rule interferes less than the additive rule and respects the rank bound
    delta = ds.recall_error.sel(rule="delta", key_distribution="gaussian", beta=1.0).mean("trial")
    assert np.all(delta.values < sim.values)
    assert np.all(delta.values >= ds.rank_bound.sel(rule="delta").values - 1e-12)


def test_orthonormal_keys_recall_exactly_and_sweep_dims():
    ds = capacity_curves(Hebbian(), [4, 16], d_key=16, trials=4, key_distribution=["orthonormal", "gaussian"],
                         beta=[0.5, 1.0])
    assert ds.recall_error.dims == ("rule", "key_distribution", "beta", "n_items", "trial")
    exact = ds.recall_error.sel(key_distribution="orthonormal", beta=1.0)
    assert float(exact.max()) < 1e-20


@pytest.mark.parametrize("rule,alpha", [(DecayedHebbian(), 0.9), (Hebbian(), 1.0)])
def test_forgetting_matches_analytic_within_10_percent(rule, alpha):
    ds = forgetting_curve(rule, 40, d_key=32, trials=400, alpha=alpha, seed=1)
    rel = np.abs(ds.recall_error.mean("trial") / ds.reference - 1)
    assert float(rel.max()) < 0.10, rel.values


def test_transition_spectrum_eigenvalues_and_regimes():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(6, 5))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    beta = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    ds = transition_spectrum(GatedDelta(), k, beta=beta, alpha=np.full(6, 0.8))
    for t in range(6):
        A = 0.8 * (np.eye(5) - beta[t] * np.outer(k[t], k[t]))
        eig = np.sort(np.linalg.eigvalsh(A))
        np.testing.assert_allclose(sorted([float(ds.eig_key[t])] + [0.8] * 4), eig, atol=1e-12)
    assert list(ds.regime.values) == ["contractive", "contractive", "contractive", "reflecting",
                                      "reflecting", "expanding"]   # 0.8 (1 - 2.5) = -1.2
    assert transition_spectrum(Delta(), k, beta=beta).regime.values[0] == "identity"
    assert transition_spectrum(Delta(), k, beta=np.full(6, 2.5)).regime.values[0] == "expanding"
    with pytest.raises(UnsupportedError, match="needs a Delta or GatedDelta"):
        transition_spectrum(Hebbian(), k)


def test_memory_inputs_are_checked():
    with pytest.raises(ValidationError, match="positive integer"):
        forgetting_curve(Hebbian(), 0)
    with pytest.raises(ValidationError, match="expected a rate rule"):
        capacity_curves([], [4])


@pytest.mark.parametrize("rule,alpha", [(Delta(), 1.0), (GatedDelta(), 0.9)])
def test_delta_forgetting_latest_item_exact_older_items_fade(rule, alpha):
    ds = forgetting_curve(rule, 40, d_key=32, trials=64, alpha=alpha, seed=2)
    err = ds.recall_error.mean("trial").values
    assert err[0] < 1e-20                       # beta = 1, unit keys: the last write is recalled exactly
    assert err[1] < err[10] < err[39]           # overwriting by later writes (interference grows with age)
    assert "reference" not in ds                 # no analytic reference is claimed for the delta rules


def test_optimal_linear_memory_attains_the_rank_bound_within_10_percent():
    ds = capacity_curves({"hebbian": Hebbian(), "delta": Delta()}, [16, 48, 64, 128], d_key=32,
                         key_distribution=["gaussian", "binary"])
    opt = ds.optimal_error.mean("trial")
    bound = ds.rank_bound
    above = ds.n_items > 32
    rel = np.abs(opt.where(above, drop=True) / bound.where(above, drop=True) - 1)
    assert float(rel.max()) < 0.10, rel.values
    assert float(opt.sel(n_items=16).max()) < 1e-12          # below capacity the best memory is exact
    # no rule beats the best single-matrix memory (beyond sampling noise of independent draws)
    rules = ds.recall_error.isel(beta=0).mean("trial")
    assert np.all(rules.values >= opt.values - 0.05)
