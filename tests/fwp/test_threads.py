"""Spreading heads over threads is a pure performance measure: results are bit-identical."""

import numpy as np
import pytest

import plastinet._blas as blas
from plastinet.fwp import apply, vjp
from plastinet.fwp.forms import chunkwise
from plastinet.fwp.rules import DecayedHebbian, Delta, GatedDelta, Hebbian


def _inputs(dtype, d=16, H=4, T=300, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((2, H, T, d)) for _ in range(3))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    beta = rng.uniform(0.0, 1.5, (2, H, T))
    alpha = rng.uniform(0.8, 1.0, (2, H, T))
    W0 = rng.standard_normal((2, H, d, d))
    return [a.astype(dtype) for a in (q, k, v, beta, alpha, W0)]


@pytest.mark.parametrize("native", ["1", "0"], ids=["compiled", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule, gates", [(Delta(), None), (GatedDelta(), "scalar"), (Hebbian(), None),
                                         (DecayedHebbian(), "scalar"), (DecayedHebbian(), "per_key")],
                         ids=["delta", "gated_delta", "hebbian", "decayed_hebbian", "decayed_hebbian_per_key"])
def test_heads_over_threads_change_nothing(monkeypatch, dtype, rule, gates, native):
    monkeypatch.setenv("PLASTINET_NATIVE", native)       # the compiled chunk loops and numpy's
    monkeypatch.setattr(chunkwise, "F64_WORK", 0.0)      # float32 arithmetic for float32 inputs
    q, k, v, beta, alpha, W0 = _inputs(dtype)
    kw = dict(beta=beta, initial_state=W0, form="chunkwise", chunk_size=32)
    if gates == "scalar":
        kw["alpha"] = alpha
    elif gates == "per_key":
        kw["alpha"] = (np.repeat(alpha[..., None], q.shape[-1], axis=-1) ** np.linspace(0.5, 2, q.shape[-1])).astype(dtype)
    dy = np.random.default_rng(1).standard_normal(q.shape).astype(dtype)
    runs = {}
    for threads in (1, 3):
        monkeypatch.setenv("PLASTINET_NUM_THREADS", str(threads))
        monkeypatch.setattr(blas, "MIN_WORK", 0.0)      # split even these small calls
        monkeypatch.setattr(blas, "MIN_GRAIN", 0.0)
        y, W = apply(rule, q, k, v, **kw)
        runs[threads] = (y, W, vjp(rule, q, k, v, dy, **kw))
    (y1, W1, g1), (y3, W3, g3) = runs[1], runs[3]
    assert np.array_equal(y1, y3) and np.array_equal(W1, W3)
    assert g1.keys() == g3.keys()
    for name in g1:
        assert np.array_equal(g1[name], g3[name]), name


def test_small_products_stay_in_one_thread(monkeypatch):
    calls = []
    monkeypatch.setenv("PLASTINET_NUM_THREADS", "2")
    monkeypatch.setattr(blas, "_get_pool", lambda n: calls.append(n) or blas.ThreadPoolExecutor(n))
    x = np.ones((4, 3))
    one = blas.map_heads(lambda a: (a * 2,), (x,), work=1e9, grain=blas.MIN_GRAIN / 2)
    assert calls == []
    two = blas.map_heads(lambda a: (a * 2,), (x,), work=1e9, grain=blas.MIN_GRAIN)
    assert calls == [1]
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[0], 2 * x)


def test_head_threads_uses_the_workers_only_where_they_pay_off(monkeypatch):
    monkeypatch.setenv("PLASTINET_NUM_THREADS", "3")
    assert blas.head_threads(8, blas.MIN_WORK) == 3                       # as many as allowed
    assert blas.head_threads(2, blas.MIN_WORK) == 2                       # at most one per head
    assert blas.head_threads(8, blas.MIN_WORK / 2) == 1                   # too little work
    assert blas.head_threads(8, blas.MIN_WORK, grain=blas.MIN_GRAIN / 2) == 1   # too fine a grain
    monkeypatch.setenv("PLASTINET_NUM_THREADS", "1")
    assert blas.head_threads(8, 1e12) == 1


def test_chunk_grain_counts_products_and_the_inverse():
    # the measured boundary: float32 d = 48, C = 32 stays in one thread; d = 64 with C = 32,
    # and C = 64 from d = 16 on (where the C^3 inverse dominates), split
    assert blas.chunk_grain(32, 64, 64, np.float32) == 2.0 * 32 * 64 * 64 + 2.0 * 32 ** 3 / 3
    assert blas.chunk_grain(32, 48, 48, np.float32) < blas.MIN_GRAIN
    assert blas.chunk_grain(32, 64, 64, np.float32) >= blas.MIN_GRAIN
    assert blas.chunk_grain(64, 16, 16, np.float32) >= blas.MIN_GRAIN
    f32, f64 = blas.chunk_grain(32, 64, 64, np.float32), blas.chunk_grain(32, 64, 64, np.float64)
    assert f64 - f32 == pytest.approx(2.0 * 32 * 64 * 64)   # products at float64 cost, inverse unchanged
