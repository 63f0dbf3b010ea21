"""What a rule comparison can show: replayed traces say so, ties between families are reported."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from plastinet.analysis import fit_rule
from plastinet.errors import IndistinguishableWarning
from plastinet.experiments import plasticity_trace


def _inputs(seed: int = 0, T: int = 60):
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(T, 4))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    return k, rng.normal(size=(T, 3)), rng.uniform(0.1, 1.0, T)


def test_a_replayed_trace_states_that_its_own_family_fits_by_construction():
    k, v, beta = _inputs()
    trace = plasticity_trace("delta", k, k, v, beta=beta)
    assert trace.attrs["replayed"] == 1
    assert "R^2 = 1 by construction" in trace.attrs["caveat"] and "Delta" in trace.attrs["caveat"]
    fit = fit_rule(trace)
    assert fit.best == "modulated_delta" and fit.r2 == pytest.approx(1.0)
    assert fit.caveat == trace.attrs["caveat"]
    assert "caveat: " + trace.attrs["caveat"] in fit.summary()
    assert fit.table().attrs["caveat"] == trace.attrs["caveat"]


def test_families_the_data_cannot_tell_apart_are_named_and_warned_about():
    """A Hebbian rule with a programmed beta: three families reach R^2 = 1 and two lie within 10 in BIC."""
    k, v, beta = _inputs()
    with pytest.warns(IndistinguishableWarning, match="cannot discriminate 'modulated_hebbian' from 'three_factor'"):
        fit = fit_rule(plasticity_trace("hebbian", k, k, v, beta=beta))
    assert fit.indistinguishable == ["three_factor"]
    table = fit.table()
    assert all(table["r2"].sel(family=f) > 1 - 1e-3 for f in fit.r2_ties) and len(fit.r2_ties) == 3
    assert table.attrs["indistinguishable"] == "three_factor"
    assert "cannot discriminate" in fit.summary() and "cannot discriminate" in repr(fit)


def test_a_clear_winner_gives_no_warning():
    k, v, beta = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", IndistinguishableWarning)
        fit = fit_rule(plasticity_trace("delta", k, k, v, beta=beta))
    assert fit.indistinguishable == [] and fit.r2_ties == ["modulated_delta"]
    assert "cannot discriminate" not in fit.summary()
