"""A ``plastinet train`` run loads back for analysis (``plastinet.load_trained``)."""

from __future__ import annotations

import numpy as np
import pytest

import plastinet
from plastinet.cli import main
from plastinet.errors import CheckpointError
from plastinet.experiments import load_model, plasticity_trace
from plastinet.training.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "assoc_retrieval", "--quick", "--quiet", "--set", "training.lr=3e-3",
                 "--out-dir", str(out)]) == 0
    return out


def test_load_trained_restores_the_checkpoint_and_reproduces_the_last_evaluation(trained_dir):
    trained = plastinet.load_trained(trained_dir)
    arrays, meta = read_checkpoint(trained_dir)
    assert trained.step == meta["step"] == 20 and trained.stop_reason == "max_steps"
    for name, param in trained.model.params.items():
        np.testing.assert_array_equal(param, arrays["param/" + name])
    untrained = load_model("assoc_retrieval", ["training.lr=3e-3"], quick=True).spec["layer"]
    assert any(not np.array_equal(p, untrained.params[n]) for n, p in trained.model.params.items())
    spec = trained.spec.spec["training"]                    # the trainer's fixed evaluation batch
    batch = trained.task.sample(spec.eval_size, np.random.default_rng([spec.seed, 2]))
    loss = trained.model.evaluate(batch)["loss"]
    assert loss == pytest.approx(float(trained.history["eval_loss"][-1]), rel=1e-12)


def test_a_loaded_layer_is_analysed_like_any_other(trained_dir):
    trained = plastinet.load_trained(trained_dir, "assoc_retrieval", ["training.lr=3e-3"], quick=True)
    x = trained.layer_inputs(2, seed=1)
    trace = plasticity_trace(trained.layer, x)
    assert trace["dW"].sizes["time"] == x.shape[1] and np.isfinite(trace["dW"]).all()


def test_another_models_checkpoint_or_an_unfinished_run_without_model_is_refused(trained_dir, tmp_path):
    with pytest.raises(CheckpointError, match="different model"):
        plastinet.load_trained(trained_dir, "assoc_retrieval", ["layer.d_key=32"], quick=True)
    (tmp_path / "checkpoint.npz").write_bytes((trained_dir / "checkpoint.npz").read_bytes())
    with pytest.raises(CheckpointError, match="pass model="):
        plastinet.load_trained(tmp_path)
