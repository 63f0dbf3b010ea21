"""Training toolkit: losses, optimisers, tasks, training loop, checkpoints, model files."""

from __future__ import annotations

import hashlib
import importlib
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from plastinet.errors import NonFiniteError, NumericalError, ValidationError
from plastinet.experiments import load_model
from plastinet.tasks import ArrayTask, AssocRetrieval, BaRetrieval
from plastinet.training import (
    SGD,
    Adam,
    AssocRetrievalModel,
    CheckpointError,
    SequenceRegressor,
    TokenClassifier,
    clip_grad_norm,
    softmax_cross_entropy,
    squared_error,
    train,
)
from plastinet.training.checkpoint import read_checkpoint

MODELS = Path(__file__).resolve().parents[2] / "models"
trainer_module = importlib.import_module("plastinet.training.trainer")


def _fd(f, x, d, h=1e-4):
    """Richardson-extrapolated central difference of ``f`` at ``x`` along ``d``."""
    c = lambda e: (f(x + e * d) - f(x - e * d)) / (2 * e)  # noqa: E731
    return (4 * c(h / 2) - c(h)) / 3


# -- losses ---------------------------------------------------------------------------------
def test_squared_error_matches_schlag_and_its_gradient():
    rng = np.random.default_rng(0)
    target = np.eye(5)[rng.integers(0, 5, size=(3, 4))]
    loss, _ = squared_error(np.zeros_like(target), target)
    assert loss == pytest.approx(0.5)                 # an all-zero prediction scores 0.5
    pred, mask = rng.normal(size=target.shape), (rng.random((3, 4)) > 0.3).astype(float)
    loss, grad = squared_error(pred, target, mask)
    d = rng.normal(size=pred.shape)
    assert _fd(lambda p: squared_error(p, target, mask)[0], pred, d) == pytest.approx((grad * d).sum(), rel=1e-9)


def test_cross_entropy_gradient():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(6, 10)), rng.integers(0, 10, size=6)
    loss, grad = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(-np.mean(logits[np.arange(6), labels]
                                          - np.log(np.exp(logits).sum(-1))))
    d = rng.normal(size=logits.shape)
    assert _fd(lambda z: softmax_cross_entropy(z, labels)[0], logits, d) == pytest.approx((grad * d).sum(), rel=1e-9)


# -- optimisers -----------------------------------------------------------------------------
def test_sgd_and_adam_steps():
    p = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, -4.0])}
    SGD(lr=0.1).step(p, g)
    np.testing.assert_allclose(p["w"], [0.95, -1.6])
    p = {"w": np.array([1.0, -2.0])}
    Adam(lr=0.01).step(p, g)                           # first bias-corrected step: lr * sign(g)
    np.testing.assert_allclose(p["w"], [0.99, -1.99], rtol=1e-6)


def test_adam_minimises_a_quadratic():
    p = {"w": np.array([3.0, -1.0])}
    opt = Adam(lr=0.1)
    for _ in range(500):
        opt.step(p, {"w": 2 * p["w"]})
    assert np.abs(p["w"]).max() < 1e-2


def test_clip_grad_norm():
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    clipped, norm = clip_grad_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose([clipped["a"][0], clipped["b"][0]], [0.6, 0.8])
    assert clip_grad_norm(g, 10.0)[0] is g


# -- tasks ----------------------------------------------------------------------------------
def test_assoc_retrieval_setting1():
    task = AssocRetrieval(n_keys=7, setting=1)
    b = task.sample(4, np.random.default_rng(0))
    assert b["keys"].shape == (4, 7)
    for i in range(4):
        assert sorted(b["keys"][i]) == list(range(7)) and sorted(b["values"][i]) == list(range(7))
        lookup = dict(zip(b["keys"][i], b["values"][i]))
        assert sorted(b["query_keys"][i]) == list(range(7))
        assert all(lookup[k] == t for k, t in zip(b["query_keys"][i], b["targets"][i]))
    again = task.sample(4, np.random.default_rng(0))
    assert all(np.array_equal(b[k], again[k]) for k in b)


def test_assoc_retrieval_setting2_targets_latest_value():
    task = AssocRetrieval(n_keys=6, setting=2, max_queries=4)
    b = task.sample(5, np.random.default_rng(1))
    assert b["keys"].shape == (5, 12) and b["query_keys"].shape == (5, 4)
    for i in range(5):
        latest = {}
        for k, v in zip(b["keys"][i], b["values"][i]):
            latest[k] = v
        n = int(b["mask"][i].sum())
        assert n == min(4, len(latest))
        assert all(latest[k] == t for k, t in zip(b["query_keys"][i, :n], b["targets"][i, :n]))


