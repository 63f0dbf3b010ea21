"""FastWeightLayer.backward against finite differences (float64, T <= 20).

Two kinds of check, both with Richardson-extrapolated central differences (error
``O(EPS^4)``) and tolerance ``TOL = 1e-6``:

* **every combination** programmer (linear, MLP, recurrent, SRWM) x rule (Hebbian with and
  without the attention normaliser, DecayedHebbian, Delta, GatedDelta, Oja, ThreeFactor)
  x form (every form the rule has; the recurrent and SRWM programmers run step by step)
  x feature map (identity, ELU+1, ReLU, softmax, DPFP-1, DPFP-2, and explicit L2 / sum
  normalisation; SRWM: the size-preserving maps) -- one *equalised* direction per
  parameter array, per input and per query: ``d_i = s_i / max(|g_i|, 1e-3 max|g|)`` with
  random signs ``s_i``, so every entry of the gradient ``g`` contributes about equally to
  ``<g, d>`` (a wrong small entry is not drowned by the large ones). The error is
  ``|FD - <g, d>| / sum_i |g_i d_i|``.
* **entry by entry** for every programmer x rule (DPFP-1 keys, a learned initial state),
  the SRWM with every size-preserving map, and the layer options: every entry of every
  parameter, of ``x`` and of the queries; normwise ``||g - n|| / ||n||`` and
  componentwise ``max |g_i - n_i| / (|n_i| + 1e-3 ||n||_inf)`` relative errors per array.

The rule gradients themselves (every rule x form x feature map, every input) are checked
entry by entry in ``tests/fwp_grad/test_vjp_fd.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from plastinet.errors import ShapeError, ValidationError
from plastinet.fwp import FastWeightLayer, Hebbian

RULES = {"hebbian": "hebbian", "hebbian-normalized": Hebbian(normalize=True),
         "decayed_hebbian": "decayed_hebbian", "delta": "delta", "gated_delta": "gated_delta",
         "oja": "oja", "three_factor": "three_factor"}
#: name -> (feature_map, feature_normalize); "auto" sum-normalises positive maps (L2 for the
#: identity) for Delta, GatedDelta, Oja and leaves the Hebbian family unnormalised.
MAPS = {"identity": ("identity", "auto"), "elu+1": ("elu+1", "auto"), "relu": ("relu", "auto"),
        "softmax": ("softmax", "auto"), "dpfp-1": ("dpfp-1", "auto"), "dpfp-2": ("dpfp-2", "auto"),
        "relu/l2": ("relu", "l2"), "elu+1/sum": ("elu+1", "sum"), "dpfp-1/sum": ("dpfp-1", "sum")}
SRWM_MAPS = ["identity", "elu+1", "relu", "softmax", "relu/l2", "elu+1/sum"]   # size-preserving
EPS = 1e-4      # step of the central difference, Richardson-extrapolated (error O(EPS^4))
TOL = 1e-6
FLOOR = 1e-3    # entries below FLOOR x the array's largest are weighted (or compared) at that level
GLOBAL_FLOOR = 1e-4   # ... and below GLOBAL_FLOOR x the largest entry of any gradient of the case


def _layer(programmer, rule, map_name, **kw):
    fm, norm = MAPS[map_name]
    if programmer == "srwm":
        opts = dict(rule="delta", feature_map=fm, feature_normalize=norm, programmer="srwm",
                    heads=2, d_value=2, init_scale=0.5, seed=3)
        opts.update(kw)
        return FastWeightLayer(4, 3, **opts)
    opts = dict(rule=RULES[rule], feature_map=fm, feature_normalize=norm, programmer=programmer,
                d_key=3, d_value=2, heads=2, hidden=3, seed=2)
    opts.update(kw)
    return FastWeightLayer(3, 2, **opts)


def _data(layer, T=6, Tq=2, query=True, seed=0, B=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, layer.config.d_in))
    xq = rng.normal(size=(B, Tq, layer.config.d_in)) if query else None
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


def _equalised(f, arr, grad, rng, abs_floor=0.0):
    """Error of ``<grad, d>`` along an equalised direction (module docstring).

    ``abs_floor``: entries (and arrays) below it are weighted at that level.
    """
    c = max(FLOOR * np.abs(grad).max(), abs_floor)
    if c == 0:                           # no dependence at all: compare absolutely
        return abs(_central(f, arr, rng.normal(size=arr.shape)))
    d = rng.choice([-1.0, 1.0], size=arr.shape) * c / np.maximum(np.abs(grad), c)   # max |d_i| = 1
    return abs(_central(f, arr, d) - float((grad * d).sum())) / max(float(np.abs(grad * d).sum()), c)


def _entrywise(f, arr, grad, abs_floor=0.0):
    """(normwise, componentwise) relative errors of ``grad`` against every entry's FD.

    Arrays whose largest entry is below ``abs_floor`` are compared absolutely at that level.
    """
    num = np.zeros_like(arr)
    for i in np.ndindex(arr.shape):
        unit = np.zeros_like(arr)
        unit[i] = 1.0
        num[i] = _central(f, arr, unit)
    c = max(FLOOR * np.abs(num).max(), abs_floor)
    if c == 0:
        return (float(np.abs(grad).max()),) * 2
    diff = np.abs(grad - num)
    return (float(np.linalg.norm(grad - num) / max(np.linalg.norm(num), c / FLOOR)),
            float((diff / (np.abs(num) + c)).max()))


def _check(layer, check, query=True, T=6, B=2, inputs=None):
    """Check every parameter array, ``x`` and the queries with ``check`` ("equalised" or
    "entrywise"; ``inputs`` overrides it for ``x`` and the queries)."""
    x, xq, dy, dyq = _data(layer, T=T, query=query, B=B)
    g = layer.backward(layer.forward(x, xq), dy, dyq)
    assert g.params.keys() == layer.params.keys()
    f = lambda: _loss(layer, x, xq, dy, dyq)  # noqa: E731
    rng = np.random.default_rng(1)
    arrays = {name: (layer.params[name], g.params[name]) for name in layer.params}
    arrays["x"] = (x, g.x)
    if query:
        arrays["query"] = (xq, g.query)
    floor = GLOBAL_FLOOR * max(np.abs(ga).max() for _, ga in arrays.values())
    kinds = {name: (inputs or check) if name in ("x", "query") else check for name in arrays}
    errors = {name: (_equalised(f, a, ga, rng, floor) if kinds[name] == "equalised"
                     else max(_entrywise(f, a, ga, floor)))
              for name, (a, ga) in arrays.items()}
    bad = {k: v for k, v in errors.items() if v > TOL}
    assert not bad, bad
    return errors


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _combinations():
    out = []
    for programmer in ("linear", "mlp", "recurrent"):
        for rule in RULES:
            for map_name, (fm, _) in MAPS.items():
                if rule == "hebbian-normalized" and fm == "identity":
                    continue                 # the attention normaliser needs a positive map
                forms = (_layer("linear", rule, map_name).config.rule.forms
                         if programmer != "recurrent" else ("recurrent",))
                out += [(programmer, rule, form, map_name) for form in forms]
    out += [("srwm", "delta", "recurrent", m) for m in SRWM_MAPS]
    return out


COMBINATIONS = _combinations()


def test_combinations_cover_the_cross_product():
    assert {c[0] for c in COMBINATIONS} == {"linear", "mlp", "recurrent", "srwm"}
    for programmer in ("linear", "mlp"):
        got = {(r, f) for p, r, f, _ in COMBINATIONS if p == programmer}
        assert {r for r, _ in got} == set(RULES)
        assert {f for _, f in got} == {"recurrent", "parallel", "chunkwise"}
        assert len({m for p, _, _, m in COMBINATIONS if p == programmer}) == len(MAPS)


@pytest.mark.parametrize("programmer, rule, form, map_name", COMBINATIONS)
def test_every_combination(programmer, rule, form, map_name):
    kw = {} if programmer == "srwm" else {"form": form, "chunk_size": 4}
    layer = _layer(programmer, rule, map_name, **kw)
    assert layer.config.form == form or programmer in ("recurrent", "srwm")
    _check(layer, "equalised", query=programmer in ("linear", "mlp"))


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("programmer", ["linear", "mlp", "recurrent"])
def test_entrywise_programmer_and_rule(programmer, rule):
    """Every entry; a learned initial fast-weight matrix (its gradient included)."""
    layer = _layer(programmer, rule, "dpfp-1", initial_state="learned", chunk_size=4)
    assert "W_init" in layer.params
    _check(layer, "entrywise", query=programmer != "recurrent", T=5, B=1)


@pytest.mark.parametrize("map_name", SRWM_MAPS)
def test_entrywise_srwm(map_name):
    _check(_layer("srwm", "delta", map_name), "entrywise", query=False, T=8, B=1)


@pytest.mark.parametrize("form", ["recurrent", "parallel", "chunkwise"])
def test_forms_and_options(form):
    """Normalised Hebbian read-out, fixed input values, identity output, learned W_init."""
    rule = Hebbian(feature_map="elu+1", normalize=True)
    _check(FastWeightLayer(4, rule=rule, d_key=3, d_value=2, values="input",
                           output="identity", initial_state="learned", form=form,
                           chunk_size=3, seed=1), "entrywise")
    _check(_layer("linear", "delta", "dpfp-2", form=form, chunk_size=4, initial_state="learned",
                  beta_scale=2.0), "entrywise")


@pytest.mark.parametrize("programmer", ["linear", "recurrent", "srwm"])
def test_elementwise_central_differences_t20(programmer):
    """Every single parameter entry at T = 20 (beta up to 2 for the delta family)."""
    layer = (_layer("srwm", "delta", "softmax") if programmer == "srwm"
             else _layer(programmer, "gated_delta", "elu+1", chunk_size=6))
    _check(layer, "entrywise", query=programmer == "linear", T=20, B=1, inputs="equalised")


def test_error_measures_see_a_wrong_small_entry():
    """Both checks flag a 1e-4 relative error in one small entry of a gradient."""
    layer = _layer("linear", "delta", "dpfp-1")
    x, xq, dy, dyq = _data(layer)
    g = layer.backward(layer.forward(x, xq), dy, dyq)
    grad = g.params["W_k"].copy()
    small = np.unravel_index(np.argmin(np.where(np.abs(grad) > 1e-2 * np.abs(grad).max(),
                                                np.abs(grad), np.inf)), grad.shape)
    grad[small] *= 1 + 1e-4
    f = lambda: _loss(layer, x, xq, dy, dyq)  # noqa: E731
    assert _equalised(f, layer.params["W_k"], grad, np.random.default_rng(1)) > TOL
    assert _entrywise(f, layer.params["W_k"], grad)[1] > TOL
    assert _equalised(f, layer.params["W_k"], g.params["W_k"], np.random.default_rng(1)) < TOL


def test_backward_validates_cotangents():
    layer = FastWeightLayer(4, 3)
    x = np.zeros((2, 5, 4))
    out = layer.forward(x)
    with pytest.raises(ShapeError, match="dy"):
        layer.backward(out, np.zeros((2, 5, 2)))
    with pytest.raises(ValidationError, match="dy_query"):
        layer.backward(out, np.zeros((2, 5, 3)), np.zeros((2, 1, 3)))
