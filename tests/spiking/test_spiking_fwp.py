"""Spiking FWP converges to the rate FWP (plastinet.fwp.apply); Izhikevich distal reward."""

import numpy as np
import pytest

from plastinet.errors import UnsupportedError
from plastinet.experiments import protocols as P
from plastinet.experiments.fwp_bridge import from_fwp, run_fwp
from plastinet.fwp import Delta, Hebbian

SETTINGS = [(5, 50.0, 0.12), (20, 100.0, 0.24), (50, 200.0, 0.48)]


def _seq(seed=0, T=8, dk=4, dv=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, dk)), rng.normal(size=(T, dk)), rng.normal(size=(T, dv))


@pytest.mark.parametrize("rule,beta", [(Hebbian(feature_map="relu"), 0.5), (Delta(feature_map="softmax"), 0.8)])
def test_spiking_fwp_converges_to_rate(rule, beta):
    q, k, v = _seq()
    b = np.full(q.shape[0], beta)
    errs, corrs = [], []
    for n, r, phase in SETTINGS:
        ds = run_fwp(rule, q, k, v, b, neurons_per_feature=n, rate=r, phase=phase, seed=1)
        errs.append(ds.attrs["relative_error"])
        corrs.append(ds.attrs["correlation"])
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.06
    assert corrs[2] > 0.99


def test_from_fwp_rejects_negative_features():
    q, k, v = _seq()
    with pytest.raises(UnsupportedError, match="feature_map"):
        from_fwp(Hebbian(), q, k, v)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_izhikevich_rewarded_synapse_reaches_the_bound_for_every_seed(seed, izhikevich_reduced_outcome):
    # the reduced model's outcome does not depend on the particular spikes: every seed, the model's duration
    izhikevich_reduced_outcome(P.izhikevich2007(seed=seed))
