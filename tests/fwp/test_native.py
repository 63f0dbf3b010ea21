"""The compiled chunk loops (plastinet.fwp.forms.native) against the numpy engines.

The compiled loops are the default fast path of ``apply(rule, ..., form="chunkwise")`` and
of its backward for every chunkwise rule (Hebbian, DecayedHebbian with scalar and per-key
gates, Delta, GatedDelta); the numpy engines (``PLASTINET_NATIVE=0``, or no compiler) must
give the same results to rounding, and a missing compiler must never be more than slower.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fwp_helpers import FAMILIES, L2, assert_close, budget, make_case, max_abs, rel_err, rule_for
from hypothesis import given, settings
from hypothesis import strategies as st

from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, apply, vjp
from plastinet.fwp.forms import chunkwise, native

pytestmark = pytest.mark.filterwarnings("error::plastinet.errors.UnstableUpdateWarning")

#: one rule of each chunkwise kind: (rule, per-key gates)
RULES = {"delta": (Delta(feature_map=L2), False), "gated_delta": (GatedDelta(feature_map=L2), False),
         "hebbian": (Hebbian(), False), "decayed_hebbian": (DecayedHebbian(), False),
         "decayed_hebbian_per_key": (DecayedHebbian(), True)}


def _both_engines(monkeypatch, rule, q, k, v, chunk, **kw):
    out = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("PLASTINET_NATIVE", flag)
        out[flag] = apply(rule, q, k, v, form="chunkwise", chunk_size=chunk, **kw)
    monkeypatch.delenv("PLASTINET_NATIVE")
    return out["1"], out["0"]


def test_the_kernel_is_built_and_used_here(monkeypatch):
    # this machine has a C compiler and numpy's OpenBLAS: the fast path must really run
    monkeypatch.delenv("PLASTINET_NATIVE", raising=False)
    assert native.native_status() == "enabled"
    calls = []
    real = native.delta_kernel
    monkeypatch.setattr(chunkwise, "delta_kernel", lambda dtype: calls.append(dtype) or real(dtype))
    (q, k, v), kw = make_case(Delta(feature_map=L2), 1, 2, 3000, 16, 8, np.float32, seed=3)
    apply(Delta(feature_map=L2), q, k, v, form="chunkwise", **kw)
    assert calls == [np.float32] and real(np.float32) is not None and real(np.float64) is not None
    monkeypatch.setenv("PLASTINET_NATIVE", "0")
    assert real(np.float32) is None and native.native_status().startswith("disabled")


@pytest.mark.parametrize("name", ["gated_delta", "hebbian", "decayed_hebbian", "decayed_hebbian_per_key"])
def test_every_chunkwise_rule_runs_a_compiled_loop(monkeypatch, name):
    rule, per_key = RULES[name]
    kernel = "delta_kernel" if isinstance(rule, GatedDelta) else "hebbian_kernel"
    calls = []
    real = getattr(native, kernel)
    monkeypatch.setattr(chunkwise, kernel, lambda dtype: calls.append(dtype) or real(dtype))
    (q, k, v), kw = make_case(rule, 1, 2, 3000, 16, 8, np.float32, seed=3, per_key=per_key)
    apply(rule, q, k, v, form="chunkwise", **kw)
    assert calls == [np.float32]


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=budget(30), deadline=None)
@given(data=st.data())
def test_kernel_agrees_with_the_numpy_engine_property(family, data):
    rule = rule_for(family, data.draw)
    per_key = isinstance(rule, DecayedHebbian) and data.draw(st.booleans())
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    T, d_k, d_v = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 24)), data.draw(st.integers(1, 12))
    chunk = data.draw(st.integers(1, 96))
    (q, k, v), kw = make_case(rule, data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), T, d_k,
                              d_v, dtype, data.draw(st.integers(0, 2**32 - 1)),
                              gate_mode=data.draw(st.sampled_from(["uniform", "endpoints", "near_high"])),
                              per_key=per_key, with_state=data.draw(st.booleans()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunkwise, "F64_WORK", 0.0)             # float32 arithmetic even when small
        (y1, W1), (y0, W0) = _both_engines(mp, rule, q, k, v, chunk, **kw)
    ref_y, ref_W = apply(rule, q, k, v, **kw)                # the recurrent form
    for a, b, ref, name in ((y1, y0, ref_y, "y"), (W1, W0, ref_W, "W")):
        assert a.dtype == b.dtype == np.dtype(dtype) and a.shape == b.shape
        assert_close(a, ref, dtype, f"kernel {name}")
        assert_close(b, ref, dtype, f"numpy {name}")


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_long_sequence_with_state_and_ragged_tail(monkeypatch, dtype, name):
    rule, per_key = RULES[name]
    (q, k, v), kw = make_case(rule, 1, 4, 8192 + 37, 64, 48, dtype, seed=11, gate_mode="near_high",
                              per_key=per_key)
    (y1, W1), (y0, W0) = _both_engines(monkeypatch, rule, q, k, v, 32, **kw)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    assert rel_err(y1, y0) < tol and rel_err(W1, W0) < tol


def test_kernel_never_writes_into_the_initial_state(monkeypatch):
    # with d_k = 1 the transposed state is already contiguous: it must still be copied
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    rule = Delta(feature_map=L2)
    (q, k, v), kw = make_case(rule, 1, 2, 500, 1, 5, np.float64, seed=5)
    W0 = kw["initial_state"].copy()
    apply(rule, q, k, v, form="chunkwise", chunk_size=16, **kw)
    assert np.array_equal(kw["initial_state"], W0)


@pytest.mark.parametrize("kind", ["delta", "gated_delta", "hebbian", "per_key"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_reads_and_writes_the_state_in_the_callers_layout(monkeypatch, kind, dtype):
    """``W0``/``W`` (d_v x d_k per head; here d_k != d_v and neither a multiple of 8 nor both)
    give exactly the transposes of the state the kernel carries as ``ST``."""
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    rng = np.random.default_rng(2)
    N, n, C, d_k, d_v = 3, 4, 8, 16, 12
    Q, K = (rng.normal(size=(N, n, C, d_k)).astype(dtype) * 0.3 for _ in range(2))
    V = rng.normal(size=(N, n, C, d_v)).astype(dtype)
    b = rng.uniform(0, 1, (N, n, C)).astype(dtype)
    W0 = rng.normal(size=(N, d_v, d_k)).astype(dtype)
    gates = {"gated_delta": (N, n, C), "per_key": (N, n, C, d_k)}
    a = rng.uniform(0.9, 1, gates[kind]).astype(dtype) if kind in gates else None
    outs = []
    for caller in (False, True):
        ST = np.full((N, d_k, d_v), np.nan, dtype) if caller else np.ascontiguousarray(W0.swapaxes(1, 2))
        Y = np.empty_like(V)
        W = np.full_like(W0, np.nan)
        extra = {"W0": W0, "W": W} if caller else {}
        if kind in ("delta", "gated_delta"):
            native.delta_kernel(dtype)(Q, K, V, b, ST, Y, alpha=a, **extra)
        else:
            native.hebbian_kernel(dtype)(Q, K, V, b, a, ST, Y, **extra)
        outs.append((Y, W if caller else ST.swapaxes(1, 2)))
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])


@pytest.mark.parametrize("kind", ["delta", "gated_delta", "hebbian", "per_key"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_screen_records_the_largest_entries_and_gain(monkeypatch, kind, dtype):
    """``screen`` receives each head's largest ``|entry|`` of Q, K, V, the read-outs and the
    final state exactly, NaN or infinity where one is (the checks of apply's inputs and
    outputs, made by the loops), for the delta rules the largest beta ||k||^2, and the
    largest gate by its bits."""
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    rng = np.random.default_rng(3)
    N, n, C, d_k, d_v = 3, 4, 8, 16, 12
    Q, K = (rng.normal(size=(N, n, C, d_k)).astype(dtype) for _ in range(2))
    V = rng.normal(size=(N, n, C, d_v)).astype(dtype)
    b = rng.uniform(0, 1, (N, n, C)).astype(dtype)
    gates = {"gated_delta": (N, n, C), "per_key": (N, n, C, d_k)}
    a = rng.uniform(0.9, 1, gates[kind]).astype(dtype) if kind in gates else None
    delta = kind in ("delta", "gated_delta")

    def screen():
        found = np.zeros((N, native.SCREEN_COLS), dtype)
        ST, Y = np.zeros((N, d_k, d_v), dtype), np.empty_like(V)
        with np.errstate(invalid="ignore", over="ignore"):
            if delta:
                native.delta_kernel(dtype)(Q, K, V, b, ST, Y, alpha=a, screen=found)
            else:
                native.hebbian_kernel(dtype)(Q, K, V, b, a, ST, Y, screen=found)
        return found, Y, ST

    found, Y, ST = screen()
    largest = np.stack([np.abs(x).reshape(N, -1).max(axis=1) for x in (Q, K, V, Y, ST)], axis=1)
    np.testing.assert_array_equal(found[:, :5], largest)
    gain = (b * np.einsum("hnck,hnck->hnc", K.astype(float), K.astype(float))).reshape(N, -1).max(axis=1)
    if delta:          # from the diagonal of the chunk's K K^T (* gate ratios), to rounding
        np.testing.assert_allclose(found[:, 5], gain, rtol=50 * np.finfo(dtype).eps)
    else:
        np.testing.assert_array_equal(found[:, 5], 0)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    top = found[:, 6].copy().view(bits)             # the largest gate by its bits (sign kept)
    if a is None:
        np.testing.assert_array_equal(top, 0)
    else:
        np.testing.assert_array_equal(top, a.reshape(N, -1).view(bits).max(axis=1))
        a[1, 2, 3] = -a[1, 2, 3]                     # a negative gate: above every valid one
        assert screen()[0][1, 6].view(bits) > np.array(1, dtype).view(bits)
        a[1, 2, 3] = -a[1, 2, 3]
    Q[1, 3, 7, 15], K[2, 0, 0, 0], V[0, 2, 5, 11] = np.nan, -np.inf, np.inf
    found, _, _ = screen()
    assert np.isnan(found[1, 0]) and np.isinf(found[2, 1]) and np.isinf(found[0, 2])
    assert not np.isfinite(found[:, 3:5]).all(axis=1).any()       # every head's outputs saw it
    if delta:
        assert not np.isfinite(found[2, 5])
    found[1, 0] = found[2, 1] = found[0, 2] = 0
    largest[1, 0] = largest[2, 1] = largest[0, 2] = 0
    np.testing.assert_array_equal(found[:, :3], largest[:, :3])


def test_apply_leaves_its_output_checks_to_the_loops(monkeypatch):
    """A finite, contracting float32 chunkwise run makes no pass of its own over the outputs
    or keys (the loops' records stand in for them); an expanding key or a read-out that
    overflows still reaches apply's own checks, which warn or raise as without the loops."""
    from plastinet.errors import NumericalError, UnstableUpdateWarning
    from plastinet.fwp import functional
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    rng = np.random.default_rng(5)
    B, H, T, d = 1, 2, 2048, 32
    k = rng.normal(size=(B, H, T, d)).astype(np.float32)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    q, v = rng.normal(size=(B, H, T, d)).astype(np.float32), rng.normal(size=(B, H, T, d)).astype(np.float32)
    beta = rng.uniform(0, 1, (B, H, T)).astype(np.float32)
    alpha = rng.uniform(0.9, 1, (B, H, T)).astype(np.float32)
    calls = []
    monkeypatch.setattr(functional, "_warn_expanding", lambda p: calls.append("gain"))
    monkeypatch.setattr(functional, "_check_output", lambda *a, **kw: calls.append("outputs"))
    for rule, kw in ((Delta(), {}), (GatedDelta(), {"alpha": alpha}), (Hebbian(), {}),
                     (DecayedHebbian(), {"alpha": alpha}), (DecayedHebbian(), {"alpha": alpha[..., None] * np.ones(d, np.float32)})):
        apply(rule, q, k, v, beta=beta, form="chunkwise", **kw)
    assert calls == []
    monkeypatch.undo()
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    k2 = k.copy()
    k2[0, 1, 1000] *= 1.5                                              # beta ||k||^2 = 2.25
    b2 = beta.copy()
    b2[0, 1, 1000] = 1.0
    for rule, kw in ((Delta(), {}), (GatedDelta(), {"alpha": alpha})):
        with pytest.warns(UnstableUpdateWarning, match="step 1000, batch 0, head 1"):
            apply(rule, q, k2, v, beta=b2, form="chunkwise", **kw)
    v2 = v.copy()
    v2[0, 1, 700:] = 3e38                                              # the read-outs overflow
    for rule in (Delta(), Hebbian()):
        with pytest.raises(NumericalError, match="head 1"):
            apply(rule, q, k, v2, beta=np.ones_like(beta), form="chunkwise")


@pytest.mark.parametrize("kind", ["delta", "gated_delta", "hebbian", "per_key"])
def test_kernel_threads_split_heads_without_changing_a_bit(monkeypatch, kind):
    """The forward loops run their heads in ``threads`` groups on threads of their own (more
    threads than heads: one head each); every output is the same to the bit."""
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    rng = np.random.default_rng(8)
    N, n, C, d_k, d_v = 3, 5, 8, 16, 8
    Q, K = (rng.normal(size=(N, n, C, d_k)).astype(np.float32) for _ in range(2))
    V = rng.normal(size=(N, n, C, d_v)).astype(np.float32)
    b = rng.uniform(0, 1, (N, n, C)).astype(np.float32)
    gates = {"gated_delta": (N, n, C), "hebbian": None, "per_key": (N, n, C, d_k)}
    a = rng.uniform(0.9, 1, gates[kind]).astype(np.float32) if gates.get(kind) else None
    W0 = rng.normal(size=(N, d_v, d_k)).astype(np.float32)
    outs = []
    for threads in (1, 2, 5):
        Y, ST, W = np.empty_like(V), np.empty((N, d_k, d_v), np.float32), np.empty_like(W0)
        peak, found = np.zeros(N, np.float32), np.zeros((N, native.SCREEN_COLS), np.float32)
        if kind in ("delta", "gated_delta"):
            native.delta_kernel(np.float32)(Q, K, V, b, ST, Y, alpha=a, peak=peak, W0=W0, W=W,
                                            screen=found, threads=threads)
        else:
            native.hebbian_kernel(np.float32)(Q, K, V, b, a, ST, Y, peak=peak, W0=W0, W=W,
                                              screen=found, threads=threads)
        outs.append((Y, W, peak, found))
    for other in outs[1:]:
        for x, y in zip(outs[0], other):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="threads"):
        native.delta_kernel(np.float32)(Q, K, V, b, ST, Y, threads=0)


