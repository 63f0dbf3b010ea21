"""``fwp.vjp``: backward engines agree, precision, memory, and input validation."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from grad_helpers import MAPS, RULE_CASES, leaves, make_case
from hypothesis import given, settings
from hypothesis import strategies as st

from plastinet.errors import DTypeError, NonFiniteError, RangeError, ShapeError, UnsupportedError
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, State, apply, vjp
from plastinet.fwp.gradients import chunkwise as chunkwise_backward

CHUNK_RULES = ["hebbian", "hebbian-normalized", "decayed", "decayed-per-key", "delta", "gated_delta"]


def _vjp(rule, inputs, dy, dW, form, chunk_size=4):
    return vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy, dW=dW, form=form,
               chunk_size=chunk_size, **{n: a for n, a in inputs.items() if n not in ("q", "k", "v")})


def _max_rel(a: dict, b: dict) -> float:
    worst = 0.0
    for name in a:
        xs = a[name] if isinstance(a[name], State) else (a[name],)
        ys = b[name] if isinstance(b[name], State) else (b[name],)
        for x, y in zip(xs, ys):
            if x is None:
                assert y is None
                continue
            worst = max(worst, float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)))
    return worst


@pytest.mark.parametrize("chunk_size", [1, 4, 5, 16])
@pytest.mark.parametrize("rule_name", CHUNK_RULES)
def test_chunkwise_matches_recurrent(rule_name, chunk_size):
    """T = 11 is not a multiple of the chunk; an initial state and dW are given."""
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["elu+1" if rule_name == "hebbian-normalized" else "identity/l2"])
    inputs, dy, dW = make_case(rule, per_key, B=2, T=11, d_k=4, d_v=3, seed=11)
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    for form in [f for f in ("chunkwise", "parallel") if f in rule.forms]:
        assert _max_rel(_vjp(rule, inputs, dy, dW, form, chunk_size), ref) < 1e-10, form


@pytest.mark.parametrize("map_name", ["identity", "elu+1", "relu", "softmax", "dpfp-1", "dpfp-3",
                                      "elu+1/sum", "dpfp-1/sum", "relu/l2", "dpfp-2/l2"])
@pytest.mark.parametrize("rule_name", CHUNK_RULES)
def test_chunkwise_matches_recurrent_every_map(rule_name, map_name):
    """Every feature map (the normalised Hebbian rule: positive maps), T = 13, chunks of 5."""
    make, per_key = RULE_CASES[rule_name]
    if rule_name == "hebbian-normalized" and not MAPS[map_name].positive:
        map_name = "elu+1"
    rule = make(MAPS[map_name])
    inputs, dy, dW = make_case(rule, per_key, B=2, T=13, d_k=4, d_v=3, seed=31)
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    for form in [f for f in ("chunkwise", "parallel") if f in rule.forms]:
        assert _max_rel(_vjp(rule, inputs, dy, dW, form, 5), ref) < 1e-10, form


@pytest.mark.parametrize("beta", ["above_one", "two"])
@pytest.mark.parametrize("rule_name", ["delta", "gated_delta"])
def test_chunkwise_matches_recurrent_beta_above_one(rule_name, beta):
    """``beta`` in (1, 2] with unit keys: ``I - beta k k^T`` has a negative eigenvalue."""
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["identity/l2"])
    inputs, dy, dW = make_case(rule, per_key, B=2, T=17, d_k=4, d_v=3, seed=32)
    shape = inputs["beta"].shape
    inputs["beta"] = (np.random.default_rng(33).uniform(1.05, 2.0, shape) if beta == "above_one"
                      else np.full(shape, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # UnstableUpdateWarning at beta = 2
        ref = _vjp(rule, inputs, dy, dW, "recurrent")
        for form in [f for f in ("chunkwise", "parallel") if f in rule.forms]:
            for chunk_size in (4, 16):
                assert _max_rel(_vjp(rule, inputs, dy, dW, form, chunk_size), ref) < 1e-10, (form, chunk_size)


def test_agreement_cases_cover_every_chunkwise_rule():
    """Every rule with a chunkwise (or parallel) form is compared with its recurrent form."""
    multi = {name for name, (make, _) in RULE_CASES.items() if set(make(MAPS["relu"]).forms) - {"recurrent"}}
    assert multi == set(CHUNK_RULES)


@pytest.mark.parametrize("rule_name", ["decayed", "decayed-per-key", "gated_delta", "delta"])
def test_long_chunks_match_recurrent(rule_name):
    """Chunks longer than the 16-step score blocks (per-key decay: off-diagonal blocks)."""
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["identity/l2"])
    inputs, dy, dW = make_case(rule, per_key, T=50, d_k=4, d_v=3, seed=21)
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    assert _max_rel(_vjp(rule, inputs, dy, dW, "chunkwise", 37), ref) < 1e-10


@settings(max_examples=max(5, settings().max_examples // 2))
@given(T=st.integers(1, 13), chunk_size=st.integers(1, 8), seed=st.integers(0, 2**16),
       rule_name=st.sampled_from(["delta", "gated_delta", "decayed", "hebbian"]))
def test_chunkwise_matches_recurrent_property(T, chunk_size, seed, rule_name):
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["identity/l2"])
    inputs, dy, dW = make_case(rule, per_key, T=T, seed=seed)
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    assert _max_rel(_vjp(rule, inputs, dy, dW, "chunkwise", chunk_size), ref) < 1e-10


@pytest.mark.parametrize("rule", [DecayedHebbian(), GatedDelta()], ids=["decayed", "gated_delta"])
def test_small_and_zero_gates(rule):
    """Gates just above MIN_GATE stay on the chunkwise path; zero gates use the recurrent one."""
    inputs, dy, dW = make_case(rule, False, T=10, seed=12)
    alpha = inputs["alpha"]
    alpha[..., 3] = 2 * chunkwise_backward.MIN_GATE
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    assert _max_rel(_vjp(rule, inputs, dy, dW, "chunkwise"), ref) < 1e-9
    alpha[..., 6] = 0.0
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    got = _vjp(rule, inputs, dy, dW, "chunkwise")
    assert _max_rel(got, ref) < 1e-12
    assert np.all(np.isfinite(got["alpha"]))


F32_CASES = [(r, f) for r in ("delta", "gated_delta", "decayed-per-key", "hebbian-normalized")
             for f in ("recurrent", "chunkwise")] + [("three_factor", "recurrent"), ("oja", "recurrent")]


@pytest.mark.parametrize("rule_name, form", F32_CASES)
def test_float32_agrees_with_float64(rule_name, form):
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["elu+1" if rule_name == "hebbian-normalized" else "identity/l2"])
    ref = _vjp(rule, *make_case(rule, per_key, T=40, d_k=8, d_v=8, seed=13), form, 16)
    got = _vjp(rule, *make_case(rule, per_key, T=40, d_k=8, d_v=8, seed=13, dtype=np.float32), form, 16)
    for name, arr in got.items():
        for x in (arr if isinstance(arr, State) else (arr,)):
            assert x is None or x.dtype == np.float32, name
    assert _max_rel(got, ref) < 1e-4


def test_returns_only_given_inputs():
    rule = GatedDelta(decay=0.9)
    inputs, dy, _ = make_case(rule, False, seed=14)
    g = vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy)
    assert sorted(g) == ["k", "q", "v"]
    g = vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy, alpha=inputs["alpha"],
            initial_state=State(inputs["initial_state"]))
    assert sorted(g) == ["alpha", "initial_state", "k", "q", "v"]
    assert isinstance(g["initial_state"], State) and g["initial_state"].normalizer is None
    per_key = DecayedHebbian()
    inputs, dy, _ = make_case(per_key, True, seed=15)
    g = vjp(per_key, inputs["q"], inputs["k"], inputs["v"], dy, alpha=inputs["alpha"], form="chunkwise")
    assert g["alpha"].shape == inputs["alpha"].shape


def test_dw_alone_is_the_final_state_gradient():
    """With ``dy = 0`` and ``dW = E_ij`` the gradient of v is d W_final[i, j] / d v."""
    rule = Hebbian()
    inputs, dy, _ = make_case(rule, False, T=4, seed=16)
    dW = np.zeros_like(inputs["initial_state"])
    dW[0, 0, 1, 2] = 1.0
    g = vjp(rule, inputs["q"], inputs["k"], inputs["v"], np.zeros_like(dy), beta=inputs["beta"], dW=dW)
    expected = np.zeros_like(inputs["v"])
    expected[0, 0, :, 1] = inputs["beta"][0, 0] * inputs["k"][0, 0, :, 2]
    np.testing.assert_allclose(g["v"], expected, rtol=1e-14, atol=0)


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("form", ["recurrent", "chunkwise"])
def test_memory_does_not_store_every_state(form):
    """Peak traced memory of a step stays far below that of T states."""
    T, d = 2048, 64
    rng = np.random.default_rng(17)
    k = rng.normal(size=(1, 1, T, d)) / np.sqrt(d)
    v = rng.normal(size=(1, 1, T, d))
    dy = rng.normal(size=(1, 1, T, d))
    step = _peak_bytes(lambda: vjp(Delta(), k, k, v, dy, beta=np.full((1, 1, T), 0.5), form=form))
    all_states = T * d * d * 8
    assert step < 0.2 * all_states, f"peak {step / 2**20:.1f} MiB vs all states {all_states / 2**20:.1f} MiB"


_BENCH_RULES = {"delta": (lambda fm: Delta(feature_map=fm), False),
                "gated_delta": (lambda fm: GatedDelta(feature_map=fm, decay=0.99), False),
                "decayed_hebbian": (lambda fm: DecayedHebbian(feature_map=fm, decay=0.99), False),
                "decayed_hebbian_per_key": (lambda fm: DecayedHebbian(feature_map=fm), True),
                "hebbian": (lambda fm: Hebbian(feature_map=fm), False)}


@pytest.mark.parametrize("name", list(_BENCH_RULES))
def test_training_step_memory_target(name):
    """The benchmark configuration (chunkwise, float32, H=4, d=64, T=8192, L2 keys): the
    peak of a training step (vjp) is within 1.8x the peak of the forward pass (issue 23: 2x,
    with a margin) for every rule -- also with per-key gates, whose gradient is a fourth
    output of the size of q. (Before the q and k gradients were written over the mapped q
    and k: 1.66-1.75x, and 1.99x with per-key gates.)"""
    T, H, d = 8192, 4, 64
    rng = np.random.default_rng(20)
    q, k, v, dy = (rng.normal(size=(1, H, T, d)).astype(np.float32) for _ in range(4))
    kw = {"beta": rng.uniform(0.1, 0.9, size=(1, H, T)).astype(np.float32)}
    make, per_key = _BENCH_RULES[name]
    rule = make(MAPS["identity/l2"])
    if per_key:
        kw["alpha"] = rng.uniform(0.9, 1.0, size=(1, H, T, d)).astype(np.float32)
    forward = _peak_bytes(lambda: apply(rule, q, k, v, form="chunkwise", **kw))
    step = _peak_bytes(lambda: vjp(rule, q, k, v, dy, form="chunkwise", **kw))
    assert step < 1.8 * forward, f"step {step / 2**20:.1f} MiB vs forward {forward / 2**20:.1f} MiB"


@pytest.mark.parametrize("native", ["1", "0"], ids=["compiled", "numpy"])
@pytest.mark.parametrize("T", [256, 250])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(_BENCH_RULES))
def test_gradients_written_over_mapped_features_are_identical(monkeypatch, name, dtype, T, native):
    """Where the mapped q and k are arrays of their own (L2 map), the chunkwise backward
    writes their gradients over them; the gradients are bit-identical to those formed in
    arrays of their own, and the caller's arrays are untouched (T = 250: a padded chunk)."""
    from plastinet.fwp import gradients

    monkeypatch.setenv("PLASTINET_NATIVE", native)
    make, per_key = _BENCH_RULES[name]
    rule = make(MAPS["identity/l2"])
    rng = np.random.default_rng(21)
    H, d = 3, 32
    q, k, v, dy = (rng.normal(size=(1, H, T, d)).astype(dtype) for _ in range(4))
    kw = {"beta": rng.uniform(0.1, 0.9, size=(1, H, T)).astype(dtype), "form": "chunkwise",
          "chunk_size": 16, "initial_state": rng.normal(size=(1, H, d, d)).astype(dtype),
          "dW": rng.normal(size=(1, H, d, d)).astype(dtype)}
    if per_key:
        kw["alpha"] = rng.uniform(0.5, 1.0, size=(1, H, T, d)).astype(dtype)
    copies = [x.copy() for x in (q, k, v, dy)]
    written = vjp(rule, q, k, v, dy, **kw)
    for x, c in zip((q, k, v, dy), copies):
        assert np.array_equal(x, c)
    monkeypatch.setattr(gradients, "_own_features", lambda p: False)
    fresh = vjp(rule, q, k, v, dy, **kw)
    for key in fresh:
        assert np.array_equal(written[key], fresh[key]), key


