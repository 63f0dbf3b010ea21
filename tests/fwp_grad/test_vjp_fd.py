"""``fwp.vjp`` against finite differences, entry by entry (float64, T <= 20).

Every rule (Hebbian with and without the attention normaliser, DecayedHebbian with a scalar
and a per-key gate, Delta, GatedDelta, Oja, ThreeFactor) x every form it has (recurrent,
parallel, chunkwise) x every feature map of ``grad_helpers.MAPS`` (identity, ELU+1, ReLU,
softmax, DPFP-1/2/3, and sum / L2 normalisation). Every entry of every input is perturbed
(q, k, v, beta, alpha, modulator, every component of the initial state); the loss
``<dy, Y> + <dW, final state>`` also checks the final-state cotangent.

Two error measures, both below ``TOL = 1e-6`` for every input array:

* normwise, ``||g - n|| / ||n||`` over the array;
* componentwise, ``max_i |g_i - n_i| / (|n_i| + 1e-3 ||n||_inf)``, so that an error in a
  small entry is not hidden by the large ones (entries below 1e-3 of the largest are
  compared at that absolute level, where Richardson-extrapolated central differences are
  still exact to about 1e-10).

The measured worst cases are far below the tolerance (normwise about 1e-9, componentwise
about 1e-7); see docs/gradients.md.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
from grad_helpers import MAPS, RULE_CASES, entrywise_fd, fd_errors, make_case

from plastinet.fwp import Delta, GatedDelta, vjp

TOL = 1e-6
CHUNK = 3

CASES = []
for _rule_name, (_make, _) in RULE_CASES.items():
    _maps = [m for m, fm in MAPS.items() if fm.positive or _rule_name != "hebbian-normalized"]
    for _form in _make(MAPS["relu"]).forms:
        CASES += [(_rule_name, _form, m) for m in _maps]


def _vjp(rule, inputs, dy, dW, form, chunk_size=CHUNK):
    return vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy, dW=dW, form=form, chunk_size=chunk_size,
               **{n: a for n, a in inputs.items() if n not in ("q", "k", "v")})


def _assert_fd(rule, inputs, dy, dW, form, chunk_size=CHUNK, **fd_options):
    g = _vjp(rule, inputs, dy, dW, form, chunk_size)
    errors = fd_errors(g, entrywise_fd(rule, inputs, dy, dW, form, chunk_size, **fd_options))
    bad = {name: e for name, e in errors.items() if max(e) > TOL}
    assert not bad, f"(normwise, componentwise) relative errors above {TOL}: {bad}"
    return errors


def test_cases_cover_the_cross_product():
    """Every rule x form x feature map (the normalised Hebbian rule needs a positive map)."""
    assert {r for r, _, _ in CASES} == set(RULE_CASES)
    assert {f for _, f, _ in CASES} == {"recurrent", "parallel", "chunkwise"}
    kinds = {(MAPS[m].kind, MAPS[m].nu if MAPS[m].kind == "dpfp" else None, MAPS[m].normalize)
             for _, _, m in CASES}
    assert {k[0] for k in kinds} == {"identity", "elu+1", "relu", "softmax", "dpfp"}
    assert {k[1] for k in kinds if k[0] == "dpfp"} == {1, 2, 3}
    assert {k[2] for k in kinds} == {None, "sum", "l2"}
    assert len(CASES) == sum(len(make(MAPS["relu"]).forms)
                             * sum(fm.positive or name != "hebbian-normalized" for fm in MAPS.values())
                             for name, (make, _) in RULE_CASES.items())


@pytest.mark.parametrize("rule_name, form, map_name", CASES)
def test_entrywise_fd(rule_name, form, map_name):
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS[map_name])
    inputs, dy, dW = make_case(rule, per_key, seed=zlib.crc32(f"{rule_name}/{map_name}".encode()))
    errors = _assert_fd(rule, inputs, dy, dW, form)
    expected = {"q", "k", "v", "beta", "initial_state"} | ({"alpha"} if rule.uses_alpha else set()) \
        | ({"modulator"} if rule.uses_modulator else set())
    assert {name.split(".")[0] for name in errors} == expected
    if isinstance(rule, (Delta, GatedDelta)):
        # beyond the classic range: beta > 1 (small keys) or a negative eigenvalue
        # 1 - beta ||phi(k)||^2 < 0 (large keys); both at once in the beta-above-one test
        kk = (rule.phi(inputs["k"]) ** 2).sum(-1)
        assert (inputs["beta"] > 1).any() or (inputs["beta"] * kk > 1).any()


@pytest.mark.parametrize("rule_name", list(RULE_CASES))
def test_entrywise_fd_t20(rule_name):
    """T = 20: seven chunks of 3 (the last one partial), every form of the rule."""
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["dpfp-1/sum"])
    inputs, dy, dW = make_case(rule, per_key, H=1, T=20, seed=zlib.crc32(rule_name.encode()))
    for form in rule.forms:
        _assert_fd(rule, inputs, dy, dW, form)


@pytest.mark.parametrize("rule_name, form", [("delta", "recurrent"), ("delta", "parallel"),
                                             ("delta", "chunkwise"), ("gated_delta", "recurrent"),
                                             ("gated_delta", "chunkwise")])
@pytest.mark.parametrize("map_name", ["identity/l2", "relu/l2", "dpfp-2/l2"])
def test_entrywise_fd_beta_above_one(rule_name, form, map_name):
    """``beta`` in (1.05, 1.95) with ``||phi(k)|| = 1`` (negative eigenvalues of ``I - beta k k^T``)."""
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS[map_name])
    inputs, dy, dW = make_case(rule, per_key, T=8, seed=3)
    inputs["beta"] = np.random.default_rng(4).uniform(1.05, 1.95, inputs["beta"].shape)
    _assert_fd(rule, inputs, dy, dW, form)


@pytest.mark.parametrize("form", ["recurrent", "parallel", "chunkwise"])
@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_delta_singular_and_boundary_beta(beta, form):
    """``beta = 1`` (``I - k k^T`` singular) and ``beta = 2`` with unit keys: still exact.

    At ``beta = 2`` (the end of the allowed range) the ``beta`` gradient is checked with
    one-sided (backward) differences.
    """
    rule = Delta(feature_map=MAPS["identity/l2"])
    inputs, dy, dW = make_case(rule, False, T=9, seed=6)
    inputs["beta"] = np.full(inputs["beta"].shape, beta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # UnstableUpdateWarning at beta = 2
        _assert_fd(rule, inputs, dy, dW, form, one_sided=("beta",) if beta == 2.0 else ())


def test_error_measure_sees_a_wrong_small_entry():
    """The componentwise measure flags a 1e-5 relative error in the smallest checked entry."""
    rule = Delta(feature_map=MAPS["elu+1/sum"])
    inputs, dy, dW = make_case(rule, False, seed=8)
    g = _vjp(rule, inputs, dy, dW, "recurrent")
    numeric = entrywise_fd(rule, inputs, dy, dW, "recurrent", CHUNK)
    k = numeric[("k", None)]
    small = np.unravel_index(np.argmin(np.where(np.abs(k) > 1e-2 * np.abs(k).max(), np.abs(k), np.inf)), k.shape)
    g["k"] = g["k"].copy()
    g["k"][small] *= 1 + 1e-5
    normwise, componentwise = fd_errors(g, numeric)["k"]
    assert normwise < TOL < componentwise
