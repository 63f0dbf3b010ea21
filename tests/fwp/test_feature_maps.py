"""Feature maps phi: equations, shapes, positivity, normalisation, dtypes, exact gradients."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from fwp_helpers import budget, feature_maps
from hypothesis import given, settings
from hypothesis import strategies as st

from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.fwp import Delta, FeatureMap, Hebbian, as_feature_map

KINDS = ("identity", "elu+1", "relu", "softmax", "dpfp")


def dpfp_by_definition(x, nu):
    """Schlag et al. 2021: r = [relu(x), relu(-x)]; feature (j, i) = r_i r_{(i - j) mod 2d}."""
    d2 = 2 * x.shape[-1]
    r = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=-1)
    out = np.empty(x.shape[:-1] + (nu * d2,))
    for j in range(1, nu + 1):
        for i in range(d2):
            out[..., (j - 1) * d2 + i] = r[..., i] * r[..., (i - j) % d2]
    return out


def reference(kind, x, nu=1):
    if kind == "identity":
        return x
    if kind == "elu+1":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0))) + 1.0
    if kind == "relu":
        return np.where(x > 0, x, 0.0)
    if kind == "softmax":
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)
    return dpfp_by_definition(x, nu)


@pytest.mark.parametrize("kind,nu", [(kind, 1) for kind in KINDS] + [("dpfp", 2), ("dpfp", 3)])
def test_maps_match_their_equations(kind, nu):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4))
    fm = FeatureMap(kind, nu=nu)
    out = fm(x)
    assert out.shape == x.shape[:-1] + (fm.out_dim(4),)
    assert fm.out_dim(4) == (8 * nu if kind == "dpfp" else 4)
    assert np.max(np.abs(out - reference(kind, x, nu))) <= 1e-14
    if fm.positive:
        assert (out >= 0).all()
    if kind in ("elu+1", "softmax"):
        assert (out > 0).all()


def test_positivity_flags():
    assert [FeatureMap(kind).positive for kind in KINDS] == [False, True, True, True, True]


def test_dpfp_paper_example():
    """d = 1, nu = 1: r = [relu(x), relu(-x)] has one non-zero entry, and r_i r_{i-1} = 0."""
    x = np.array([[2.0], [-3.0]])
    assert np.array_equal(FeatureMap("dpfp")(x), np.zeros((2, 2)))
    x = np.array([1.0, -2.0])                               # r = [1, 0, 0, 2]
    assert np.array_equal(FeatureMap("dpfp")(x), [2.0, 0.0, 0.0, 0.0])   # [r0 r3, r1 r0, r2 r1, r3 r2]


def test_softmax_is_stable_and_shift_invariant():
    fm = FeatureMap("softmax")
    x = np.array([1000.0, 999.0, -1000.0])
    out = fm(x)
    assert np.isfinite(out).all() and abs(out.sum() - 1.0) <= 1e-15
    assert np.allclose(out, fm(x - 1000.0), rtol=0, atol=1e-15)
    assert np.allclose(out[:2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))], atol=1e-15)


def test_elu_plus_one_does_not_overflow_for_large_inputs():
    out = FeatureMap("elu+1")(np.array([800.0, -800.0]))
    assert np.array_equal(out, [801.0, 0.0]) or (out[0] == 801.0 and 0 <= out[1] < 1e-300)


@settings(max_examples=budget(40), deadline=None)
@given(fm=feature_maps(), d=st.integers(1, 6), seed=st.integers(0, 2**31),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_normalisation_and_dtype(fm, d, seed, dtype):
    x = (3 * np.random.default_rng(seed).normal(size=(7, d))).astype(dtype)
    out = fm(x)
    assert out.dtype == np.dtype(dtype) and out.shape == (7, fm.out_dim(d))
    assert np.isfinite(out).all()
    raw = FeatureMap(fm.kind, nu=fm.nu)(x).astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    if fm.normalize == "sum":
        s = raw.sum(-1)
        live = s > 1e-3
        assert np.allclose(out.sum(-1)[live], 1.0, atol=tol)
        assert (out.astype(np.float64).sum(-1) <= 1.0 + tol).all()     # eps only shrinks
    elif fm.normalize == "l2":
        n = np.linalg.norm(raw, axis=-1)
        live = n > 1e-3
        assert np.allclose(np.linalg.norm(out.astype(np.float64), axis=-1)[live], 1.0, atol=tol)
        assert (np.linalg.norm(out.astype(np.float64), axis=-1) <= 1.0 + tol).all()
    if fm.normalize is not None:                        # direction unchanged
        scale = raw.sum(-1, keepdims=True) if fm.normalize == "sum" else np.linalg.norm(raw, axis=-1, keepdims=True)
        live = scale[:, 0] > 0.1                        # eps = 1e-12 shifts tiny norms
        assert np.allclose((out * scale)[live], raw[live], rtol=10 * tol + 1e-9, atol=10 * tol)


def test_normalising_a_zero_vector_gives_zero_not_nan():
    x = -np.ones((2, 3))                              # relu(x) = 0
    for norm in ("sum", "l2"):
        assert np.array_equal(FeatureMap("relu", normalize=norm)(x), np.zeros((2, 3)))


@settings(max_examples=budget(40), deadline=None)
@given(fm=feature_maps(), d=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_vjp_matches_finite_differences(fm, d, seed):
    """The backward pass is exact: compare <g, J e_i> with central differences."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, d))
    x = np.where(x >= 0, x + 0.1, x - 0.1)                        # stay away from kinks at 0
    out, cache = fm.forward(x)
    g = rng.normal(size=out.shape)
    grad = fm.vjp(cache, g)
    assert grad.shape == x.shape
    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd[idx] = ((fm(x + e) - fm(x - e)) * g).sum() / (2 * h)
    assert np.allclose(grad, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kind", "normalize"), [("identity", "l2"), ("elu+1", "l2"), ("elu+1", "sum")])
def test_vjp_overwrite_writes_the_same_gradient_into_g(kind, normalize, monkeypatch):
    """``overwrite=True`` gives exactly the gradient of a plain call, also across several row
    blocks (the long-sequence path), in ``g``'s own buffer where the map is the identity."""
    from plastinet.fwp import feature_maps as fm_module
    monkeypatch.setattr(fm_module, "VJP_ROWS", 7)
    fm = FeatureMap(kind, normalize=normalize)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 20, 5)).astype(np.float32)
    out, cache = fm.forward(x)
    g = rng.normal(size=out.shape).astype(np.float32)
    want = fm.vjp(cache, g.copy())
    g_in = g.copy()
    got = fm.vjp(cache, g_in, overwrite=True)
    assert np.shares_memory(got, g_in) == (kind == "identity")
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(fm.vjp(cache, g), g)                  # default: g is kept