def test_per_key_gates_the_kernel_declines_keep_q_and_k():
    """Per-key gates whose product over a chunk falls below the compiled kernel's limit make
    it decline the call (the numpy engine then needs q and k intact): the backward does not
    write over them then, and agrees with the recurrent one."""
    from plastinet.fwp.gradients import chunkwise

    rule = DecayedHebbian(feature_map=MAPS["identity/l2"])
    inputs, dy, dW = make_case(rule, True, H=2, T=150, d_k=8, d_v=8, seed=22)
    inputs["alpha"][..., 70:90, :] = 0.3                      # 0.3^20 ~ 3e-11 within a chunk
    assert chunkwise._may_decline(inputs["alpha"].reshape(2, 150, 8), 64)
    ref = _vjp(rule, inputs, dy, dW, "recurrent")
    assert _max_rel(_vjp(rule, inputs, dy, dW, "chunkwise", chunk_size=64), ref) < 1e-10


def test_kernel_ratio_min_matches_the_c_source():
    """The backward's copy of the compiled kernels' RATIO_MIN (see chunkwise._may_decline)."""
    import re

    from plastinet.fwp.forms import native
    from plastinet.fwp.gradients import chunkwise

    found = re.search(r"#define RATIO_MIN ([0-9.eE+-]+)", native.SOURCE.read_text())
    assert found and float(found.group(1)) == chunkwise.KERNEL_RATIO_MIN


