"""Dual form: the attention weights reproduce the engine's read-outs exactly."""

import numpy as np
import pytest

from plastinet.analysis import attention_weights
from plastinet.errors import UnsupportedError
from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, apply

rng = np.random.default_rng(0)
T = 12
K = rng.normal(size=(T, 5))
K /= np.linalg.norm(K, axis=1, keepdims=True)
Q = rng.normal(size=(T, 5))
V = rng.normal(size=(T, 3))
B = rng.uniform(0.2, 1.5, T)


@pytest.mark.parametrize("rule,gates", [
    (Hebbian(), {}), (Hebbian(normalize=True, feature_map="elu+1"), {}),
    (DecayedHebbian(), {"alpha": rng.uniform(0.5, 1, T)}), (DecayedHebbian(), {"alpha": rng.uniform(0.5, 1, (T, 5))}),
    (Delta(), {}), (Delta(feature_map=FeatureMap("elu+1", normalize="l2")), {})])
def test_weights_reproduce_readouts(rule, gates):
    batched = {k: v[None, None] for k, v in gates.items()}
    y, W = apply(rule, Q[None, None], K[None, None], V[None, None], beta=B[None, None], **batched)
    M = attention_weights(rule, K, Q, beta=B, causal=True, **gates)
    np.testing.assert_allclose(M.values @ V, y[0, 0], atol=1e-12)
    assert np.allclose(np.triu(M.values, 1), 0)
    if not getattr(rule, "normalize", False):
        final = attention_weights(rule, K, Q[:4], beta=B, **gates)
        np.testing.assert_allclose(final.values @ V, rule.phi(Q[:4]) @ W[0, 0].T, atol=1e-12)


def test_delta_overwrites_repeated_key():
    k = np.stack([K[0], K[1], K[0]])
    M = attention_weights(Delta(), k, k[:1])
    np.testing.assert_allclose(M.values[0], [0.0, 0.0, 1.0], atol=1e-12)   # latest write wins


def test_unsupported_rule():
    with pytest.raises(UnsupportedError, match="dual form"):
        attention_weights(GatedDelta(), K, Q)
