"""infer_rule: planted rules recovered from activity (or choices) alone; bad data get named errors.

Recovery setting (stated): 6 trials of 50 steps, 4 inputs, 2 outputs, observation noise of
2 % of the activity's standard deviation, data seeds 0 and 1 (the first two, not chosen),
8 bootstrap resamples, candidate terms :data:`CANDIDATES` (plus the reward terms for the
modulated rule). Planted terms must lie inside their 95 % intervals and within 3 % of the
planted value; all other terms within 5 % of the largest planted coefficient. Over data seeds
0-19 the intervals cover 139 of 140 planted terms (slow test
:func:`test_interval_coverage_of_planted_rules`); the 3 % and 5 % bounds hold for 74 of the 80
fits (seeds 0-2 included).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from plastinet.analysis import infer_rule
from plastinet.analysis.rule_models import parse_term
from plastinet.errors import NonFiniteError, RangeError, ShapeError, UnsupportedError, ValidationError
from plastinet.experiments.rule_inference import (
    fwp_readouts,
    planted_activity,
    planted_bandit,
    recovery_grid,
    spiking_fwp_readouts,
)

CANDIDATES = ["1", "x", "y", "W", "x*y", "y*W", "x*y^2", "y^2*W"]
REWARD_TERMS = ["r*x*y", "r*W", "r*x", "r*y"]
RULES = [("oja", "oja"), ("hebbian_decay", "hebbian_decay"), ("bcm", "bcm"),
         ("modulated_hebbian", "modulated_hebbian")]


def _planted_terms(ds: xr.Dataset) -> dict[str, float]:
    return {"*".join(f"{s}^{p}" if p > 1 else s for s, p in zip("xyWrv", parse_term(t)) if p): c
            for t, c in json.loads(ds.attrs["planted"]).items()}


def _recovery_fit(rule: str, seed: int) -> tuple[xr.Dataset, object]:
    ds = planted_activity(rule, trials=6, steps=50, noise=0.02, seed=seed)
    terms = CANDIDATES + (REWARD_TERMS if "reward" in ds else [])
    return ds, infer_rule(ds, terms=terms, n_boot=8, seed=0)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rule, best", RULES)
def test_planted_rule_is_recovered_from_activity_alone(rule, best, seed):
    ds, fit = _recovery_fit(rule, seed)
    c = fit.coefficients
    planted = _planted_terms(ds)
    scale = max(abs(v) for v in planted.values())
    for name in c.coefficient.values:
        one = c.sel(coefficient=name)
        est, lo, hi = float(one), float(one.ci_low), float(one.ci_high)
        if name in planted:
            assert lo <= planted[name] <= hi, (name, planted[name], lo, hi)
            assert lo * hi > 0, (name, lo, hi)                                  # informative: excludes zero
            assert est == pytest.approx(planted[name], rel=0.03)
        else:
            assert abs(est) <= 0.05 * scale, (name, est)
    assert fit.best == best
    assert fit.r2 > 0.99
    assert fit.prediction["predicted"].dims == ("trial", "time", "post")


@pytest.mark.slow
def test_interval_coverage_of_planted_rules():
    """Empirical coverage of the 95 % intervals at the recovery setting over data seeds 0-19:
    the fraction of planted terms inside their intervals, pooled >= 95 % and >= 90 % per rule.
    Measured: 139/140 (99.3 %; Oja 40/40, decayed Hebbian 40/40, BCM 39/40, modulated 20/20).
    The former estimate +- 1.96 bootstrap SD covered 126/140 (90.0 %; BCM and decayed Hebbian
    35/40 each) and fails this test."""
    inside = {rule: [] for rule, _ in RULES}
    for rule, _ in RULES:
        for seed in range(20):
            ds, fit = _recovery_fit(rule, seed)
            c = fit.coefficients
            for name, value in _planted_terms(ds).items():
                one = c.sel(coefficient=name)
                inside[rule].append(float(one.ci_low) <= value <= float(one.ci_high))
    pooled = np.mean([v for hits in inside.values() for v in hits])
    assert pooled >= 0.95, {r: f"{sum(h)}/{len(h)}" for r, h in inside.items()}
    assert all(np.mean(hits) >= 0.9 for hits in inside.values()), {r: f"{sum(h)}/{len(h)}" for r, h in inside.items()}


def test_default_terms_recover_oja_from_a_single_recording():
    """No trial dim: the recording is cut into segments; the default Taylor library (degree 2, order 3)."""
    ds = planted_activity("oja", trials=1, steps=240, noise=0.02, seed=4).isel(trial=0)
    fit = infer_rule(ds, segments=6, n_boot=0)
    c = fit.coefficients
    assert c.sizes["coefficient"] == 17
    assert float(c.sel(coefficient="x*y")) == pytest.approx(0.02, rel=0.05)
    assert float(c.sel(coefficient="y^2*W")) == pytest.approx(-0.02, rel=0.05)
    others = c.drop_sel(coefficient=["x*y", "y^2*W"])
    assert float(np.abs(others).max()) < 0.05 * 0.02
    assert any("segments" in n for n in fit.notes)


def test_forgetting_rule_is_recovered_from_choices_alone():
    """Choices and rewards only (10 sessions of 150 trials, data seed 0); action values start at
    zero (naive agent); intervals conditional on the selected terms (``reselect=False``). Data
    seeds 0-4 all pass (measured; e.g. seed 0: ``r x y`` 0.46 [0.37, 0.56], ``W`` -0.097 [-0.103, -0.092])."""
    ds = planted_bandit(sessions=10, steps=150, seed=0)
    fit = infer_rule(ds, terms=["r*x*y", "x*y", "W", "r*W"], initial_weights="zero", n_boot=8, seed=0,
                     reselect=False)
    c = fit.coefficients
    for name, value in (("x*y*r", 0.5), ("W", -0.1)):
        assert float(c.ci_low.sel(coefficient=name)) <= value <= float(c.ci_high.sel(coefficient=name)), name
    assert float(c.sel(coefficient="W")) < 0                       # the forgetting term, with its sign
    assert fit.best == "modulated_hebbian_decay"
    assert set(fit.prediction["probability"].dims) == {"trial", "time", "action"}


def _good() -> xr.Dataset:
    return planted_activity("oja", trials=2, steps=20, seed=0)


@pytest.mark.parametrize("mutate, error, needle", [
    (lambda ds: ds.drop_vars("post"), ValidationError, "missing post or choice"),
    (lambda ds: ds.drop_vars("pre"), ValidationError, "missing pre"),
    (lambda ds: ds.assign(post=ds.post.where(ds.time != 3)), NonFiniteError, "finite"),
    (lambda ds: ds.assign(post=ds.post.isel(trial=0)), ShapeError, "expected dims ('trial', 'time', 'post')"),
    (lambda ds: ds.assign(post=ds.post.rename(post="unit")), ShapeError, "expected dims"),
    (lambda ds: ds.isel(time=slice(0, 3)), ValidationError, "too few time steps"),
    (lambda ds: ds.assign(reward=(("trial", "time", "post"), np.ones((2, 20, 2)))), ShapeError, "reward"),
    (lambda ds: 3.0, ValidationError, "xarray.Dataset"),
])
def test_bad_data_gets_a_named_error(mutate, error, needle):
    with pytest.raises(error, match=None) as info:
        infer_rule(mutate(_good()), n_boot=0, max_iter=2)
    assert needle in str(info.value)


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"family": "spline"}, UnsupportedError, "taylor"),
    ({"activation": "relu"}, UnsupportedError, "linear"),
    ({"terms": ["x*q"]}, ValidationError, "product of x, y, W, r, v"),
    ({"terms": ["x^3"]}, ValidationError, "at most 2"),
    ({"terms": ["r*x*y"]}, ValidationError, "no reward"),
    ({"terms": ["x*y", "y*x"]}, ValidationError, "distinct"),
    ({"l1": -1.0}, RangeError, "l1"),
    ({"degree": 3}, RangeError, "degree"),
])
def test_bad_options_get_a_named_error(kwargs, error, needle):
    with pytest.raises(error) as info:
        infer_rule(_good(), n_boot=0, max_iter=2, **kwargs)
    assert needle in str(info.value)


def test_choices_outside_the_actions_are_rejected():
    ds = planted_bandit(sessions=2, steps=10, seed=0)
    with pytest.raises(RangeError, match="0 .. 1"):
        infer_rule(ds.assign(choice=ds.choice + 1), n_actions=2, n_boot=0, max_iter=2)


def test_mlp_rule_fits_oja_activity_and_projects_to_oja_terms():
    ds = planted_activity("oja", trials=4, steps=40, noise=0.02, seed=6)
    fit = infer_rule(ds, family="mlp", terms=["x*y", "y^2*W", "W", "x*y^2"], hidden=6, n_boot=0, max_iter=300)
    assert fit.r2 > 0.99
    c = fit.coefficients
    assert float(c.sel(coefficient="x*y")) == pytest.approx(0.02, rel=0.25)
    assert float(c.sel(coefficient="y^2*W")) == pytest.approx(-0.02, rel=0.25)


BRIDGE_TERMS = ["x*y", "x*v", "r*x*y", "r*x*v", "W", "r*W", "y^2*W", "x"]


def test_delta_fwp_is_identified_from_its_inputs_and_readouts():
    """The memory's inputs (phi(k), v, beta) and read-outs W_(t-1) phi(k) only: the fitted rule is
    beta (v - y) x, the programmed delta rule gated by beta (coefficients +-1, everything else 0)."""
    rng = np.random.default_rng(0)
    k = rng.normal(size=(6, 40, 4))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    ds = fwp_readouts("delta", k=k, v=rng.normal(size=(6, 40, 3)), beta=rng.uniform(0.1, 1.0, (6, 40)))
    assert "W" not in ds and "dW" not in ds
    fit = infer_rule(ds, reward="beta", terms=BRIDGE_TERMS, initial_weights="zero", n_boot=8)
    c = fit.coefficients
    np.testing.assert_allclose(c.sel(coefficient=["x*r*v", "x*y*r"]).values, [1.0, -1.0], rtol=1e-4)
    assert float(np.abs(c.drop_sel(coefficient=["x*r*v", "x*y*r"])).max()) < 1e-4
    assert fit.best == "modulated_delta"


@pytest.mark.slow
def test_trained_delta_fwp_is_identified_from_its_inputs_and_readouts():
    training = pytest.importorskip("plastinet.training")
    from plastinet.tasks.retrieval import AssocRetrieval

    task = AssocRetrieval(n_keys=8, setting=2)
    model = training.AssocRetrievalModel(task, rule="delta", d_key=16, feature_map="elu+1")
    history = training.train(model, task, {"max_steps": 300, "eval_every": 100, "batch_size": 16, "lr": 3e-3},
                             progress=False)
    assert float(history.eval_loss[-1]) < 0.05
    x, _ = model._inputs(task.sample(6, np.random.default_rng(5)))
    fit = infer_rule(fwp_readouts(model.layer, x), reward="beta", terms=BRIDGE_TERMS, initial_weights="zero",
                     n_boot=8)
    c = fit.coefficients
    np.testing.assert_allclose(c.sel(coefficient=["x*r*v", "x*y*r"]).values, [1.0, -1.0], rtol=1e-4)
    assert fit.best == "modulated_delta"


@pytest.mark.slow
def test_recovery_error_falls_with_length_and_rises_with_noise():
    grid = recovery_grid("oja", noises=(0.01, 0.1), steps=(20, 80), seeds=(0, 1))
    e = grid.error.mean("seed")
    assert (e.isel(steps=-1) < e.isel(steps=0)).all()
    assert (e.isel(noise=0) < e.isel(noise=-1)).all()
    assert float(e.sel(noise=0.01, steps=80)) < 0.01
    assert grid.identified.sel(noise=0.01).all()


def test_plot_companion_draws_coefficients_and_prediction():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit = infer_rule(planted_activity("oja", trials=3, steps=20, seed=0), terms=["x*y", "y^2*W"], n_boot=3)
    fig, (a, b) = plt.subplots(1, 2)
    assert fit.plot(ax=a) is a and "(1)" in a.get_xlabel()
    assert fit.plot(ax=b, kind="prediction") is b and "(1)" in b.get_ylabel()
    plt.close(fig)
    ds = fit.to_dataset()
    assert all("units" in v.attrs and "long_name" in v.attrs for v in ds.variables.values())


@pytest.mark.parametrize("override, key", [("data.rule=\"stdp\"", "data.rule"), ("data.type=\"spikes\"", "data.type"),
                                           ("inference.terms=[\"x*q\"]", "inference.terms"),
                                           ("inference.family=\"spline\"", "inference.family"),
                                           ("data.noise=-1", "data.noise")])
def test_rule_inference_model_file_errors_name_the_key(override, key):
    from plastinet.errors import ModelFileError
    from plastinet.experiments import load_model

    with pytest.raises(ModelFileError) as info:
        load_model("rule_inference", [override])
    assert info.value.key == key


def test_rule_inference_model_result_has_units_and_the_planted_rule():
    from plastinet.experiments import load_model

    ds = load_model("rule_inference", quick=True).run(progress=False)
    assert ds.attrs["model_kind"] == "rule_inference" and ds.attrs["best"] == "oja"
    assert all("units" in v.attrs and "long_name" in v.attrs for v in ds.variables.values())
    assert np.isfinite(ds.planted).all()          # 0 where the planted rule has no such term
    planted = ds.planted.where(ds.planted != 0, drop=True)
    assert planted.size >= 1
    np.testing.assert_allclose(ds.coefficients.sel(coefficient=planted.coefficient), planted, rtol=0.05)
    others = ds.coefficients.where(ds.planted == 0, drop=True)
    assert float(np.abs(others).max()) <= 0.05 * float(np.abs(planted).max())


@pytest.mark.slow
def test_spiking_fwp_is_identified_from_its_rates():
    """The spiking three-factor realisation of a delta FWP (4 sequences of 12 writes, 20 Poisson neurons
    per key feature at 100 Hz): its key rates, values, beta and spiking read-outs give the beta-gated
    delta rule; the spiking read-out deviates from the rate read-out by ~13 %, the coefficients by < 15 %."""
    from plastinet.fwp import Delta, FeatureMap

    rng = np.random.default_rng(0)
    rule = Delta(feature_map=FeatureMap("elu+1"))
    k = rng.normal(size=(4, 13, 4)) * 0.5
    beta = rng.uniform(0.2, 0.8, (4, 12)) / (rule.phi(k[:, :12]) ** 2).sum(-1)
    ds = spiking_fwp_readouts(rule, k, rng.normal(size=(4, 12, 2)), beta)
    fit = infer_rule(ds, reward="beta", terms=BRIDGE_TERMS, initial_weights="zero", n_boot=8)
    c = fit.coefficients
    assert fit.best == "modulated_delta"
    assert abs(float(c.sel(coefficient="x*r*v")) - 1.0) < 0.15
    assert abs(float(c.sel(coefficient="x*y*r")) + 1.0) < 0.15
    assert float(np.abs(c.drop_sel(coefficient=["x*r*v", "x*y*r"])).max()) < 0.05
    assert fit.r2 > 0.95


def test_rule_inference_kind_runs_a_bandit_model_file(tmp_path):
    from plastinet.experiments import load_model

    path = tmp_path / "bandit.toml"
    path.write_text('schema_version = 1\nname = "bandit"\nkind = "rule_inference"\ndescription = "d"\nsource = "s"\n'
                    '[data]\ntype = "bandit"\nsessions = 6\nsteps = 100\nseed = 0\n'
                    '[inference]\nterms = ["r*x*y", "W"]\ninitial_weights = "zero"\nn_boot = 4\nreselect = false\n')
    ds = load_model(path).run(progress=False)
    assert ds.attrs["best"] == "modulated_hebbian_decay" and ds.attrs["planted_rule"] == "modulated_hebbian_decay"
    assert set(ds.probability.dims) == {"trial", "time", "action"}
    assert float(ds.coefficients.sel(coefficient="W")) < 0
