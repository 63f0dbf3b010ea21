"""Acceptance 2: the rule of a trained fast-weight layer is recovered from its plasticity trace."""

import numpy as np
import pytest

from plastinet.analysis import fit_rule
from plastinet.errors import ValidationError
from plastinet.experiments import plasticity_trace


def _trained(rule, n_keys, setting, **layer):
    training = pytest.importorskip("plastinet.training")
    from plastinet.tasks.retrieval import AssocRetrieval

    task = AssocRetrieval(n_keys=n_keys, setting=setting)
    model = training.AssocRetrievalModel(task, rule=rule, d_key=16, **layer)
    history = training.train(model, task, {"max_steps": 300, "eval_every": 100, "batch_size": 16, "lr": 3e-3},
                             progress=False)
    x, _ = model._inputs(task.sample(2, np.random.default_rng(5)))
    return model, float(history.eval_loss[-1]), plasticity_trace(model.layer, x)


def test_trained_delta_fwp_is_delta_like_gated_by_beta():
    model, loss, ds = _trained("delta", 8, 2, feature_map="elu+1")
    assert loss < 0.05                                    # it learned the task (all-zero output: 0.5)
    assert ds.attrs["source"] == "FastWeightLayer"
    fit = fit_rule(ds)
    assert fit.best == "modulated_delta"
    assert fit.classification.startswith("delta-like, gated by a third factor correlated with modulator")
    assert "beta" in fit.classification                   # the third factor is the programmed beta
    gate = fit.gate_profile()
    assert np.corrcoef(gate.values, ds["modulator"].values)[0, 1] > 0.99
    with pytest.raises(ValidationError, match="needs its inputs x"):
        plasticity_trace(model.layer)


def test_trained_additive_fwp_is_hebbian():
    _, loss, ds = _trained("hebbian", 16, 1, feature_map="dpfp", feature_normalize="l2")
    assert loss < 0.1                                     # well below the all-zero loss 0.5
    fit = fit_rule(ds)
    assert fit.best in ("hebbian", "modulated_hebbian")
    assert fit.classification.startswith("Hebbian-like")
    assert fit.r2 > 0.99
    delta_like = [f for f in fit.fits if "delta" in f]
    assert all(fit.fits[f].bic > fit.fits[fit.best].bic + 10 for f in delta_like)
