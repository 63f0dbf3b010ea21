"""A trained delta-rule FWP (plastinet.training) with its fast-weight memory in spikes."""

import numpy as np
import pytest

from plastinet.experiments import load_model


def _run(quick):
    return load_model("spiking_fwp_retrieval", quick=quick).run(progress=False)


def test_quick_spiking_retrieval_reaches_ninety_percent_of_the_rate_model():
    ds = _run(True)
    assert ds.attrs["accuracy_rate"] >= 0.9                      # measured 1.0
    assert ds.attrs["accuracy_spiking"] >= 0.9 * ds.attrs["accuracy_rate"]
    assert ds.attrs["spikes_per_token"] == pytest.approx(2 * 100.0 * 0.2)
    # more spikes per token: the spiking read-outs approach the trained rate model's
    assert np.all(np.diff(ds["relative_error"].values) < 0)
    assert ds["accuracy"].values[0] < ds["accuracy"].values[-1]


@pytest.mark.slow
def test_full_spiking_retrieval_reaches_ninety_five_percent_of_the_rate_model():
    ds = _run(False)
    assert ds.attrs["queries"] == 100
    assert ds.attrs["accuracy_spiking"] >= 0.95 * ds.attrs["accuracy_rate"]
    # measured: 0.95 x the rate accuracy from 20 spikes per token (2 neurons x 50 Hz x 0.2 s)
    assert 0 < ds.attrs["smallest_budget_95"] <= 40