def test_ba_retrieval():
    task = BaRetrieval(n_pairs=4)
    b = task.sample(8, np.random.default_rng(2))
    for tokens, target in zip(b["tokens"], b["targets"]):
        text = BaRetrieval.decode(tokens)
        assert len(text) == 11 and text[8:10] == "??"
        pairs = dict(zip(text[0:8:2], text[1:8:2]))
        assert len(pairs) == 4 and pairs[text[-1]] == str(target)


# -- models ---------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["assoc", "ba"])
def test_model_gradients(which):
    if which == "assoc":
        task = AssocRetrieval(n_keys=5, setting=2)
        model = AssocRetrievalModel(task, rule="delta", feature_map="dpfp-1", d_key=4)
    else:
        task = BaRetrieval(n_pairs=2)
        model = TokenClassifier(task, rule="gated_delta", feature_map="elu+1", d_key=4, d_value=4)
    batch = task.sample(3, np.random.default_rng(0))
    loss, grads = model.loss_and_grads(batch)
    rng = np.random.default_rng(1)
    for name, p in model.params.items():
        d = rng.normal(size=p.shape)
        orig = p.copy()

        def f(value):
            p[...] = value
            return model.loss_and_grads(batch)[0]

        num = _fd(f, orig, d)
        p[...] = orig
        assert num == pytest.approx(float((grads[name] * d).sum()), rel=1e-6, abs=1e-10), name


# -- training loop --------------------------------------------------------------------------
def _easy_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 3))
    return ArrayTask(x, np.cumsum(x[..., :2], axis=1) * 0.3)


def _easy_model(task, seed=0):
    return SequenceRegressor(task, rule="hebbian", feature_map="identity", d_key=4, d_value=4,
                             seed=seed)


def test_loss_decreases_on_an_easy_task():
    task = _easy_task()
    hist = train(_easy_model(task), task, {"max_steps": 150, "eval_every": 50, "lr": 1e-2,
                                           "batch_size": 16}, progress=False)
    assert hist.eval_loss.values[-1] < 0.3 * hist.train_loss.values[0]
    assert hist.attrs["stop_reason"] == "max_steps" and hist.sizes["step"] == 150
    for var in hist.variables.values():
        assert "units" in var.attrs and "long_name" in var.attrs


def test_early_stopping_at_target_loss_and_patience():
    task = _easy_task()
    spec = {"max_steps": 400, "eval_every": 10, "lr": 1e-2, "batch_size": 16}
    full = train(_easy_model(task), task, spec, progress=False)
    target = float(full.eval_loss.values[5])          # reached at the 6th evaluation (step 60)
    first = int(np.argmax(full.eval_loss.values <= target))
    hist = train(_easy_model(task), task, {**spec, "target_loss": target}, progress=False)
    assert hist.attrs["stop_reason"] == "target_loss"
    assert hist.attrs["steps"] == 10 * (first + 1) == hist.sizes["step"]
    np.testing.assert_array_equal(hist.eval_loss.values, full.eval_loss.values[:first + 1])

    class Flat:                                        # a model that never improves
        params = {"w": np.zeros(1)}

        def loss_and_grads(self, batch):
            return 1.0, {"w": np.zeros(1)}

        def evaluate(self, batch):
            return {"loss": 1.0}

        def to_dict(self):
            return {"model": "Flat"}

    hist = train(Flat(), task, {"max_steps": 1000, "eval_every": 5, "patience": 3}, progress=False)
    assert hist.attrs["stop_reason"] == "patience"
    assert hist.attrs["steps"] == 5 * 4                # the first evaluation, then 3 without improvement


def test_cli_train_equals_the_python_call(tmp_path, capsys):
    """``plastinet train <model> --quick`` and ``load_model(...).run()`` give the same history."""
    from plastinet.cli import main
    from plastinet.io import load_result

    assert main(["train", "assoc_retrieval", "--quick", "--quiet", "--out-dir", str(tmp_path)]) == 0
    assert "checkpoints in" in capsys.readouterr().out
    cli = load_result(tmp_path / "history.nc")
    hist = load_model("assoc_retrieval", quick=True).run(progress=False)
    np.testing.assert_array_equal(cli.train_loss.values, hist.train_loss.values)
    np.testing.assert_array_equal(cli.eval_loss.values, hist.eval_loss.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "history.nc", "history.png"]


