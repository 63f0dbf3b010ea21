"""The compliance suite as tests: every check against the selected backend(s)."""

from __future__ import annotations

import pytest

from plastinet.testing.checks import CHECKS, CapabilityMissing

PARAMS = [pytest.param(check, case, id=f"{check.__name__}[{case}]") for check, cases in CHECKS for case in cases]


@pytest.mark.parametrize("check, case", PARAMS)
def test_compliance(backend, check, case):
    try:
        check(backend, case)
    except CapabilityMissing as reason:
        pytest.skip(str(reason))