def test_kernel_checks_its_arrays(monkeypatch):
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    run = native.delta_kernel(np.float64)
    Q = np.zeros((1, 2, 4, 3))
    V = np.zeros((1, 2, 4, 5))
    ok = dict(Q=Q, K=Q.copy(), V=V, beta=np.zeros((1, 2, 4)), ST=np.zeros((1, 3, 5)), Y=V.copy())
    run(**ok)
    for name, bad in [("K", np.zeros((1, 2, 4, 2))), ("ST", np.zeros((1, 5, 3))),
                      ("V", np.zeros((1, 2, 4, 5), np.float32)), ("Y", np.zeros((1, 2, 5, 4)).swapaxes(2, 3))]:
        with pytest.raises(ValueError, match="delta kernel"):
            run(**dict(ok, **{name: bad}))


def test_without_a_compiler_the_numpy_engine_is_used_and_it_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("PLASTINET_CACHE_DIR", str(tmp_path))      # nothing cached
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    monkeypatch.setattr(native, "_loaded", None)
    for i, (name, (rule, per_key)) in enumerate(sorted(RULES.items())):
        (q, k, v), kw = make_case(rule, 1, 2, 3000, 16, 8, np.float64, seed=2, per_key=per_key)
        dy = np.random.default_rng(4).standard_normal(v.shape)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y, W = apply(rule, q, k, v, form="chunkwise", **kw)
            grads = vjp(rule, q, k, v, dy, form="chunkwise", **kw)
        said = [w for w in caught if "compiled chunk loops are unavailable" in str(w.message)]
        assert len(said) == (1 if i == 0 else 0), name                 # warns once per process
        ref_y, ref_W = apply(rule, q, k, v, **kw)
        assert max_abs(y, ref_y) < 1e-10 and max_abs(W, ref_W) < 1e-10, name
        ref = vjp(rule, q, k, v, dy, form="recurrent", **kw)
        assert grads.keys() == ref.keys()
        for key in ref:
            assert rel_err(grads[key], ref[key]) < 1e-9, (name, key)
    assert native.native_status().startswith("unavailable")
    assert native.delta_kernel(np.float64) is None and native.hebbian_kernel(np.float64) is None
    assert native.delta_backward_kernel(np.float64) is None and native.hebbian_backward_kernel(np.float64) is None


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("chunk", [32, 30, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_backward_gives_the_numpy_gradients(monkeypatch, dtype, chunk, name):
    # ragged tail (34 chunks of 30 steps); d_v = 40 > C: the state of every 2nd (C = 32, 30)
    # or 3rd chunk (C = 16; a ragged last group) kept, the others rebuilt; C = 16 <= d_k = 24:
    # the delta rules' backward reads the chunks' T that the forward recorded in the buffer
    # of dk (C > d_k: it forms them again)
    from plastinet.fwp.gradients import chunkwise as backward

    rule, per_key = RULES[name]
    kernel = "delta_backward_kernel" if isinstance(rule, (Delta, GatedDelta)) else "hebbian_backward_kernel"
    calls = []
    real = getattr(native, kernel)
    monkeypatch.setattr(backward, kernel, lambda dt: calls.append(dt) or real(dt))
    (q, k, v), kw = make_case(rule, 1, 3, 1000 + 13, 24, 40, dtype, seed=8, per_key=per_key)
    if "alpha" in kw:
        kw["alpha"] = np.random.default_rng(7).uniform(0.9, 1.0, kw["alpha"].shape).astype(dtype)
    dy = np.random.default_rng(9).standard_normal(v.shape).astype(dtype)
    grads = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("PLASTINET_NATIVE", flag)
        grads[flag] = vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=chunk, **kw)
    assert calls and all(c == np.dtype(dtype) for c in calls)
    assert grads["1"].keys() == grads["0"].keys()
    for key in grads["0"]:
        tol = 1e-11 if dtype == np.float64 else 1e-5
        assert rel_err(grads["1"][key], grads["0"][key]) < tol, key


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("d_v, chunk", [(40, 16), (16, 16), (20, 8)])
def test_compiled_backward_keeps_the_states_that_fit(monkeypatch, name, d_v, chunk):
    # the compiled backward keeps the state of every ceil(d_v / C)-th chunk in the buffer of
    # the q gradient: every 3rd (40 / 16; 64 chunks, a ragged last group), every one
    # (16 / 16: no rebuilding), every 3rd with a padded last chunk (20 / 8; 127 chunks)
    from plastinet.fwp.gradients import chunkwise as backward

    rule, per_key = RULES[name]
    (q, k, v), kw = make_case(rule, 1, 2, 1013, 24, d_v, np.float64, seed=41, per_key=per_key)
    if "alpha" in kw:
        kw["alpha"] = np.random.default_rng(3).uniform(0.9, 1.0, kw["alpha"].shape)
    dy = np.random.default_rng(4).standard_normal(v.shape)
    kept = []
    real = backward._states_in
    monkeypatch.setattr(backward, "_states_in", lambda g, ns, dv: kept.append(ns) or real(g, ns, dv))
    grads = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("PLASTINET_NATIVE", flag)
        grads[flag] = vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=chunk, **kw)
    n = -(-1013 // chunk)
    assert kept == [-(-n // -(-d_v // chunk))] * 2                      # one call per head
    for key in grads["0"]:
        assert rel_err(grads["1"][key], grads["0"][key]) < 1e-11, key


@pytest.mark.parametrize("name", ["hebbian", "decayed_hebbian_per_key", "delta", "gated_delta",
                                  "delta/identity", "gated_delta/identity"])
def test_compiled_backward_states_in_their_own_array(monkeypatch, name):
    # states of d_v = 40 numbers per key do not fit into the q gradient of one group of
    # chunks (STATE_EVERY * C = 8 * 4 < 40): the kernel keeps them in an array of their own;
    # for all heads in one call where q and k are the caller's (the identity map: unit keys
    # given), one head at a time where their gradients are written over the mapped q and k
    from plastinet.fwp.gradients import chunkwise as backward

    monkeypatch.setattr(backward, "STATE_EVERY", 8)
    base, _, identity = name.partition("/")
    rule, per_key = RULES[base]
    if identity:
        rule = type(rule)()
    (q, k, v), kw = make_case(rule, 1, 3, 203, 12, 40, np.float64, seed=31, per_key=per_key)
    if identity:
        q, k = (x / np.linalg.norm(x, axis=-1, keepdims=True) for x in (q, k))
    if "alpha" in kw:
        kw["alpha"] = np.random.default_rng(2).uniform(0.9, 1.0, kw["alpha"].shape)
    dy = np.random.default_rng(6).standard_normal(v.shape)
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    grads = vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=4, **kw)
    ref = vjp(rule, q, k, v, dy, form="recurrent", **kw)
    for key in ref:
        assert rel_err(grads[key], ref[key]) < 1e-9, key


@pytest.mark.parametrize("low, high, compiled", [(0.95, 1.0, True), (1e-3, 0.3, False)],
                         ids=["ratio", "steep"])
def test_per_key_gates_both_ways(monkeypatch, low, high, compiled):
    # forward: scores in one product (Q g)(K / g)^T while the chunk's decay stays >= 1e-12,
    # else row blocks of running products; backward: the kernel declines steep gates and the
    # numpy engine does the call
    from plastinet.fwp.gradients import chunkwise as backward

    rule = DecayedHebbian()
    (q, k, v), kw = make_case(rule, 1, 2, 700, 12, 8, np.float64, seed=21, per_key=True)
    kw["alpha"] = np.random.default_rng(3).uniform(low, high, kw["alpha"].shape)
    kw["alpha"][..., 100, :3] = 0.0 if compiled else low           # an erased unit (forward)
    dy = np.random.default_rng(5).standard_normal(v.shape)
    done = []
    real = native.hebbian_backward_kernel

    def spy(dt):
        run = real(dt)
        return None if run is None else (lambda *a, **kw: done.append(run(*a, **kw)) or done[-1])

    monkeypatch.setattr(backward, "hebbian_backward_kernel", spy)
    (y1, W1), (y0, W0) = _both_engines(monkeypatch, rule, q, k, v, 64, **kw)
    ref_y, ref_W = apply(rule, q, k, v, **kw)
    assert max_abs(y1, ref_y) < 1e-10 and max_abs(W1, ref_W) < 1e-10
    kw["alpha"][..., 100, :3] = low                                  # the backward needs gates > 0
    monkeypatch.setenv("PLASTINET_NATIVE", "1")
    grads = vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=64, **kw)
    assert done and all(d == compiled for d in done)
    ref = vjp(rule, q, k, v, dy, form="recurrent", **kw)
    for key in ref:
        assert rel_err(grads[key], ref[key]) < 1e-9, key


@pytest.mark.parametrize("portable", [False, True], ids=["native_flags", "portable_flags"])
@pytest.mark.parametrize("name", sorted(RULES))
def test_cache_resident_products_agree_with_the_numpy_engine(monkeypatch, tmp_path, name, portable):
    # float32, d_k = 40 and d_v = 48 (multiples of 8: the products of small_gemm.h where the
    # compiler targets AVX2 and FMA, with partial tiles: 40 = 16 + 16 + 8 columns, C = 64 =
    # 10 x 6 + 4 rows), ragged tail, forward and backward, against the numpy engine; portable:
    # the library built without -march=native, where BLAS does every product
    from plastinet.fwp.gradients import chunkwise as backward

    if portable:
        monkeypatch.setenv("PLASTINET_CACHE_DIR", str(tmp_path))
        monkeypatch.setattr(native, "_FLAGS", (["-O3"],))
        monkeypatch.setattr(native, "_loaded", None)
    monkeypatch.setattr(backward, "STATE_EVERY", 2)
    rule, per_key = RULES[name]
    (q, k, v), kw = make_case(rule, 1, 2, 300, 40, 48, np.float32, seed=13, per_key=per_key)
    if "alpha" in kw:
        kw["alpha"] = np.random.default_rng(4).uniform(0.9, 1.0, kw["alpha"].shape).astype(np.float32)
    dy = np.random.default_rng(8).standard_normal(v.shape).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunkwise, "F64_WORK", 0.0)             # float32 arithmetic at this size
        (y1, W1), (y0, W0) = _both_engines(mp, rule, q, k, v, 64, **kw)
        grads = {}
        for flag in ("1", "0"):
            mp.setenv("PLASTINET_NATIVE", flag)
            grads[flag] = vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=64, **kw)
    assert native.native_status() == "enabled"
    assert rel_err(y1, y0) < 2e-6 and rel_err(W1, W0) < 2e-6
    for key in grads["0"]:
        assert rel_err(grads["1"][key], grads["0"][key]) < 1e-5, key
