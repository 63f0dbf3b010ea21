"""``check_*`` functions of the backend-compliance suite (see :mod:`plastinet.testing`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from plastinet.backends import Backend, get_backend
from plastinet.errors import ShapeError, ValidationError
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, State, ThreeFactor, apply

__all__ = ["CHECKS", "CapabilityMissing", "rate_cases", "check_rate_fwp_matches_reference",
           "check_rate_fwp_state_round_trip", "check_rate_fwp_rejects_bad_input"]

#: Agreement required of a backend with the float64 reference (max abs difference).
RATE_ATOL = 1e-10


class CapabilityMissing(Exception):
    """The backend does not declare what a check needs; the reason says what is missing."""


def _backend(backend: Backend | str) -> Backend:
    return get_backend(backend)


def _need(backend: Backend, capability: str, rule: Rule | None = None) -> None:
    if not backend.supports(capability):
        raise CapabilityMissing(f"backend {backend.name!r} does not declare {capability!r}")
    if rule is not None and not isinstance(rule, backend.rate_rules):
        raise CapabilityMissing(f"backend {backend.name!r} has no lowering of {type(rule).__name__}")


def rate_cases() -> dict[str, tuple[Rule, Callable[[np.random.Generator, tuple], dict[str, Any]]]]:
    """Named rate-rule cases: a rule and a function drawing its gates for shape (B, H, T)."""
    def beta(rng, s, hi=2.0):
        return {"beta": rng.uniform(0.0, hi, size=s)}

    return {
        "hebbian": (Hebbian(), lambda r, s: beta(r, s)),
        "hebbian_normalized_elu": (Hebbian(normalize=True, feature_map="elu+1"), lambda r, s: beta(r, s)),
        "decayed_hebbian_scalar": (DecayedHebbian(), lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s)}),
        "decayed_hebbian_per_key": (DecayedHebbian(),
                                    lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s + (4,))}),
        "delta": (Delta(), lambda r, s: beta(r, s)),
        "delta_l2_keys": (Delta(feature_map="relu"), lambda r, s: beta(r, s, 0.2)),
        "gated_delta": (GatedDelta(), lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s)}),
        "oja": (Oja(), lambda r, s: beta(r, s, 0.1)),
        "three_factor": (ThreeFactor(gamma=0.8), lambda r, s: {**beta(r, s), "modulator": r.normal(size=s)}),
    }


def _inputs(case: str, seed: int, B: int = 2, H: int = 2, T: int = 40, d_k: int = 4, d_v: int = 3):
    rule, gates = rate_cases()[case]
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(B, H, T, d_k))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    q = rng.normal(size=(B, H, T, d_k))
    v = rng.normal(size=(B, H, T, d_v))
    W0 = 0.3 * rng.normal(size=(B, H, d_v, rule.phi.out_dim(d_k)))
    return rule, q, k, v, gates(rng, (B, H, T)), W0


def check_rate_fwp_matches_reference(backend: Backend | str, case: str, seed: int = 0) -> None:
    """The backend's read-outs and final weights equal the numpy recurrent form (1e-10)."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    y_ref, W_ref = apply(rule, q, k, v, initial_state=W0, **gates)
    y, W = be.apply_fwp(rule, q, k, v, initial_state=W0, **gates)
    assert y.shape == y_ref.shape and W.shape == W_ref.shape, "shapes differ from the reference"
    assert y.dtype == y_ref.dtype, f"dtype {y.dtype} differs from the reference {y_ref.dtype}"
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=RATE_ATOL, err_msg=f"{case}: read-outs differ")
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=RATE_ATOL, err_msg=f"{case}: final weights differ")


def check_rate_fwp_state_round_trip(backend: Backend | str, case: str, seed: int = 1) -> None:
    """Two runs chained through ``return_state`` equal one run over the whole sequence."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    y_all, W_all = be.apply_fwp(rule, q, k, v, initial_state=W0, **gates)
    cut = q.shape[2] // 3
    first = {g: a[:, :, :cut] for g, a in gates.items()}
    second = {g: a[:, :, cut:] for g, a in gates.items()}
    y1, s1 = be.apply_fwp(rule, q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], initial_state=W0,
                          return_state=True, **first)
    assert isinstance(s1, State), "return_state=True must return a plastinet.fwp.State"
    y2, W2 = be.apply_fwp(rule, q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], initial_state=s1, **second)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=2), y_all, rtol=0, atol=RATE_ATOL)
    np.testing.assert_allclose(W2, W_all, rtol=0, atol=RATE_ATOL)


def check_rate_fwp_rejects_bad_input(backend: Backend | str, case: str = "delta", seed: int = 2) -> None:
    """Bad shapes and out-of-range learning rates raise plastinet errors naming the argument."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    try:
        be.apply_fwp(rule, q, k[:, :, :-1], v, **gates)
    except ShapeError as err:
        assert "k" in str(err)
    else:
        raise AssertionError("a key sequence of the wrong length was accepted")
    try:
        be.apply_fwp(Delta(), q, k, v, beta=np.full(q.shape[:3], 2.5))
    except ValidationError as err:
        assert "beta" in str(err)
    else:
        raise AssertionError("beta = 2.5 was accepted by the delta rule")


#: Every check with the cases it runs on: ``(check, [case, ...])``.
CHECKS: list[tuple[Callable[..., None], list[str]]] = [
    (check_rate_fwp_matches_reference, list(rate_cases())),
    (check_rate_fwp_state_round_trip, ["hebbian_normalized_elu", "delta", "gated_delta", "three_factor"]),
    (check_rate_fwp_rejects_bad_input, ["delta"]),
]
