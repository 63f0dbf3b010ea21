"""Helpers shared by the rate-engine tests: input generators, error metrics, budgets."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from plastinet.fwp import DecayedHebbian, Delta, FeatureMap, GatedDelta, Hebbian, Oja, ThreeFactor

#: Acceptance tolerances (issue 2): max abs difference in float64, relative in float32.
ABS_TOL_F64 = 1e-10
REL_TOL_F32 = 1e-4


def budget(n: int) -> int:
    """``n`` examples under the default profile, scaled up under ``HYPOTHESIS_PROFILE=fuzz``."""
    return max(1, round(n * settings().max_examples / 20))


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference (computed in float64)."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """Norm-wise relative difference ``max|a - ref| / max|ref|`` (0 when both vanish)."""
    scale = float(np.max(np.abs(np.asarray(ref, np.float64)), initial=0.0))
    err = max_abs(a, ref)
    return err / scale if scale > 0 else err


def assert_close(a: np.ndarray, ref: np.ndarray, dtype, what: str = "") -> float:
    """Assert the acceptance tolerance for ``dtype``; returns the measured error."""
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(ref)), what
    if np.dtype(dtype) == np.float64:
        err = max_abs(a, ref)
        assert err <= ABS_TOL_F64, f"{what}: max abs difference {err:.3g} > {ABS_TOL_F64:g}"
    else:
        err = rel_err(a, ref)
        assert err <= REL_TOL_F32, f"{what}: relative difference {err:.3g} > {REL_TOL_F32:g}"
    return err


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Normalise the last axis to unit L2 norm."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


L2 = FeatureMap("identity", normalize="l2")

# -- hypothesis strategies ----------------------------------------------------------------

KINDS = ("identity", "elu+1", "relu", "softmax", "dpfp")
POSITIVE = ("elu+1", "relu", "softmax", "dpfp")


@st.composite
def feature_maps(draw, positive: bool = False, normalized: bool = False) -> FeatureMap:
    """Any feature map; ``positive``: a positive map; ``normalized``: sum or L2 normalised."""
    kind = draw(st.sampled_from(POSITIVE if positive else KINDS))
    nu = draw(st.integers(1, 3)) if kind == "dpfp" else 1
    options = ["l2"] if kind == "identity" else ["sum", "l2"]
    if not normalized:
        options = [None] + options
    return FeatureMap(kind, nu=nu, normalize=draw(st.sampled_from(options)))


FAMILIES = ("hebbian", "hebbian_normalized", "decayed_hebbian", "delta", "gated_delta")


def rule_for(family: str, draw) -> object:
    if family == "hebbian":
        return Hebbian(feature_map=draw(feature_maps()))
    if family == "hebbian_normalized":
        return Hebbian(feature_map=draw(feature_maps(positive=True)), normalize=True)
    if family == "decayed_hebbian":
        return DecayedHebbian(feature_map=draw(feature_maps()))
    if family == "delta":
        return Delta(feature_map=draw(feature_maps(normalized=True)))
    return GatedDelta(feature_map=draw(feature_maps(normalized=True)))


def gates(rng: np.random.Generator, shape: tuple, low: float, high: float, mode: str) -> np.ndarray:
    """Gate values in ``[low, high]``; ``mode`` adds exact endpoints or concentrates near high."""
    if mode == "near_high":
        g = rng.uniform(high - 0.1 * (high - low), high, size=shape)
    else:
        g = rng.uniform(low, high, size=shape)
    if mode == "endpoints":
        pick = rng.uniform(size=shape)
        g = np.where(pick < 0.1, low, np.where(pick > 0.9, high, g))
    return g


def make_case(rule, B: int, H: int, T: int, d_k: int, d_v: int, dtype, seed: int,
              gate_mode: str = "uniform", per_key: bool = False, with_state: bool = True,
              scale: float = 1.0) -> tuple[tuple, dict]:
    """Random ``(q, k, v)`` and keyword arguments (gates, initial state) for ``rule``."""
    rng = np.random.default_rng(seed)
    q = scale * rng.normal(size=(B, H, T, d_k))
    k = scale * rng.normal(size=(B, H, T, d_k))
    v = rng.normal(size=(B, H, T, d_v))
    d_phi = rule.phi.out_dim(d_k)
    kw: dict = {}
    lo, hi = (0.0, 2.0) if isinstance(rule, (Delta, GatedDelta)) else (-1.0, 1.0)
    kw["beta"] = gates(rng, (B, H, T), lo, hi, gate_mode)
    if rule.uses_alpha:
        shape = (B, H, T, d_phi) if per_key else (B, H, T)
        kw["alpha"] = gates(rng, shape, 0.0, 1.0, gate_mode)
    if rule.uses_modulator:
        kw["modulator"] = rng.uniform(-1, 1, size=(B, H, T))
    kw = {name: arr.astype(dtype) for name, arr in kw.items()}
    if with_state:
        from plastinet.fwp import State
        W0 = (0.5 * rng.normal(size=(B, H, d_v, d_phi))).astype(dtype)
        if isinstance(rule, Hebbian) and rule.normalize:
            z0 = rng.uniform(0.1, 2.0, size=(B, H, d_phi)).astype(dtype)
            kw["initial_state"] = State(W0, z0)
        elif isinstance(rule, ThreeFactor):
            E0 = (0.5 * rng.normal(size=(B, H, d_v, d_phi))).astype(dtype)
            kw["initial_state"] = State(W0, None, E0)
        else:
            kw["initial_state"] = W0
    return tuple(x.astype(dtype) for x in (q, k, v)), kw


ALL_RULES = {
    "hebbian": lambda: Hebbian(),
    "hebbian_normalized": lambda: Hebbian(feature_map="elu+1", normalize=True),
    "decayed_hebbian": lambda: DecayedHebbian(),
    "delta": lambda: Delta(feature_map=L2),
    "gated_delta": lambda: GatedDelta(feature_map=L2),
    "oja": lambda: Oja(feature_map=L2),
    "three_factor": lambda: ThreeFactor(gamma=0.7),
}
