"""Acceptance 3 of issue 3: the capacity experiment of Schlag et al. (2021), scaled down.

Runs ``docs/scripts/reproduce_capacity.py`` with its ``small`` preset (``d_key = 8``: d_phi
= 8, 16, 32 for ELU+1, DPFP-1, DPFP-2; grid step 4). See docs/training.md for the paper
preset and the measured numbers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "scripts" / "reproduce_capacity.py"


def _script():
    spec = importlib.util.spec_from_file_location("reproduce_capacity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_capacity_small_preset():
    rc = _script()
    p = rc.PRESETS["small"]
    rows1 = rc.setting1(["elu+1", "dpfp-1", "dpfp-2"], p, log=lambda _: None)
    rows2 = rc.setting2(p, log=lambda _: None)
    assert rc.check(rows1, rows2, p["grid_step"]) == []


def test_acceptance_check_logic():
    """The verdict function on hand-made rows (fast)."""
    rc = _script()
    rows1 = [{"feature_map": "elu+1", "n_keys": n, "d_phi": 8, "loss": loss,
              "bound": max(0.0, 0.5 * (n - 8) / n)}
             for n, loss in [(4, 1e-4), (8, 2e-3), (12, 0.18), (16, 0.26)]]
    rows2 = [{"n_keys": 8, "rule": "delta", "loss": 1e-3}, {"n_keys": 8, "rule": "hebbian", "loss": 0.1}]
    assert rc.check(rows1, rows2, 4) == []
    rows1[1]["loss"] = 0.01                      # fails at N = 8 = d_phi: still within a step
    assert rc.check(rows1, rows2, 4) == []
    early = [dict(r, feature_map="dpfp-1", d_phi=16, bound=max(0.0, 0.5 * (r["n_keys"] - 16) / r["n_keys"]))
             for r in rows1[:2]]
    early[1]["loss"] = 0.01                      # fails at N = 8 < d_phi - step
    assert any("dpfp-1: first failing N = 8" in f for f in rc.check(rows1 + early, rows2, 4))
    rows1[3]["loss"] = 0.4                       # N = 16 > d_phi, far above the bound 0.25
    assert any("vs bound" in f for f in rc.check(rows1, rows2, 4))
    rows2[0]["loss"] = 0.2
    assert any("setting 2" in f for f in rc.check(rows1, rows2, 4))
