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


def test_a_plastinet_train_checkpoint_runs_with_a_spiking_memory(tmp_path):
    """`plastinet train assoc_retrieval` then `spiking_fwp_retrieval(checkpoint=...)`: the loaded model's
    rate accuracy is the trained model's own, and its memory runs in spikes."""
    import plastinet
    from plastinet.cli import main
    from plastinet.errors import ValidationError
    from plastinet.experiments.spiking_retrieval import programmed_sequence, spiking_fwp_retrieval

    out = tmp_path / "trained"
    assert main(["train", "assoc_retrieval", "--quick", "--quiet", "--set", "training.lr=3e-3",
                 "--out-dir", str(out)]) == 0
    ds = spiking_fwp_retrieval(checkpoint=out, sequences=1, neurons=[2], rates=[50.0], phase=0.12, seed=3)
    loaded = plastinet.load_trained(out)
    batch = loaded.task.sample(1, np.random.default_rng([3, 1]))
    seqs = programmed_sequence(loaded.model, batch)
    own = np.mean(np.concatenate([s["y_rate"].argmax(-1) == s["targets"] for s in seqs]))
    assert ds.attrs["accuracy_rate"] == own and ds.attrs["trained_model"] == "assoc_retrieval"
    assert ds.attrs["trained_steps"] == loaded.step and "train_loss" not in ds.attrs
    assert ds.attrs["queries"] == loaded.task.n_keys and 0 <= ds.attrs["accuracy_spiking"] <= 1
    with pytest.raises(ValidationError, match="checkpoint"):
        spiking_fwp_retrieval(checkpoint=_classifier_run(tmp_path), sequences=1, neurons=[1], rates=[10.0])


def _classifier_run(tmp_path):
    from plastinet.cli import main

    out = tmp_path / "classifier"
    assert main(["train", "ba2016_retrieval", "--quick", "--quiet", "--out-dir", str(out)]) == 0
    return out


def test_budget_dataset_finds_the_smallest_budget_reaching_a_fraction_of_the_rate_accuracy():
    from plastinet.experiments.spiking_retrieval import budget_dataset

    # budgets (neurons x rate x phase): 2*10*0.1 = 2, 1*10*0.1 = 1, 4*20*0.1 = 8, 2*20*0.1 = 4
    ds = budget_dataset([2, 1, 4, 2], [10.0, 10.0, 20.0, 20.0], 0.1, [0.5, 0.2, 0.99, 0.93], 1.0, {})
    np.testing.assert_allclose(ds["spikes_per_token"].values, [2.0, 1.0, 8.0, 4.0])
    assert ds.attrs["smallest_budget_90"] == pytest.approx(4.0)
    assert ds.attrs["smallest_budget_95"] == pytest.approx(8.0)
    assert ds.attrs["accuracy_spiking"] == 0.99 and ds.attrs["spikes_per_token"] == pytest.approx(8.0)
    never = budget_dataset([1], [10.0], 0.1, [0.1], 1.0, {})
    assert never.attrs["smallest_budget_90"] == -1.0