# -- bad inputs ----------------------------------------------------------------------------

def _delta_inputs():
    rule = Delta()
    inputs, dy, _ = make_case(rule, False, seed=18)
    return rule, inputs, dy


@pytest.mark.parametrize("bad, error, parameter", [
    (lambda dy: dy[..., :-1], ShapeError, "dy"),
    (lambda dy: dy[0], ShapeError, "dy"),
    (lambda dy: np.where(np.arange(dy.size).reshape(dy.shape) == 5, np.nan, dy), NonFiniteError, "dy"),
    (lambda dy: np.where(np.arange(dy.size).reshape(dy.shape) == 2, np.inf, dy), NonFiniteError, "dy"),
    (lambda dy: dy.astype(np.float32), DTypeError, "dy"),
    (lambda dy: dy.astype(int), DTypeError, "dy"),
])
def test_bad_dy(bad, error, parameter):
    rule, inputs, dy = _delta_inputs()
    with pytest.raises(error) as info:
        vjp(rule, inputs["q"], inputs["k"], inputs["v"], bad(dy))
    assert info.value.parameter == parameter
    assert parameter in str(info.value)


def test_bad_dw_and_options():
    rule, inputs, dy = _delta_inputs()
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    W0 = inputs["initial_state"]
    with pytest.raises(ShapeError, match="dW"):
        vjp(rule, q, k, v, dy, dW=W0[..., :-1])
    with pytest.raises(NonFiniteError, match="dW"):
        vjp(rule, q, k, v, dy, dW=np.full_like(W0, np.nan))
    with pytest.raises(UnsupportedError, match="dW.normalizer"):
        vjp(rule, q, k, v, dy, dW=State(W0, np.zeros(W0.shape[:2] + W0.shape[3:])))
    with pytest.raises(UnsupportedError, match="dW.eligibility"):
        vjp(rule, q, k, v, dy, dW=State(W0, None, W0))
    with pytest.raises(ShapeError, match="dW.normalizer"):
        vjp(Hebbian(normalize=True), q, k, v, dy, dW=State(W0, np.zeros(3)))
    with pytest.raises(RangeError, match="chunk_size"):
        vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=0)
    with pytest.raises(UnsupportedError, match="form"):
        vjp(rule, q, k, v, dy, form="attention")
    with pytest.raises(RangeError, match="beta"):
        vjp(rule, q, k, v, dy, beta=np.full(dy.shape[:3], 2.5))
    with pytest.raises(NonFiniteError, match="k"):
        vjp(rule, q, np.where(np.abs(k) > 0.3, np.nan, k), v, dy)


def test_every_input_has_a_gradient_of_its_shape():
    for rule_name, (make, per_key) in RULE_CASES.items():
        rule = make(MAPS["dpfp-2"])
        inputs, dy, dW = make_case(rule, per_key, seed=19)
        g = _vjp(rule, inputs, dy, dW, "recurrent")
        for name, field, arr in leaves(inputs):
            got = g[name] if field is None else getattr(g[name], field)
            assert got.shape == arr.shape, (rule_name, name, field)
