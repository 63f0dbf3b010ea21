"""The brian2 backend for rate rules: targets, preferences, and compile failures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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


def test_broken_compiler_gives_a_clear_error_with_the_fix(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, brian2
        brian2.prefs.codegen.runtime.cython.cache_dir = {str(tmp_path)!r}
        from plastinet.backends import get_backend
        from plastinet.errors import BackendError
        from plastinet.fwp import Delta
        k = np.ones((1, 1, 3, 2)) / np.sqrt(2)
        try:
            get_backend("brian2", target="cython").apply_fwp(Delta(), k, k, np.ones((1, 1, 3, 1)))
        except BackendError as err:
            print("BACKEND_ERROR", err)
        """)
    env = dict(os.environ, CC="/nonexistent/cc", CXX="/nonexistent/c++")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BACKEND_ERROR")]
    assert line, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert "target='numpy'" in line[0] and "compile" in line[0]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_compiled_targets_pass_the_rate_compliance_checks(target):
    backend = get_backend("brian2", target=target)
    ran = 0
    for check, cases in CHECKS:
        for case in cases[:3]:
            try:
                check(backend, case)
                ran += 1
            except CapabilityMissing:
                continue
    assert ran >= 5
