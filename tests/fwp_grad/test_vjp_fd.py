"""``fwp.vjp`` against central finite differences (float64).

Every rule x form x feature map: one random direction per input (directional derivative,
two forward evaluations each), which checks every input (q, k, v, beta, alpha, modulator,
each component of the initial state) and, through the loss, the final-state cotangent
``dW``. A few cases are also checked entry by entry.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from grad_helpers import MAPS, POSITIVE_MAPS, RULE_CASES, grad_of, leaves, loss, make_case
from plastinet.fwp import Delta, GatedDelta, vjp

TOL = 1e-6
H_STEP = 1e-5
CHUNK = 3

CASES = []
for rule_name, (make, _) in RULE_CASES.items():
    maps = POSITIVE_MAPS if rule_name == "hebbian-normalized" else list(MAPS)
    for form in make(MAPS["identity"] if rule_name != "hebbian-normalized" else MAPS["relu"]).forms:
        CASES += [(rule_name, form, m) for m in maps]


def _check_directional(rule, inputs, dy, dW, form, seed=0):
    g = vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy, dW=dW, form=form, chunk_size=CHUNK,
            **{n: a for n, a in inputs.items() if n not in ("q", "k", "v")})
    rng = np.random.default_rng(seed)
    errors = {}
    for name, field, arr in leaves(inputs):
        direction = rng.normal(size=arr.shape)
        base = arr.copy()
        arr += H_STEP * direction
        plus = loss(rule, inputs, dy, dW, form, CHUNK)
        arr[...] = base - H_STEP * direction
        minus = loss(rule, inputs, dy, dW, form, CHUNK)
        arr[...] = base
        fd = (plus - minus) / (2 * H_STEP)
        an = float((grad_of(g, name, field) * direction).sum())
        scale = max(abs(fd), 1e-3 * np.linalg.norm(grad_of(g, name, field)) * np.linalg.norm(direction))
        # an input the rule ignores (Oja's v) has exactly zero gradient: compare absolutely
        errors[name if field is None else f"{name}.{field}"] = abs(an - fd) / scale if scale else abs(fd)
    return errors


@pytest.mark.parametrize("rule_name, form, map_name", CASES)
def test_directional_fd(rule_name, form, map_name):
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS[map_name])
    inputs, dy, dW = make_case(rule, per_key, seed=zlib.crc32(f"{rule_name}/{map_name}".encode()))
    errors = _check_directional(rule, inputs, dy, dW, form)
    bad = {n: e for n, e in errors.items() if e > TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


def _check_entrywise(rule, inputs, dy, dW, form):
    g = vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy, dW=dW, form=form, chunk_size=CHUNK,
            **{n: a for n, a in inputs.items() if n not in ("q", "k", "v")})
    for name, field, arr in leaves(inputs):
        fd = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + H_STEP
            plus = loss(rule, inputs, dy, dW, form, CHUNK)
            arr[idx] = old - H_STEP
            minus = loss(rule, inputs, dy, dW, form, CHUNK)
            arr[idx] = old
            fd[idx] = (plus - minus) / (2 * H_STEP)
        an = grad_of(g, name, field)
        err = np.abs(an - fd).max() / max(np.abs(fd).max(), 1e-12)   # Oja ignores v: both 0
        assert err < TOL, f"{name}{'.' + field if field else ''}: relative error {err:.2e}"


@pytest.mark.parametrize("form", ["recurrent", "chunkwise"])
@pytest.mark.parametrize("rule", [Delta(), GatedDelta()], ids=["delta", "gated_delta"])
def test_entrywise_fd_beta_above_one(rule, form):
    """Every entry, with unit keys and ``beta`` in (1, 2] (negative eigenvalues)."""
    inputs, dy, dW = make_case(rule, False, T=8, seed=3)
    inputs["k"] /= np.linalg.norm(inputs["k"], axis=-1, keepdims=True)
    inputs["beta"] = np.random.default_rng(4).uniform(1.05, 1.95, inputs["beta"].shape)
    _check_entrywise(rule, inputs, dy, dW, form)


@pytest.mark.parametrize("rule_name, form", [("decayed-per-key", "chunkwise"), ("three_factor", "recurrent"),
                                             ("hebbian-normalized", "chunkwise"), ("oja", "recurrent")])
def test_entrywise_fd(rule_name, form):
    make, per_key = RULE_CASES[rule_name]
    rule = make(MAPS["elu+1/sum" if rule_name == "hebbian-normalized" else "dpfp-2/l2"])
    inputs, dy, dW = make_case(rule, per_key, T=5, seed=5)
    _check_entrywise(rule, inputs, dy, dW, form)


@pytest.mark.filterwarnings("ignore::plastinet.errors.UnstableUpdateWarning")
@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_delta_singular_and_boundary_beta(beta):
    """``beta = 1`` (``I - k k^T`` singular) and ``beta = 2`` with unit keys: still exact."""
    rule = Delta()
    inputs, dy, dW = make_case(rule, False, T=9, seed=6)
    inputs["k"] /= np.linalg.norm(inputs["k"], axis=-1, keepdims=True)
    inputs["beta"] = np.full(inputs["beta"].shape, beta)
    for form in ("recurrent", "chunkwise"):
        # central differences in beta would leave [0, 2] at beta = 2: check the other inputs
        g = vjp(rule, inputs["q"], inputs["k"], inputs["v"], dy, dW=dW, form=form, chunk_size=CHUNK,
                beta=inputs["beta"], initial_state=inputs["initial_state"])
        for name in ("q", "k", "v", "initial_state"):
            arr = inputs[name]
            direction = np.random.default_rng(7).normal(size=arr.shape)
            base = arr.copy()
            arr += H_STEP * direction
            plus = loss(rule, inputs, dy, dW, form, CHUNK)
            arr[...] = base - H_STEP * direction
            minus = loss(rule, inputs, dy, dW, form, CHUNK)
            arr[...] = base
            fd = (plus - minus) / (2 * H_STEP)
            an = float((g[name] * direction).sum())
            assert abs(an - fd) <= TOL * max(abs(fd), 1.0), (form, name, an, fd)
