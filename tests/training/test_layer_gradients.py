"""FastWeightLayer.backward against central finite differences (float64, T <= 20)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from plastinet.errors import ShapeError, ValidationError
from plastinet.fwp import FastWeightLayer, Hebbian

RULES = ["hebbian", "decayed_hebbian", "delta", "gated_delta", "oja", "three_factor"]
MAPS = ["elu+1", "dpfp-1"]
EPS = 1e-4      # step of the central difference, Richardson-extrapolated (error O(EPS^4))
TOL = 1e-6


def _data(layer, T=7, Tq=3, query=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, T, layer.config.d_in))
    xq = rng.normal(size=(2, Tq, layer.config.d_in)) if query else None
    out = layer.forward(x, xq)
    dy = rng.normal(size=out.y.shape)
    dyq = rng.normal(size=out.y_query.shape) if query else None
    return x, xq, dy, dyq


def _loss(layer, x, xq, dy, dyq):
    out = layer.forward(x, xq)
    total = float((out.y * dy).sum())
    return total + (float((out.y_query * dyq).sum()) if xq is not None else 0.0)


def _central(f, arr, d):
    """Richardson-extrapolated central difference of ``f`` along ``d`` (``arr`` restored)."""
    orig = arr.copy()

    def diff(h):
        arr[...] = orig + h * d
        lp = f()
        arr[...] = orig - h * d
        lm = f()
        arr[...] = orig
        return (lp - lm) / (2 * h)

    return (4 * diff(EPS / 2) - diff(EPS)) / 3


def _directional(layer, arr, grad, x, xq, dy, dyq, rng):
    """Relative error of <grad, d> against a central difference along a random d."""
    d = rng.normal(size=arr.shape)
    num = _central(lambda: _loss(layer, x, xq, dy, dyq), arr, d)
    ana = float((grad * d).sum())
    return abs(num - ana) / max(abs(num), abs(ana), 1e-8)


def _check_all(layer, query=True, T=7):
    x, xq, dy, dyq = _data(layer, T=T, query=query)
    g = layer.backward(layer.forward(x, xq), dy, dyq)
    assert g.params.keys() == layer.params.keys()
    rng = np.random.default_rng(1)
    errors = {name: _directional(layer, layer.params[name], g.params[name], x, xq, dy, dyq, rng)
              for name in layer.params}
    errors["x"] = _directional(layer, x, g.x, x, xq, dy, dyq, rng)
    if query:
        errors["query"] = _directional(layer, xq, g.query, x, xq, dy, dyq, rng)
    bad = {k: v for k, v in errors.items() if v > TOL}
    assert not bad, bad


def _layer(programmer, rule, fm, **kw):
    opts = dict(rule=rule, feature_map=fm, programmer=programmer, d_key=3, d_value=2, heads=2,
                hidden=5, seed=2)
    opts.update(kw)
    return FastWeightLayer(4, 3, **opts)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("fm", MAPS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("programmer", ["linear", "mlp"])
def test_feedforward_programmers(programmer, rule, fm):
    _check_all(_layer(programmer, rule, fm))


@pytest.mark.parametrize("fm", MAPS)
@pytest.mark.parametrize("rule", RULES)
def test_recurrent_programmer(rule, fm):
    _check_all(_layer("recurrent", rule, fm), query=False)


@pytest.mark.parametrize("fm", ["elu+1", "softmax", "identity"])
def test_srwm_programmer(fm):
    _check_all(FastWeightLayer(6, 3, rule="delta", feature_map=fm, programmer="srwm", heads=2,
                               d_value=2, init_scale=0.5, seed=3), query=False, T=12)


@pytest.mark.parametrize("form", ["recurrent", "parallel", "chunkwise"])
def test_forms_and_options(form):
    """Normalised Hebbian read-out, fixed input values, identity output, learned W_init."""
    rule = Hebbian(feature_map="elu+1", normalize=True)
    _check_all(FastWeightLayer(4, rule=rule, d_key=3, d_value=2, values="input",
                               output="identity", initial_state="learned", form=form,
                               chunk_size=3, seed=1))
    _check_all(_layer("linear", "delta", "dpfp-2", form=form, chunk_size=4, initial_state="learned"))


@pytest.mark.parametrize("programmer", ["linear", "recurrent", "srwm"])
def test_elementwise_central_differences(programmer):
    """Every single parameter entry, T = 20."""
    layer = (FastWeightLayer(4, 3, programmer="srwm", heads=2, d_value=2, feature_map="softmax",
                             init_scale=0.5)
             if programmer == "srwm" else _layer(programmer, "gated_delta", "elu+1"))
    query = programmer == "linear"
    x, xq, dy, dyq = _data(layer, T=20, query=query)
    g = layer.backward(layer.forward(x, xq), dy, dyq)
    for name, arr in layer.params.items():
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            unit = np.zeros_like(arr)
            unit[i] = 1.0
            num[i] = _central(lambda: _loss(layer, x, xq, dy, dyq), arr, unit)
        err = np.linalg.norm(num - g.params[name]) / max(np.linalg.norm(num), 1e-8)
        assert err < TOL, (name, err)


def test_backward_validates_cotangents():
    layer = FastWeightLayer(4, 3)
    x = np.zeros((2, 5, 4))
    out = layer.forward(x)
    with pytest.raises(ShapeError, match="dy"):
        layer.backward(out, np.zeros((2, 5, 2)))
    with pytest.raises(ValidationError, match="dy_query"):
        layer.backward(out, np.zeros((2, 5, 3)), np.zeros((2, 1, 3)))