def test_resume_is_bit_identical(tmp_path):
    task = _easy_task()
    spec = {"max_steps": 40, "eval_every": 10, "lr": 1e-2, "batch_size": 8}
    full_model = _easy_model(task)
    full = train(full_model, task, spec, progress=False)
    part_model = _easy_model(task)
    train(part_model, task, {**spec, "max_steps": 20}, out_dir=tmp_path, progress=False)
    resumed_model = _easy_model(task)                 # fresh initialisation, then resume
    resumed = train(resumed_model, task, spec, out_dir=tmp_path, progress=False)
    for name, p in full_model.params.items():
        assert np.array_equal(p, resumed_model.params[name]), name
    assert np.array_equal(full.train_loss.values, resumed.train_loss.values)
    assert np.array_equal(full.eval_loss.values, resumed.eval_loss.values)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files left


def _digest(directory: Path) -> dict[str, str]:
    """SHA-256 of every file in ``directory`` (the checkpoint pair, and any leftover)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture
def saved(monkeypatch):
    """Record the checkpoint files' hashes right after every save of the trainer."""
    records = []
    real = trainer_module.save_checkpoint

    def spy(directory, arrays, meta):
        path = real(directory, arrays, meta)
        records.append((meta["step"], _digest(Path(directory))))
        return path

    monkeypatch.setattr(trainer_module, "save_checkpoint", spy)
    return records


def _assert_last_good_checkpoint_intact(directory, saved, error_step):
    """The files on disk are byte for byte the last checkpoint written before the error."""
    assert saved, "no checkpoint was written before the error"
    step, digest = saved[-1]
    assert step < error_step
    assert _digest(directory) == digest
    arrays, meta = read_checkpoint(directory)
    assert meta["step"] == step
    assert all(np.isfinite(a).all() for k, a in arrays.items() if not k.startswith("hist/"))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    task = _easy_task()
    train(_easy_model(task), task, {"max_steps": 10, "eval_every": 5}, out_dir=tmp_path,
          progress=False)
    before = _digest(tmp_path)
    other = SequenceRegressor(task, rule="delta", feature_map="identity", d_key=4, d_value=4)
    with pytest.raises(CheckpointError, match="different model") as info:
        train(other, task, {"max_steps": 20, "eval_every": 5}, out_dir=tmp_path, progress=False)
    assert "layer." in str(info.value) and "checkpoint has" in str(info.value)   # the first difference
    assert _digest(tmp_path) == before
    wider = SequenceRegressor(task, rule="hebbian", feature_map="identity", d_key=5, d_value=4)
    with pytest.raises(CheckpointError, match="different model"):
        train(wider, task, {"max_steps": 20, "eval_every": 5}, out_dir=tmp_path, progress=False)
    assert _digest(tmp_path) == before
    with pytest.raises(CheckpointError, match="training"):
        train(_easy_model(task), task, {"max_steps": 20, "eval_every": 5, "lr": 0.5},
              out_dir=tmp_path, progress=False)
    assert _digest(tmp_path) == before
    npz = tmp_path / "checkpoint.npz"
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2] ^= 0x01                       # one flipped bit in the arrays
    npz.write_bytes(bytes(blob))
    corrupted = _digest(tmp_path)
    with pytest.raises(CheckpointError, match="file|content"):
        train(_easy_model(task), task, {"max_steps": 20, "eval_every": 5}, out_dir=tmp_path,
              progress=False)
    assert _digest(tmp_path) == corrupted             # not "repaired" by overwriting either


def test_divergence_raises_and_keeps_the_last_good_checkpoint(tmp_path, saved):
    task = _easy_task()
    spec = {"optimizer": "sgd", "lr": 3.0, "max_steps": 200, "eval_every": 1,
            "diverge_factor": 50.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NumericalError, match="diverged at step") as info:
            train(_easy_model(task), task, spec, out_dir=tmp_path, progress=False)
    _assert_last_good_checkpoint_intact(tmp_path, saved, info.value.step)
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as data:
        assert data["hist/train_loss"].max() <= 50.0 * data["hist/train_loss"][0]


class _FailsAt:
    """Wrap a model: from call ``at`` on, ``loss_and_grads`` returns a NaN loss, infinite
    gradients, or gradients 1e4 times too large (a finite loss that then explodes)."""

    def __init__(self, model, at, what):
        self.model, self.at, self.what, self.calls = model, at, what, 0
        self.params, self.to_dict, self.evaluate = model.params, model.to_dict, model.evaluate

    def loss_and_grads(self, batch):
        self.calls += 1
        loss, grads = self.model.loss_and_grads(batch)
        if self.calls >= self.at:
            if self.what == "loss":
                loss = math.nan
            elif self.what == "grads":
                grads = {k: np.full_like(g, np.inf) for k, g in grads.items()}
            else:
                grads = {k: 1e4 * g for k, g in grads.items()}
        return loss, grads