@pytest.mark.parametrize(("kind", "normalize"), [("identity", "l2"), ("relu", "l2"), ("relu", "sum")])
def test_vjp_of_a_normalised_map_on_non_contiguous_inputs(kind, normalize):
    """The normalisation's backward on inputs laid out in another order (heads split by a
    transpose, as the layer's query path does) equals that on a C-ordered copy, and the
    finite differences (its row blocks must write into the returned array)."""
    fm = FeatureMap(kind, normalize=normalize)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 3, 4)).swapaxes(1, 2)                  # (2, 3, 5, 4), not C-ordered
    g = rng.normal(size=x.shape)
    grad = fm.vjp(fm.forward(x)[1], g)
    np.testing.assert_array_equal(grad, fm.vjp(fm.forward(np.ascontiguousarray(x))[1], g))
    h = 1e-6
    e = rng.normal(size=x.shape)
    fd = ((fm(x + h * e) - fm(x - h * e)) * g).sum() / (2 * h)
    assert np.isclose((grad * e).sum(), fd, rtol=1e-6, atol=1e-8)


def test_as_feature_map_strings():
    assert as_feature_map("identity") == FeatureMap()
    assert as_feature_map(" ELU+1 ") == FeatureMap("elu+1")
    assert as_feature_map("dpfp") == FeatureMap("dpfp", nu=1)
    assert as_feature_map("dpfp-3") == FeatureMap("dpfp", nu=3)
    fm = FeatureMap("relu", normalize="l2")
    assert as_feature_map(fm) is fm
    for bad in ("relu-2", "softmax-1", "tanh", "dpfp-", "dpfp-x", "", 3, None):
        with pytest.raises(ValidationError) as info:
            as_feature_map(bad)
        assert info.value.parameter == "feature_map" and "dpfp-<nu>" in str(info.value)


def test_feature_map_parameters_are_validated():
    with pytest.raises(UnsupportedError) as info:
        FeatureMap("identity", normalize="sum")
    assert info.value.parameter == "normalize" and "l2" in str(info.value)
    with pytest.raises(UnsupportedError, match="kind"):
        FeatureMap("tanh")
    with pytest.raises(UnsupportedError, match="normalize"):
        FeatureMap("relu", normalize="max")
    for nu in (0, 1.5, -1):
        with pytest.raises(RangeError) as info:
            FeatureMap("dpfp", nu=nu)
        assert info.value.parameter == "nu"
    with pytest.raises(RangeError, match="eps"):
        FeatureMap("relu", normalize="l2", eps=-1e-3)


def test_cross_checks_also_apply_on_set():
    """Setting a parameter after construction cannot make an invalid map."""
    fm = FeatureMap("identity")
    with pytest.raises(UnsupportedError) as info:
        fm.normalize = "sum"
    assert info.value.parameter == "normalize"
    assert fm.normalize is None                          # unchanged after the failed set
    fm = FeatureMap("relu", normalize="sum")
    with pytest.raises(UnsupportedError):
        fm.kind = "identity"
    assert fm.kind == "relu"
    fm.normalize = "l2"
    fm.kind = "identity"                                 # valid combinations still work
    assert fm == FeatureMap("identity", normalize="l2")
    assert pickle.loads(pickle.dumps(fm)) == fm and copy.deepcopy(fm) == fm


def test_rules_take_feature_maps_by_name_or_object():
    assert Hebbian(feature_map="dpfp-2").phi == FeatureMap("dpfp", nu=2)
    assert Delta().phi == FeatureMap("identity")
    assert Hebbian(feature_map="elu+1").to_dict()["feature_map"]["kind"] == "elu+1"
