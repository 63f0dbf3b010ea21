"""The brian2 backend for rate rules: targets, preferences, dtypes, compiled targets."""

from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")

from plastinet.backends import get_backend  # noqa: E402
from plastinet.errors import UnsupportedError  # noqa: E402
from plastinet.fwp import Delta, GatedDelta, apply  # noqa: E402
from plastinet.testing import CHECKS, CapabilityMissing  # noqa: E402


def _inputs(T=12):
    rng = np.random.default_rng(3)
    k = rng.normal(size=(1, 2, T, 3))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    return rng.normal(size=(1, 2, T, 3)), k, rng.normal(size=(1, 2, T, 2)), rng.uniform(0, 1, (1, 2, T))


def test_global_preferences_are_restored_after_runs_and_errors():
    before = brian2.prefs.codegen.target
    q, k, v, beta = _inputs()
    get_backend("brian2").apply_fwp(Delta(), q, k, v, beta=beta)
    with pytest.raises(Exception):
        get_backend("brian2").apply_fwp(GatedDelta(), q, k, v, beta=beta)   # needs alpha
    assert brian2.prefs.codegen.target == before


def test_float32_in_float32_out_and_close_to_reference():
    q, k, v, beta = (x.astype(np.float32) for x in _inputs())
    y, W = get_backend("brian2").apply_fwp(Delta(), q, k, v, beta=beta)
    y_ref, _ = apply(Delta(), q, k, v, beta=beta)
    assert y.dtype == np.float32 and W.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)


def test_unknown_target_is_rejected_with_the_allowed_ones():
    with pytest.raises(UnsupportedError, match="cpp_standalone"):
        get_backend("brian2", target="gpu")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_compiled_targets_pass_the_rate_compliance_checks(target):
    backend = get_backend("brian2", target=target)
    ran, skipped = 0, []
    for check, cases in CHECKS:
        if not check.__name__.startswith("check_rate"):
            continue
        for case in cases:
            try:
                check(backend, case)
                ran += 1
            except CapabilityMissing as reason:
                skipped.append((case, str(reason)))
    assert not skipped, skipped
    assert ran == sum(len(cases) for check, cases in CHECKS if check.__name__.startswith("check_rate"))
