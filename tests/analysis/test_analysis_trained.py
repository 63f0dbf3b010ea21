"""Acceptance 2: the rule of a trained fast-weight layer is recovered from its plasticity trace."""

import numpy as np
import pytest

from plastinet.analysis import fit_rule, plasticity_trace
from plastinet.errors import ValidationError


def test_trained_delta_fwp_is_delta_like_gated_by_beta():
    training = pytest.importorskip("plastinet.training")
    from plastinet.tasks.retrieval import AssocRetrieval

    task = AssocRetrieval(n_keys=8, setting=2)
    model = training.AssocRetrievalModel(task, rule="delta", d_key=16, feature_map="elu+1")
    history = training.train(model, task, {"max_steps": 300, "eval_every": 100, "batch_size": 16, "lr": 3e-3},
                             progress=False)
    assert float(history.eval_loss[-1]) < 0.05           # it learned the task
    x, _ = model._inputs(task.sample(2, np.random.default_rng(5)))
    ds = plasticity_trace(model.layer, x)
    assert ds.attrs["source"] == "FastWeightLayer"
    fit = fit_rule(ds)
    assert fit.best == "modulated_delta"
    assert fit.classification.startswith("delta-like, gated by a third factor correlated with modulator")
    with pytest.raises(ValidationError, match="needs its inputs x"):
        plasticity_trace(model.layer)
