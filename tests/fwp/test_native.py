"""The compiled chunk loop of the delta rule (plastinet.fwp.forms.native) against the numpy engine.

The compiled loops are the default fast path of ``apply(Delta(), ..., form="chunkwise")`` and
of its backward; the numpy engine (``PLASTINET_NATIVE=0``, or no compiler) must give the same
results to rounding, and a missing compiler must never be more than slower.
"""

from __future__ import annotations

import numpy as np
import pytest
from fwp_helpers import L2, assert_close, budget, make_case, max_abs, rel_err, rule_for
from hypothesis import given, settings
from hypothesis import strategies as st

from plastinet.fwp import Delta, apply, vjp
from plastinet.fwp.forms import chunkwise, native

pytestmark = pytest.mark.filterwarnings("error::plastinet.errors.UnstableUpdateWarning")


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


@settings(max_examples=budget(30), deadline=None)
@given(data=st.data())
def test_kernel_agrees_with_the_numpy_engine_property(data):
    rule = rule_for("delta", data.draw)
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    T, d_k, d_v = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 24)), data.draw(st.integers(1, 12))
    chunk = data.draw(st.integers(1, 96))
    (q, k, v), kw = make_case(rule, data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), T, d_k,
                              d_v, dtype, data.draw(st.integers(0, 2**32 - 1)),
                              gate_mode=data.draw(st.sampled_from(["uniform", "endpoints", "near_high"])),
                              with_state=data.draw(st.booleans()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunkwise, "F64_WORK", 0.0)             # float32 arithmetic even when small
        (y1, W1), (y0, W0) = _both_engines(mp, rule, q, k, v, chunk, **kw)
    ref_y, ref_W = apply(rule, q, k, v, **kw)                # the recurrent form
    for a, b, ref, name in ((y1, y0, ref_y, "y"), (W1, W0, ref_W, "W")):
        assert a.dtype == b.dtype == np.dtype(dtype) and a.shape == b.shape
        assert_close(a, ref, dtype, f"kernel {name}")
        assert_close(b, ref, dtype, f"numpy {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_long_sequence_with_state_and_ragged_tail(monkeypatch, dtype):
    rule = Delta(feature_map=L2)
    (q, k, v), kw = make_case(rule, 1, 4, 8192 + 37, 64, 48, dtype, seed=11)
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
    rule = Delta(feature_map=L2)
    (q, k, v), kw = make_case(rule, 1, 2, 3000, 16, 8, np.float64, seed=2)
    with pytest.warns(RuntimeWarning, match="compiled delta-rule kernel is unavailable"):
        y, W = apply(rule, q, k, v, form="chunkwise", **kw)
    assert native.native_status().startswith("unavailable") and native.delta_kernel(np.float64) is None
    ref_y, ref_W = apply(rule, q, k, v, **kw)
    assert max_abs(y, ref_y) < 1e-10 and max_abs(W, ref_W) < 1e-10


@pytest.mark.parametrize("every", [1, 3, 4])
@pytest.mark.parametrize("chunk", [32, 30])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_backward_gives_the_numpy_gradients(monkeypatch, dtype, chunk, every):
    # ragged groups of kept states (34 chunks of 30 steps), every state kept, ragged tail
    from plastinet.fwp.gradients import chunkwise as backward

    monkeypatch.setattr(backward, "STATE_EVERY", every)
    calls = []
    real = native.delta_backward_kernel
    monkeypatch.setattr(backward, "delta_backward_kernel", lambda dt: calls.append(dt) or real(dt))
    rule = Delta(feature_map=L2)
    (q, k, v), kw = make_case(rule, 1, 3, 1000 + 13, 24, 16, dtype, seed=8)
    dy = np.random.default_rng(9).standard_normal(v.shape).astype(dtype)
    grads = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("PLASTINET_NATIVE", flag)
        grads[flag] = vjp(rule, q, k, v, dy, form="chunkwise", chunk_size=chunk, **kw)
    assert calls and all(c == np.dtype(dtype) for c in calls)
    assert grads["1"].keys() == grads["0"].keys()
    for name in grads["0"]:
        tol = 1e-11 if dtype == np.float64 else 1e-5
        assert rel_err(grads["1"][name], grads["0"][name]) < tol, name
