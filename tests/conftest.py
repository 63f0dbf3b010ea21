"""Shared pytest configuration.

Hypothesis profiles, selected with the environment variable ``HYPOTHESIS_PROFILE``:

``default``
    Small example budgets, for every run (``max_examples=20``), derandomized: every run
    (CI included) draws the same examples, so the default suite is reproducible and a
    failure it reports is not a one-off draw.
``fuzz``
    Large budgets of fresh random examples for occasional deep runs (``max_examples=1000``),
    e.g. ``HYPOTHESIS_PROFILE=fuzz pytest tests/fwp``.

Tests that fix their own ``max_examples`` should scale it by
``settings().max_examples / 20`` so that the fuzz profile still enlarges them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("default", max_examples=20, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _izhikevich_fig1_outcome(ds):
    """Izhikevich (2007), Fig. 1: within about an hour the rewarded synapse (starting at 0) reaches
    the bound s = 4, while the other synapses stay low: when it gets there it is in the top 2 % of
    the E->E weights, their median is well below their start (1) and their mean has never risen above
    its start. (What happens after is not his claim: his own loop and this one let the rewarded
    synapse fluctuate with the others' drift; docs/spiking.md gives the measured hour.)"""
    assert ds.attrs["t_rewarded_max"] <= 3600.0
    W = ds["W"].values
    r = int(ds.attrs["rewarded_synapse"])
    reached = int(np.argmax(W[:, r] >= 3.9))
    assert W[reached, r] >= 3.9
    others = np.delete(W, r, axis=1)
    assert np.mean(others[reached] >= W[reached, r]) < 0.02
    assert np.median(others[reached]) < 0.6
    assert others.mean(axis=1).max() < 1.05


@pytest.fixture
def izhikevich_fig1_outcome():
    """The check of Izhikevich (2007)'s Fig. 1 outcome on an ``izhikevich2007_network`` hour, shared
    by every backend's slow test."""
    return _izhikevich_fig1_outcome


def _izhikevich_reduced_outcome(ds):
    """The reduced Izhikevich (2007) model (``izhikevich2007`` protocol, one LIF neuron): within the run the
    rewarded synapse reaches 95 % of the bound s = 4 while the other 99 stay near their start (mean
    within 0.15 of 1, at most 2 of them as strong), and at the end it is still near the bound and the
    others' mean near 1."""
    assert ds.attrs["t_rewarded_max"] <= float(ds.attrs["t_stop"]), ds.attrs["t_rewarded_max"]
    assert abs(ds.attrs["others_mean_at_max"] - 1.0) < 0.15, ds.attrs["others_mean_at_max"]
    W = ds["W"].values[:, 0, :]
    reached = int(np.argmax(W[:, 0] >= 0.95 * 4.0))
    assert np.sum(W[reached, 1:] >= W[reached, 0]) <= 2
    assert ds.attrs["rewarded_final"] > 3.5, ds.attrs["rewarded_final"]
    assert abs(ds.attrs["others_mean"] - 1.0) < 0.2, ds.attrs["others_mean"]


@pytest.fixture
def izhikevich_reduced_outcome():
    """The outcome check of the reduced ``izhikevich2007`` protocol, shared by every backend's slow test."""
    return _izhikevich_reduced_outcome
