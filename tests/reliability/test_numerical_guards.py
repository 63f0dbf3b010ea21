"""Numerical guards: non-finite states and runaway rates are reported, with a raise/warn policy.

Every engine and backend takes ``on_numerical`` (``"raise"``, the default, or ``"warn"``);
the report names the population, projection or head, the variable and the time/step.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from reliability_helpers import song_net

from plastinet import simulate
from plastinet.errors import (
    NumericalError,
    NumericalWarning,
    RangeError,
    UnstableUpdateWarning,
    UnsupportedError,
    report_numerical,
)
from plastinet.experiments import load_model
from plastinet.fwp import Delta, Hebbian, apply
from plastinet.io.checkpoints import load_npz_checkpoint
from plastinet.spiking import (
    LIF,
    PES,
    Network,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    RateUnits,
    Simulator,
    SpikeGenerator,
    SpikeProbe,
    StateProbe,
    run,
)
from plastinet.spiking.engine import CHECKPOINT_FORMAT, CHECKPOINT_VERSION


def runaway_net(t_ref: float = 0.0) -> Network:
    """A LIF population driven so hard that it fires in every step (10 kHz at dt = 0.1 ms)."""
    net = Network()
    net.add(LIF(name="driven", n=3, t_ref=t_ref, i_ext=1e-6))
    net.add(SpikeProbe(name="sp", population="driven"))
    return net


def overflow_net() -> Network:
    """Three input spikes of 1.5e308 A overflow the synaptic current of the post neurons at t = 10 ms."""
    net = Network()
    g = net.add(SpikeGenerator(name="kick", n=1, indices=[0, 0, 0], times=[0.01, 0.0101, 0.0102]))
    post = net.add(LIF(name="post", n=2))
    net.add(Projection(name="huge", pre=g, post=post, target="I_e", weight=1.5e308))
    net.add(StateProbe(name="v", population="post", variable="v", sample_every=0.001))
    net.add(StateProbe(name="cur", population="post", variable="I_e", sample_every=0.001))
    return net


def diverging_pes_net() -> Network:
    """PES with a learning rate far beyond stability: the weights grow without bound."""
    rng = np.random.default_rng(0)
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=10, rate=100.0))
    out = net.add(RateUnits(name="out", n=2, tau=0.01))
    net.add(ProgrammedSignal(name="m", values=[1.0], interval=1.0))
    net.add(Projection(name="teacher", pre=inp, post=out, target="soma", weight=rng.uniform(0, 1, (2, 10))))
    net.add(Projection(name="learner", pre=inp, post=out, target="dend", weight=np.zeros((2, 10)),
                       rule=PES(eta=50.0, tau_pre=0.01, modulator="m")))
    return net


def test_runaway_rate_raises_naming_population_rate_and_time():
    with pytest.raises(NumericalError, match=r"runaway firing in population 'driven'.*1e\+04 Hz.*max_rate = 5000") as info:
        run(runaway_net(), 0.5)
    err = info.value
    assert err.where == "population 'driven', rate" and err.step == 1000 and err.time == pytest.approx(0.1)
    assert err.partial_result.attrs["partial"] == 1 and err.partial_result.attrs["t_stop"] == pytest.approx(0.1)


def test_runaway_rate_warns_once_and_completes_under_the_warn_policy():
    with pytest.warns(NumericalWarning, match="runaway firing in population 'driven'") as records:
        ds = run(runaway_net(), 0.5, on_numerical="warn")
    assert sum(issubclass(r.category, NumericalWarning) for r in records) == 1
    assert ds.attrs["partial"] == 0 and ds.sizes["spike"] == 3 * 5000


def test_max_rate_is_user_settable():
    net = runaway_net(t_ref=0.01)                        # ~ 99 Hz: a spike every 101 steps
    ds = run(net, 2.5)
    assert 95 < ds.sizes["spike"] / 7.5 < 100
    with pytest.raises(NumericalError, match="max_rate = 50 Hz"):  # judged over 2 s (100 spikes at 50 Hz)
        run(net, 2.5, max_rate="50 Hz")
    with pytest.raises(RangeError, match="max_rate"):
        run(net, 1.0, max_rate=-5.0)


def test_nonfinite_state_raises_naming_population_variable_and_time():
    with pytest.raises(NumericalError, match=r"non-finite values .* t = 0\.1001 s \(step 1001\) \(first seen by "
                                             r"probe 'cur' at t = 0\.011 s\): I_e of population 'post'") as info:
        run(overflow_net(), 0.5)
    assert info.value.where == "population 'post', I_e"
    assert 0.0102 <= info.value.time <= 0.11                 # overflow at 10.2 ms, detected by the next check


def test_nonfinite_weights_name_the_projection():
    with pytest.raises(NumericalError, match="w of projection 'learner'.*; dend of population 'out'") as info:
        run(diverging_pes_net(), 2.0, dt=1e-3)
    assert info.value.where == "projection 'learner', w"


def test_warn_policy_returns_the_nonfinite_result():
    with pytest.warns(NumericalWarning, match="I_e of population 'post'"):
        ds = run(overflow_net(), 0.2, on_numerical="warn")
    assert ds.attrs["partial"] == 0 and np.isfinite(ds["v"].values).all()   # v is reset; the current is not
    assert np.isinf(ds["cur"].isel(time=11).values).all() and np.isfinite(ds["cur"].isel(time=10).values).all()


def test_a_nonfinite_state_is_never_checkpointed(tmp_path):
    path = tmp_path / "run.npz"
    with pytest.raises(NumericalError):
        run(overflow_net(), 0.5, checkpoint_every=0.005, checkpoint_path=path)
    arrays, meta = load_npz_checkpoint(path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    assert meta["step"] == 100                                 # the last check before the overflow at 10.2 ms
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")


def test_guards_do_not_change_healthy_results():
    a = run(song_net(), 0.5, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # not a single warning on a healthy run
        b = run(song_net(), 0.5, seed=1, on_numerical="warn", max_rate="1 kHz")
    xr.testing.assert_identical(a, b)


@pytest.mark.parametrize("call", [
    lambda: Simulator(song_net(), on_numerical="ignore"),
    lambda: run(song_net(), 0.1, on_numerical=True),
    lambda: simulate(song_net(), 0.1, on_numerical="silent"),
    lambda: apply(Hebbian(), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 1)), on_numerical="log"),
], ids=["Simulator", "run", "simulate", "fwp.apply"])
def test_unknown_policy_is_refused_naming_on_numerical(call):
    with pytest.raises(UnsupportedError, match="on_numerical.*'raise', 'warn'"):
        call()


def test_fwp_apply_policy():
    q = np.full((1, 2, 6, 3), 1e200)
    v = np.full((1, 2, 6, 2), 1e200)
    with pytest.raises(NumericalError, match="step 0 .batch 0, head 0"):
        apply(Hebbian(), q, q, v)
    with pytest.warns(NumericalWarning, match="non-finite at step 0"):
        y, W = apply(Hebbian(), q, q, v, on_numerical="warn")
    assert not np.isfinite(y).all() and not np.isfinite(W).all()


@pytest.mark.parametrize("form", ["recurrent", "parallel", "chunkwise"])
def test_the_guard_reports_the_earliest_step_across_batches_and_heads(form):
    # head 0 of batch 0 overflows at step 5, head 1 of batch 1 at step 2 (and head 0 of batch 1
    # at step 2 too: a tie, reported as the lower index); index order would report batch 0
    q = np.ones((2, 2, 8, 2))
    k = np.ones((2, 2, 8, 2))
    v = np.ones((2, 2, 8, 1))
    v[0, 0, 5] = v[1, 1, 2] = v[1, 0, 2] = 1e308
    k[0, 0, 5] = k[1, 1, 2] = k[1, 0, 2] = 1e10
    with pytest.raises(NumericalError, match=r"non-finite at step 2 \(batch 1, head 0\)") as info:
        apply(Hebbian(), q, k, v, form=form)
    assert (info.value.step, info.value.where) == (2, "batch 1, head 0")
    v[1, 0, 2], k[1, 0, 2] = 1.0, 1.0                  # only head 1 of batch 1 at step 2
    with pytest.raises(NumericalError) as info:
        apply(Hebbian(), q, k, v, form=form)
    assert (info.value.step, info.value.where) == (2, "batch 1, head 1")


def test_expanding_delta_update_warns_and_its_divergence_raises():
    k = np.zeros((1, 1, 40, 2))
    k[..., 0] = 1e4                                    # beta ||k||^2 = 1.5e8 > 2: every step expands
    v = np.ones((1, 1, 40, 1))
    with pytest.warns(UnstableUpdateWarning, match="first at step 0, batch 0, head 0"):
        with pytest.raises(NumericalError, match=r"non-finite at step \d+ \(batch 0, head 0\)") as info:
            apply(Delta(), k, k, v, beta=np.full((1, 1, 40), 1.5))
    assert 0 < info.value.step < 40 and info.value.where == "batch 0, head 0"


def test_report_numerical_contract():
    with pytest.raises(NumericalError) as info:
        report_numerical("raise", "boom", step=3, where="population 'p', v", time=0.3)
    assert (info.value.step, info.value.where, info.value.time) == (3, "population 'p', v", 0.3)
    with pytest.warns(NumericalWarning, match="boom"):
        report_numerical("warn", "boom")


# -- brian2 backend ---------------------------------------------------------------------------
def _brian2():
    pytest.importorskip("brian2", reason="the brian2 backend needs brian2")


def test_brian2_backend_reports_nonfinite_states_naming_the_population():
    _brian2()
    with pytest.raises(NumericalError, match=r"brian2 backend: probe '(v|cur)' \('post'\).*t = 0\.011 s") as info:
        simulate(overflow_net(), 0.03, backend="brian2", seed=0)
    assert info.value.where.startswith("'post', probe") and info.value.time == pytest.approx(0.011)  # first bad sample
    with pytest.warns(NumericalWarning, match="brian2 backend"):
        ds = simulate(overflow_net(), 0.03, backend="brian2", seed=0, on_numerical="warn")
    assert ds.attrs["backend"] == "brian2"


def test_brian2_backend_reports_runaway_rates():
    _brian2()
    with pytest.raises(NumericalError, match="brian2 backend: runaway firing in population 'driven'"):
        simulate(runaway_net(), 0.05, backend="brian2", seed=0)
    ds = simulate(runaway_net(t_ref=0.01), 0.05, backend="brian2", seed=0)
    assert ds.attrs["backend"] == "brian2" and ds.sizes["spike"] > 0


# -- non-finite results ----------------------------------------------------------------------
DIVERGING_DELTA = ["rule.feature_map=elu+1", "experiment.beta=1.9", "experiment.n_items=[8, 96]",
                   "experiment.trials=2"]


def test_a_nonfinite_result_is_a_numerical_error_naming_the_variable():
    # beta ||phi(k)||^2 ~ 74: the memory diverges; the engine's states stay finite (1e114) but the
    # squared recall error overflows, and used to be returned (and saved) with 16 inf entries
    model = load_model("delta_fwp", DIVERGING_DELTA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableUpdateWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(NumericalError, match=r"non-finite value\(s\) in 'recall_error' \(first inf at "
                                                 r"n_items=96, trial=0\)") as info:
            model.run(progress=False)
        assert info.value.where == "variable 'recall_error'"
        with pytest.warns(NumericalWarning, match="recall_error"):
            ds = model.run(progress=False, on_numerical="warn")
    assert np.isinf(ds["recall_error"].sel(n_items=96)).all() and np.isfinite(ds["recall_error"].sel(n_items=8)).all()


@pytest.mark.parametrize("name", ["delta_fwp", "stdp_pairing", "assoc_retrieval"])
def test_every_kind_checks_its_result(monkeypatch, name):
    from plastinet.experiments import KINDS

    model = load_model(name, quick=True)
    kind = KINDS[model.kind]
    result = xr.Dataset({"x": ("time", [0.0, 1.0, np.nan])}, coords={"time": [0.0, 0.5, 1.0]})
    monkeypatch.setattr(type(kind), "run", lambda self, model, **options: result.copy())
    with pytest.raises(NumericalError, match=r"1 non-finite value\(s\) in 'x' \(first nan at time=1.0\)") as info:
        model.run(progress=False)
    assert (info.value.where, info.value.time) == ("variable 'x'", 1.0)
    with pytest.raises(UnsupportedError, match="on_numerical"):
        model.run(progress=False, on_numerical="ignore")