@pytest.mark.parametrize("what", ["loss", "grads", "explode"])
def test_bad_step_keeps_the_last_good_checkpoint(tmp_path, saved, what):
    """A NaN loss, infinite gradients, or an exploding (finite) loss from step 13 on."""
    task = _easy_task()
    model = _FailsAt(_easy_model(task), at=13, what=what)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NumericalError, match="diverged at step 1[34]") as info:
            train(model, task, {"optimizer": "sgd", "lr": 0.01, "max_steps": 40, "eval_every": 5,
                                "diverge_factor": 50.0}, out_dir=tmp_path, progress=False)
    assert info.value.step == (14 if what == "explode" else 13)   # the exploded loss shows a step later
    assert [s for s, _ in saved] == [5, 10]
    _assert_last_good_checkpoint_intact(tmp_path, saved, info.value.step)
    resumed = _easy_model(task)                       # the kept checkpoint still resumes
    hist = train(resumed, task, {"optimizer": "sgd", "lr": 0.01, "max_steps": 12, "eval_every": 5,
                                 "diverge_factor": 50.0}, out_dir=tmp_path, progress=False)
    assert hist.sizes["step"] == 12


def test_nan_in_data_mid_run_keeps_the_last_good_checkpoint(tmp_path, saved):
    task = _easy_task()

    class TurnsBad:
        """The easy task, but its 8th training batch holds a NaN."""

        def __init__(self):
            self.calls = 0

        def sample(self, n, rng):
            self.calls += 1
            batch = task.sample(n, rng)
            if self.calls == 1 + 8:                  # the first call draws the evaluation set
                batch["x"] = batch["x"].copy()
                batch["x"][1, 2, 0] = np.nan
            return batch

    with pytest.raises(NonFiniteError, match=r"batch\.x.*\(1, 2, 0\)"):
        train(_easy_model(task), TurnsBad(), {"max_steps": 40, "eval_every": 3}, out_dir=tmp_path,
              progress=False)
    _assert_last_good_checkpoint_intact(tmp_path, saved, 8)
    assert [s for s, _ in saved] == [3, 6]


def test_nan_in_data_is_a_clear_error():
    x = np.zeros((4, 3, 2))
    x[2, 1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"x.*\(2, 1, 0\)"):
        ArrayTask(x, np.zeros((4, 3, 1)))

    class Broken:
        def sample(self, n, rng):
            return {"x": np.full((n, 3, 2), np.nan), "y": np.zeros((n, 3, 1))}

    model = SequenceRegressor(ArrayTask(np.zeros((4, 3, 2)), np.zeros((4, 3, 1))))
    with pytest.raises(NonFiniteError, match="batch.x"):
        train(model, Broken(), {"max_steps": 2}, progress=False)


# -- model files ----------------------------------------------------------------------------
def test_config_errors_name_the_key():
    with pytest.raises(ValidationError, match="training.lr"):
        load_model("assoc_retrieval", {"training.lr": -1.0})
    with pytest.raises(ValidationError, match="layer.colour"):
        load_model("assoc_retrieval", {"layer.colour": "red"})
    with pytest.raises(ValidationError, match="task.type"):
        load_model("assoc_retrieval", {"task.type": "copy"})


@pytest.mark.parametrize("name", ["assoc_retrieval", "assoc_retrieval_setting2", "ba2016_retrieval"])
def test_model_files_train(name, tmp_path):
    model = load_model(name, {"training.max_steps": 6, "training.eval_every": 3, "training.batch_size": 4})
    assert model.config["schema_version"] == 1 and model.kind == "training"
    hist = model.run(out_dir=tmp_path, progress=False)
    assert hist.sizes["step"] == 6 and hist.attrs["model_kind"] == "training"
    assert (tmp_path / "checkpoint.npz").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["assoc_retrieval", "assoc_retrieval_setting2", "ba2016_retrieval"])
def test_model_files_learn(name):
    """Default settings: each model file trains in well under a minute and learns."""
    hist = load_model(name).run(progress=False)
    assert hist.eval_loss.values[-1] < 0.5 * hist.eval_loss.values[0]
