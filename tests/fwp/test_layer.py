"""FastWeightLayer: programmers agree with the functional core and with reference loops."""

from __future__ import annotations

import numpy as np
import pytest

from plastinet.errors import DTypeError, NonFiniteError, ShapeError, UnsupportedError, ValidationError
from plastinet.fwp import FastWeightLayer, apply

RULES = ["hebbian", "decayed_hebbian", "delta", "gated_delta", "oja", "three_factor"]


def _x(B=2, T=9, d=6, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=(B, T, d)).astype(dtype)


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_linear_programmer_is_apply_of_its_projections():
    layer = FastWeightLayer(6, 3, rule="delta", feature_map="elu+1", heads=2, d_key=4, d_value=5,
                            seed=3)
    P, x = layer.params, _x()
    heads = lambda a: a.reshape(2, 9, 2, -1).transpose(0, 2, 1, 3)  # noqa: E731
    k, q, v = heads(x @ P["W_k"].T), heads(x @ P["W_q"].T), heads(x @ P["W_v"].T)
    beta = 2.0 * _sig(x @ P["W_beta"].T + P["b_beta"]).transpose(0, 2, 1)
    y_fw, _ = apply(layer.rule, q, k, v, beta=beta)
    u = y_fw.transpose(0, 2, 1, 3).reshape(2, 9, 10)
    np.testing.assert_allclose(layer(x), u @ P["W_out"].T + P["b_out"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("rule", ["hebbian", "decayed_hebbian", "delta", "gated_delta"])
def test_forms_agree(rule):
    x = _x(T=11)
    ys = [FastWeightLayer(6, 3, rule=rule, feature_map="dpfp-1", d_key=3, form=f, chunk_size=4)(x)
          for f in ("recurrent", "chunkwise")]
    np.testing.assert_allclose(ys[0], ys[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("rule", RULES)
def test_recurrent_programmer_without_recurrence_is_linear(rule):
    kw = dict(rule=rule, feature_map="elu+1", heads=2, d_key=3, d_value=4, seed=5)
    lin = FastWeightLayer(6, 3, programmer="linear", **kw)
    rec = FastWeightLayer(6, 3, programmer="recurrent", **kw)
    for name, value in rec.params.items():
        value[...] = 0.0 if name.startswith("R_") else lin.params[name]
    x = _x()
    np.testing.assert_allclose(rec(x), lin(x), rtol=0, atol=1e-10)


def test_recurrent_feeds_tanh_of_previous_readout():
    layer = FastWeightLayer(6, rule="hebbian", programmer="recurrent", d_key=3, d_value=4,
                            output="identity", seed=2)
    layer.params["R_k"][...] = np.random.default_rng(1).normal(size=layer.params["R_k"].shape)
    x = _x(T=4)
    u = layer(x)                                          # output="identity": u itself
    P = layer.params
    W = np.zeros((2, 4, 3))
    for t in range(4):
        r = np.tanh(u[:, t - 1]) if t else np.zeros((2, 4))
        k = x[:, t] @ P["W_k"].T + r @ P["R_k"].T
        q = x[:, t] @ P["W_q"].T + r @ P["R_q"].T
        v = x[:, t] @ P["W_v"].T + r @ P["R_v"].T
        b = _sig(x[:, t] @ P["W_beta"].T + P["b_beta"] + r @ P["R_beta"].T)
        W = W + b[:, :, None] * v[:, :, None] * k[:, None, :]
        np.testing.assert_allclose(u[:, t], (W @ q[:, :, None])[:, :, 0], rtol=0, atol=1e-12)


def test_srwm_matches_the_paper_equations():
    layer = FastWeightLayer(6, rule="delta", feature_map="softmax", programmer="srwm", heads=2,
                            d_value=2, output="identity", beta_scale=1.0, seed=4)
    x = _x(B=1, T=5)
    y = layer(x)
    for h in range(2):
        W = layer.params["W0"][h].copy()
        for t in range(5):
            xt = x[0, t, 3 * h:3 * h + 3]
            o = W @ xt
            yt, k, q, b = o[:2], o[2:5], o[5:8], o[8]
            np.testing.assert_allclose(y[0, t, 2 * h:2 * h + 2], yt, rtol=0, atol=1e-12)
            sk, sq = np.exp(k) / np.exp(k).sum(), np.exp(q) / np.exp(q).sum()
            W = W + _sig(b) * np.outer(W @ sk - W @ sq, sk)


def test_query_of_last_step_equals_last_readout():
    layer = FastWeightLayer(6, 3, rule="gated_delta", feature_map="dpfp-2", d_key=3, seed=1)
    x = _x()
    y, yq = layer(x, query=x[:, -1:])
    np.testing.assert_allclose(yq[:, 0], y[:, -1], rtol=0, atol=1e-12)


def test_seeded_initialisation():
    a, b = FastWeightLayer(6, 3, seed=7), FastWeightLayer(6, 3, seed=7)
    c = FastWeightLayer(6, 3, seed=8)
    assert a.params.keys() == b.params.keys()
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)
    assert not np.array_equal(a.params["W_k"], c.params["W_k"])
    assert FastWeightLayer(6, 3, rule="oja").params["W_init"].shape == (1, 16, 16)


@pytest.mark.parametrize("programmer", ["linear", "recurrent", "srwm"])
def test_run_dataset(programmer):
    layer = FastWeightLayer(6, 3, rule="delta", feature_map="elu+1", programmer=programmer,
                            heads=2, d_key=3, d_value=4)
    x = _x(T=9)
    ds = layer.run(x, sample_every=3, record=("W", "k", "q", "v", "beta", "u"))
    assert ds.y.dims == ("trial", "time", "output")
    assert ds.W.dims == ("trial", "sample_time", "head", "post", "pre")
    assert list(ds.sample_time.values) == [2, 5, 8]
    for var in ds.variables.values():
        assert "units" in var.attrs and "long_name" in var.attrs
    assert ds.attrs["backend"] == "numpy" and ds.attrs["programmer"] == programmer
    out = layer.forward(x)
    np.testing.assert_allclose(ds.y.values, out.y, rtol=0, atol=1e-10)   # sampling changes nothing
    final = out.cache["state"].W if programmer != "srwm" else out.cache["Ws"][-1]
    np.testing.assert_allclose(ds.W.values[:, -1], final, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ds.u.values, out.cache["u"][:, [2, 5, 8]], rtol=0, atol=1e-12)


def test_float32():
    layer = FastWeightLayer(6, 3, rule="delta", dtype="float32")
    y = layer(_x(dtype=np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, FastWeightLayer(6, 3, rule="delta")(_x()), atol=1e-4)


def test_input_validation_names_the_argument():
    layer = FastWeightLayer(6, 3)
    with pytest.raises(ShapeError, match="x"):
        layer(np.zeros((2, 5, 4)))
    with pytest.raises(ShapeError, match="x"):
        layer(np.zeros((5, 6)))
    bad = _x()
    bad[1, 3, 2] = np.nan
    with pytest.raises(NonFiniteError, match=r"x.*\(1, 3, 2\)"):
        layer(bad)
    with pytest.raises(DTypeError, match="x"):
        layer(np.zeros((2, 5, 6), dtype=np.int64))
    with pytest.raises(DTypeError, match="x"):
        layer(np.zeros((2, 5, 6), dtype=np.float32))
    with pytest.raises(ShapeError, match="query"):
        layer(_x(), query=np.zeros((2, 1, 5)))
    with pytest.raises(UnsupportedError, match="record"):
        layer.run(_x(), record=("alpha",))


def test_configuration_errors():
    with pytest.raises(UnsupportedError, match="programmer"):
        FastWeightLayer(6, 3, programmer="transformer")
    with pytest.raises(UnsupportedError, match="programmer"):
        FastWeightLayer(6, rule="hebbian", programmer="srwm")
    with pytest.raises(ValidationError, match="heads"):
        FastWeightLayer(6, programmer="srwm", heads=4)
    with pytest.raises(UnsupportedError, match="form"):
        FastWeightLayer(6, rule="oja", form="chunkwise")
    with pytest.raises(ValidationError, match="d_in"):
        FastWeightLayer(0)
