"""The brian2 backend lowers the spec itself: no numpy-engine code, constants or state.

A bug planted in the numpy engine must not reach the brian2 backend, so the cross-backend
comparison (and the compliance check against the independent reference) catches it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("brian2")

import plastinet.backends.brian2 as b2pkg  # noqa: E402
from plastinet.backends import get_backend  # noqa: E402
from plastinet.spiking import run  # noqa: E402
from plastinet.spiking._neurons import ConductanceLIFState  # noqa: E402
from plastinet.testing.checks import check_spiking_matches_reference, compare_spiking, spiking_cases  # noqa: E402

ENGINE_MODULES = {"plastinet.spiking.engine", "plastinet.spiking._neurons", "plastinet.spiking._synapses"}


def test_the_brian2_backend_imports_nothing_of_the_numpy_engine():
    bad = []
    for path in Path(b2pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            bad += [f"{path.name}: {n}" for n in names if n in ENGINE_MODULES]
    assert not bad, bad


def test_a_planted_error_in_the_numpy_conductance_lif_fails_the_cross_backend_comparison(monkeypatch):
    case = "conductance_lif_exponential_euler"
    net = spiking_cases()[case]()
    b2 = get_backend("brian2")
    good = b2.simulate(net, 0.3, seed=0)
    compare_spiking(run(net, 0.3, seed=0), good, case)          # they agree without the error

    original = ConductanceLIFState.__init__

    def planted(self, pop, dt):                                 # dt / tau_m off by 25 %
        original(self, pop, dt)
        self.k *= 1.25

    monkeypatch.setattr(ConductanceLIFState, "__init__", planted)
    wrong = run(net, 0.3, seed=0)
    assert not np.array_equal(wrong["spike_time"].values, good["spike_time"].values) or \
        not np.allclose(wrong["ge"].values, good["ge"].values, rtol=1e-9)
    with pytest.raises(AssertionError):
        compare_spiking(wrong, b2.simulate(net, 0.3, seed=0), case)     # brian2 is not affected
    compare_spiking(good, b2.simulate(net, 0.3, seed=0), case)
    with pytest.raises(AssertionError):                                 # nor is the independent reference
        check_spiking_matches_reference("numpy", case)
