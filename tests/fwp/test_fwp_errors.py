"""Issue 2, acceptance point 3: bad input gets a clear error naming the argument; a run
whose state becomes non-finite raises naming the step and head; an expanding delta update
warns once per call."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fwp_helpers import L2, max_abs, unit_rows

from plastinet.errors import (
    DTypeError,
    NonFiniteError,
    NumericalError,
    PlastinetError,
    RangeError,
    ShapeError,
    UnstableUpdateWarning,
    UnsupportedError,
    ValidationError,
)
from plastinet.fwp import FORMS, DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, State, ThreeFactor, apply, get_rule

B, H, T, DK, DV = 2, 3, 7, 4, 5


def good(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    q, k = (rng.normal(size=(B, H, T, DK)).astype(dtype) for _ in range(2))
    v = rng.normal(size=(B, H, T, DV)).astype(dtype)
    return q, k, v


def raises_naming(cls, name, fn, *args, **kwargs):
    """Assert ``fn`` raises ``cls`` whose message names ``name``; return the error."""
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, PlastinetError)
    assert f"invalid {name}=" in str(err), str(err)
    assert err.parameter == name
    return err


# -- shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,bad_shape", [
    ("q", (B, H, T)),                   # missing d_k
    ("q", (B, H, T, DK, 1)),            # extra axis
    ("k", (B, H, T, DK + 1)),           # d_k mismatch
    ("k", (B, H, T + 1, DK)),           # T mismatch
    ("k", (B + 1, H, T, DK)),           # B mismatch
    ("v", (B, H, T - 1, DV)),
    ("v", (B, H + 1, T, DV)),
    ("v", (B, H, T)),
])
def test_wrong_input_shapes(name, bad_shape):
    q, k, v = good()
    args = {"q": q, "k": k, "v": v}
    args[name] = np.zeros(bad_shape)
    err = raises_naming(ShapeError, name, apply, Hebbian(), args["q"], args["k"], args["v"])
    assert str(bad_shape) in str(err)


@pytest.mark.parametrize("rule,name,bad_shape", [
    (Hebbian(), "beta", (B, H, T + 1)),
    (Hebbian(), "beta", (B, H)),
    (Delta(), "beta", (B, H, T, 1)),
    (DecayedHebbian(), "alpha", (B, H, T - 1)),
    (DecayedHebbian(), "alpha", (B, H, T, DK + 1)),      # per-key gate needs d_phi
    (DecayedHebbian(feature_map="dpfp-2"), "alpha", (B, H, T, DK)),  # d_phi = 16, not d_k
    (GatedDelta(), "alpha", (B, H, T, DK)),              # GatedDelta: scalar gates only
    (ThreeFactor(), "modulator", (B, H, 1)),
])
def test_wrong_gate_shapes(rule, name, bad_shape):
    q, k, v = good()
    kw = {"alpha": np.full((B, H, T), 0.5)} if rule.uses_alpha else {}
    kw[name] = np.full(bad_shape, 0.5)
    raises_naming(ShapeError, name, apply, rule, q, k, v, **kw)


def test_wrong_initial_state_shapes():
    q, k, v = good()
    raises_naming(ShapeError, "initial_state", apply, Hebbian(), q, k, v,
                  initial_state=np.zeros((B, H, DK, DV)))              # transposed
    raises_naming(ShapeError, "initial_state", apply, Hebbian(feature_map="dpfp"), q, k, v,
                  initial_state=np.zeros((B, H, DV, DK)))              # d_phi = 2 d_k
    W0 = np.zeros((B, H, DV, DK))
    raises_naming(ShapeError, "initial_state.normalizer", apply, Hebbian(normalize=True), q, k, v,
                  initial_state=State(W0, np.zeros((B, H, DV))))
    raises_naming(ShapeError, "initial_state.eligibility", apply, ThreeFactor(), q, k, v,
                  initial_state=State(W0, None, np.zeros((B, H, DV))))
    raises_naming(UnsupportedError, "initial_state.normalizer", apply, Hebbian(), q, k, v,
                  initial_state=State(W0, np.zeros((B, H, DK))))
    raises_naming(UnsupportedError, "initial_state.eligibility", apply, Delta(), q, k, v,
                  initial_state=State(W0, None, W0))
    raises_naming(ValidationError, "initial_state", apply, Hebbian(), q, k, v,
                  initial_state=(W0, None))                            # a bare tuple is ambiguous


@pytest.mark.parametrize("axis,name", [(0, "q"), (1, "q"), (2, "q"), (3, "q"), (-1, "v")])
def test_empty_axes(axis, name):
    q, k, v = good()
    if name == "v":
        v = v[..., :0]
    else:
        sl = [slice(None)] * 4
        sl[axis] = slice(0, 0)
        q, k, v = q[tuple(sl)], k[tuple(sl)], (v[tuple(sl)] if axis < 3 else v)
    raises_naming(ShapeError, name, apply, Hebbian(), q, k, v)


# -- dtypes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["k", "v"])
def test_mismatched_dtypes(name):
    q, k, v = good()
    args = {"q": q, "k": k, "v": v}
    args[name] = args[name].astype(np.float32)
    err = raises_naming(DTypeError, name, apply, Hebbian(), args["q"], args["k"], args["v"])
    assert "float32" in str(err) and "float64" in str(err)
    assert isinstance(err, TypeError)


@pytest.mark.parametrize("name", ["beta", "alpha", "initial_state"])
def test_gate_and_state_dtype_must_match_the_inputs(name):
    q, k, v = good(np.float32)
    kw = {"alpha": np.full((B, H, T), 0.5, np.float32), "beta": np.ones((B, H, T), np.float32)}
    kw[name] = {"beta": np.ones((B, H, T)), "alpha": np.full((B, H, T), 0.5),
                "initial_state": np.zeros((B, H, DV, DK))}[name]            # float64
    raises_naming(DTypeError, name, apply, DecayedHebbian(), q, k, v, **kw)


@pytest.mark.parametrize("bad", [np.zeros((B, H, T, DK), dtype=np.int64),
                                 np.zeros((B, H, T, DK), dtype=bool),
                                 np.zeros((B, H, T, DK), dtype=np.complex128),
                                 np.zeros((B, H, T, DK), dtype=np.float16),
                                 [[1, 2], [3]]])
def test_non_float_inputs(bad):
    _, k, v = good()
    raises_naming(DTypeError, "q", apply, Hebbian(), bad, k, v)


def test_float32_everywhere_is_accepted_and_preserved():
    q, k, v = good(np.float32)
    y, s = apply(GatedDelta(feature_map=L2), q, k, v, alpha=np.full((B, H, T), 0.9, np.float32),
                 beta=np.ones((B, H, T), np.float32), return_state=True)
    assert y.dtype == np.float32 and s.W.dtype == np.float32


# -- non-finite inputs -----------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["q", "k", "v", "beta", "alpha", "initial_state"])
def test_non_finite_inputs(name, bad):
    q, k, v = good()
    arrays = {"q": q, "k": k, "v": v, "beta": np.ones((B, H, T)), "alpha": np.full((B, H, T), 0.5),
              "initial_state": np.zeros((B, H, DV, DK))}
    arrays[name] = arrays[name].copy()
    index = (1, 2, 3) + (0,) * (arrays[name].ndim - 3)
    arrays[name][index] = bad
    q, k, v = arrays.pop("q"), arrays.pop("k"), arrays.pop("v")
    err = raises_naming(NonFiniteError, name, apply, DecayedHebbian(), q, k, v, **arrays)
    assert str(index) in str(err)                                  # the first bad index


#: every chunkwise rule with its kind of gates
CHUNKWISE = {"Delta": (Delta(), None), "GatedDelta": (GatedDelta(), "scalar"), "Hebbian": (Hebbian(), None),
             "DecayedHebbian": (DecayedHebbian(), "scalar"), "DecayedHebbian/key": (DecayedHebbian(), "per_key")}


def _chunk_loops(monkeypatch, case: str, native: str):
    """``(rule, gates)`` of ``CHUNKWISE[case]``, with the compiled (``native="1"``) or numpy
    chunk loops and float32 arithmetic for float32 inputs even at the tests' small sizes."""
    from plastinet.fwp.forms import chunkwise
    monkeypatch.setenv("PLASTINET_NATIVE", native)
    monkeypatch.setattr(chunkwise, "F64_WORK", 0.0)
    return CHUNKWISE[case]


@pytest.mark.parametrize("native", ["1", "0"])
@pytest.mark.parametrize("case", sorted(CHUNKWISE))
@pytest.mark.parametrize("name", ["q", "k", "v"])
def test_non_finite_inputs_found_by_the_chunk_loops(monkeypatch, name, case, native):
    """The chunkwise form leaves the check of q, k, v to its chunk loops (the compiled ones make
    it while reading them): the same error naming the first bad entry, in float32 and float64,
    and still reported before a learning rate out of range, as by the other forms."""
    rule, gates = _chunk_loops(monkeypatch, case, native)
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        shape = (1, 2, 300, 16)
        arrays = {x: rng.normal(size=shape).astype(dtype) * 0.2 for x in ("q", "k", "v")}
        kw = {"beta": rng.uniform(0, 1, shape[:3]).astype(dtype)}
        if gates:
            kw["alpha"] = rng.uniform(0.9, 1, shape[:3] + ((16,) if gates == "per_key" else ())).astype(dtype)
        arrays[name][0, 1, 250, 3] = np.nan
        arrays[name][0, 0, 290, 1] = np.inf                  # first in C order
        err = raises_naming(NonFiniteError, name, apply, rule, *arrays.values(), form="chunkwise",
                            chunk_size=32, **kw)
        assert "(0, 0, 290, 1)" in str(err)
        kw["beta"] = kw["beta"] + 5.0
        raises_naming(NonFiniteError, name, apply, rule, *arrays.values(), form="chunkwise", **kw)


def test_non_finite_modulator_and_auxiliary_state():
    q, k, v = good()
    m = np.ones((B, H, T))
    m[0, 0, 0] = np.nan
    raises_naming(NonFiniteError, "modulator", apply, ThreeFactor(), q, k, v, modulator=m)
    z0 = np.ones((B, H, DK))
    z0[1, 1, 1] = np.inf
    raises_naming(NonFiniteError, "initial_state.normalizer", apply, Hebbian(normalize=True), q, k, v,
                  initial_state=State(np.zeros((B, H, DV, DK)), z0))


# -- ranges ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [Delta(), GatedDelta(decay=0.9)])
@pytest.mark.parametrize("bad", [-1e-9, 2.0 + 1e-9, 5.0, -3.0])
def test_beta_outside_its_range(rule, bad):
    q, k, v = good()
    beta = np.ones((B, H, T))
    beta[1, 1, 1] = bad
    err = raises_naming(RangeError, "beta", apply, rule, q, k, v, beta=beta)
    assert "[0, 2]" in str(err) and type(rule).__name__ in str(err)


@pytest.mark.parametrize("rule", [Delta(), GatedDelta(decay=0.5)])
def test_beta_range_endpoints_are_allowed(rule):
    q, k, v = good()
    k = unit_rows(k)
    for value in (0.0, 2.0):
        y, _ = apply(rule, q, k, v, beta=np.full((B, H, T), value))
        assert np.isfinite(y).all()


def test_hebbian_beta_is_unbounded():
    q, k, v = good()
    y, _ = apply(Hebbian(), q, k, v, beta=np.full((B, H, T), -3.0))      # anti-Hebbian
    y1, _ = apply(Hebbian(), q, k, v)
    assert np.allclose(y, -3.0 * y1)


@pytest.mark.parametrize("rule", [DecayedHebbian(), GatedDelta()])
@pytest.mark.parametrize("bad", [-0.1, 1.0 + 1e-9])
def test_alpha_outside_its_range(rule, bad):
    q, k, v = good()
    alpha = np.full((B, H, T), 0.5)
    alpha[0, 0, 3] = bad
    err = raises_naming(RangeError, "alpha", apply, rule, q, k, v, alpha=alpha)
    assert "[0, 1]" in str(err)


def test_missing_decay_gate():
    q, k, v = good()
    for rule in (DecayedHebbian(), GatedDelta()):
        err = raises_naming(ValidationError, "alpha", apply, rule, q, k, v)
        assert "decay" in str(err)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8", None])
def test_bad_chunk_size(bad):
    q, k, v = good()
    raises_naming(RangeError, "chunk_size", apply, Hebbian(), q, k, v, form="chunkwise",
                  chunk_size=bad)


# -- unsupported combinations ----------------------------------------------------------------

@pytest.mark.parametrize("rule,form", [(GatedDelta(decay=0.5), "parallel"), (Oja(), "parallel"),
                                       (Oja(), "chunkwise"), (ThreeFactor(), "parallel"),
                                       (ThreeFactor(), "chunkwise")])
def test_unsupported_form_for_a_rule(rule, form):
    q, k, v = good()
    err = raises_naming(UnsupportedError, "form", apply, rule, q, k, v, form=form)
    assert type(rule).__name__ in str(err) and "recurrent" in str(err)


@pytest.mark.parametrize("form", ["Parallel", "attention", "", None])
def test_unknown_form(form):
    q, k, v = good()
    err = raises_naming(UnsupportedError, "form", apply, Hebbian(), q, k, v, form=form)
    assert all(f in str(err) for f in FORMS)


def test_gates_a_rule_does_not_have():
    q, k, v = good()
    raises_naming(UnsupportedError, "alpha", apply, Delta(), q, k, v, alpha=np.ones((B, H, T)))
    raises_naming(UnsupportedError, "modulator", apply, Hebbian(), q, k, v, modulator=np.ones((B, H, T)))


def test_unknown_rule():
    q, k, v = good()
    raises_naming(UnsupportedError, "rule", apply, "deltanet", q, k, v)
    raises_naming(ValidationError, "rule", apply, 3, q, k, v)
    y1, _ = apply("delta", q, unit_rows(k), v)                   # registry keys work
    y2, _ = apply(Delta(), q, unit_rows(k), v)
    assert np.array_equal(y1, y2)
    raises_naming(UnsupportedError, "rule", get_rule, "nope")


def test_rule_parameters_are_validated():
    raises_naming(RangeError, "gamma", ThreeFactor, gamma=1.5)
    raises_naming(RangeError, "decay", DecayedHebbian, decay=-0.1)
    raises_naming(RangeError, "eps", Hebbian, eps=-1.0)
    raises_naming(UnsupportedError, "normalize", Hebbian, normalize="yes")
    raises_naming(ValidationError, "feature_map", Delta, feature_map="tanh")
    raises_naming(ValidationError, "beta", Delta, beta=0.5)          # beta is a gate, not a parameter
    rule = ThreeFactor()
    with pytest.raises(RangeError, match="gamma"):
        rule.gamma = -0.5                                             # validated on set, too
    assert rule.gamma == 0.0


def test_errors_are_value_errors_for_generic_handlers():
    q, k, v = good()
    with pytest.raises(ValueError):
        apply(Delta(), q, k, v, beta=np.full((B, H, T), 3.0))


# -- non-finite state during a run -----------------------------------------------------------

@pytest.mark.parametrize("dtype,big", [(np.float64, 1e308), (np.float32, 3e38)])
@pytest.mark.parametrize("form", Hebbian.forms)
@pytest.mark.parametrize("step", [0, 5, 16, 40])
def test_overflow_names_step_and_head(form, step, dtype, big):
    """Hebbian with v = big from ``step`` on (only in batch 1, head 2): W overflows at step+1."""
    q = np.ones((2, 3, 60, 1), dtype)
    v = np.zeros((2, 3, 60, 2), dtype)
    v[1, 2, step:] = big
    with pytest.raises(NumericalError) as info:
        apply(Hebbian(), q, q, v, form=form, chunk_size=16)
    err = info.value
    assert err.step == step + 1
    assert f"step {step + 1}" in str(err) and "batch 1, head 2" in str(err)
    assert err.where == "batch 1, head 2"
    assert isinstance(err, FloatingPointError) and not isinstance(err, ValidationError)


@pytest.mark.parametrize("form", Delta.forms)
def test_expanding_delta_run_raises_at_the_overflow_step(form):
    """beta ||k||^2 = 8: the error component grows 7x per step and overflows near step 364."""
    rng = np.random.default_rng(1)
    T = 600
    k = np.broadcast_to(2 * unit_rows(rng.normal(size=4)), (1, 2, T, 4)).copy()
    v = rng.normal(size=(1, 2, T, 3))
    beta = np.zeros((1, 2, T))
    beta[0, 1, 100:] = 2.0                                      # head 1 expands from step 100
    # the recurrence, by hand: W_t k = (1 - 8) W_{t-1} k + 8 v_t
    with np.errstate(over="ignore", invalid="ignore"):
        Wk = np.zeros(3)
        for t in range(T):
            Wk = Wk + beta[0, 1, t] * (v[0, 1, t] - Wk) * 4.0
            if not np.isfinite(Wk).all():
                break
    expected = t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableUpdateWarning)
        with pytest.raises(NumericalError) as info:
            apply(Delta(), k, k, v, beta=beta, form=form, chunk_size=64)
    assert info.value.where == "batch 0, head 1"
    assert abs(info.value.step - expected) <= 1, (info.value.step, expected)   # rounding near overflow
    if form != "recurrent":                                 # every form names the same step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnstableUpdateWarning)
            with pytest.raises(NumericalError) as ref:
                apply(Delta(), k, k, v, beta=beta)
        assert info.value.step == ref.value.step


def test_numerical_error_is_raised_for_oja_and_three_factor():
    q = np.full((1, 1, 50, 2), 1e100)
    with pytest.raises(NumericalError) as info:
        apply(Oja(), q, q, np.zeros((1, 1, 50, 1)), initial_state=np.ones((1, 1, 1, 2)))
    assert info.value.step is not None and info.value.where == "batch 0, head 0"
    v = np.zeros((1, 2, 30, 1))
    v[0, 1, 10] = 1e200
    with pytest.raises(NumericalError) as info:
        apply(ThreeFactor(gamma=1.0), np.ones((1, 2, 30, 1)), np.full((1, 2, 30, 1), 1e150), v)
    assert info.value.step == 10 and info.value.where == "batch 0, head 1"


def test_finite_runs_do_not_raise_near_the_limit():
    q = np.ones((1, 1, 3, 1))
    v = np.full((1, 1, 3, 1), 5e307)                    # 1.5e308 < max float64
    y, W = apply(Hebbian(), q, q, v)
    assert np.isfinite(y).all() and W[0, 0, 0, 0] == 1.5e308


# -- the expanding-update warning ------------------------------------------------------------

def count(records, cls=UnstableUpdateWarning):
    return sum(issubclass(r.category, cls) for r in records)


@pytest.mark.parametrize("rule", [Delta(), GatedDelta(decay=0.99)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_expanding_update_warns_once_per_call(rule, dtype):
    rng = np.random.default_rng(2)
    k = unit_rows(rng.normal(size=(2, 2, 40, 4))).astype(dtype)
    k[:, :, 10:30] *= 1.5                                  # ||k||^2 = 2.25: many offending steps
    v = rng.normal(size=(2, 2, 40, 3)).astype(dtype)
    beta = np.ones((2, 2, 40), dtype)
    for form in rule.forms:
        with pytest.warns(UnstableUpdateWarning) as records:
            apply(rule, k, k, v, beta=beta, form=form, chunk_size=8)
        assert count(records) == 1
        message = str(records[0].message)
        assert "2.25" in message and "> 2" in message and "step 10" in message
        assert records[0].filename == __file__                # points at the caller of apply
    with pytest.warns(UnstableUpdateWarning) as records:     # and again on the next call
        apply(rule, k, k, v, beta=beta)
        apply(rule, k, k, v, beta=beta)
    assert count(records) == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_warning_at_the_stability_limit(dtype, recwarn):
    """beta ||k||^2 = 2 exactly (unit keys, beta = 2, also in float32) is allowed silently."""
    rng = np.random.default_rng(3)
    for d in (3, 64, 512):
        k = unit_rows(rng.normal(size=(1, 2, 200, d))).astype(dtype)
        v = rng.normal(size=(1, 2, 200, 2)).astype(dtype)
        apply(Delta(), k, k, v, beta=np.full((1, 2, 200), 2.0, dtype))
        apply(Delta(feature_map=L2), k, k, v, beta=np.full((1, 2, 200), 2.0, dtype))
    assert count(recwarn.list) == 0


def test_no_warning_for_rounding_of_wide_float32_unit_keys(recwarn):
    """L2-normalised float32 keys with d = 16384: ||k||^2 rounds to 1 + 1.4e-6 > 1 + 1e-6."""
    rng = np.random.default_rng(0)
    T = 500
    x = rng.normal(size=(1, 1, T, 16384)).astype(np.float32)
    v = np.zeros((1, 1, T, 1), np.float32)
    beta = np.full((1, 1, T), 2.0, np.float32)
    apply(Delta(feature_map=L2), x, x, v, beta=beta)
    assert count(recwarn.list) == 0
    k = L2(x)
    assert float(np.einsum("...d,...d->...", k, k).max()) > 1 + 1e-6     # the rounding is real
    with pytest.warns(UnstableUpdateWarning):                            # 0.1 % too much warns
        apply(Delta(), k, 1.0005 * k, v, beta=beta)


def test_no_warning_for_rules_without_the_delta_update(recwarn):
    q = np.full((1, 1, 5, 3), 10.0)
    for rule in (Hebbian(), DecayedHebbian(decay=0.5), Oja(), ThreeFactor()):
        apply(rule, q * 1e-3 if isinstance(rule, Oja) else q, q * 1e-3 if isinstance(rule, Oja) else q,
              np.ones((1, 1, 5, 2)))
    assert count(recwarn.list) == 0


@pytest.mark.parametrize("native", ["1", "0"])
@pytest.mark.parametrize("case", ["GatedDelta", "DecayedHebbian", "DecayedHebbian/key"])
@pytest.mark.parametrize("bad", [np.nan, -np.inf, -0.25, 1.5])
def test_gates_out_of_range_found_after_the_chunk_loops(monkeypatch, bad, case, native):
    """The chunkwise form leaves the check of the decay gates' values to its chunk loops: the
    same error as the other forms, naming the same entry, in float32 and float64; still after
    a non-finite q (an earlier argument) and before an initial state of the wrong shape (a
    later one); gates of -0 are accepted."""
    rule, gates = _chunk_loops(monkeypatch, case, native)
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64):
        shape = (1, 2, 300, 16)
        q, k, v = (rng.normal(size=shape).astype(dtype) * 0.2 for _ in range(3))
        beta = rng.uniform(0, 1, shape[:3]).astype(dtype)
        alpha = rng.uniform(0.9, 1, shape[:3] + ((16,) if gates == "per_key" else ())).astype(dtype)
        alpha[(0, 1, 250) + (3,) * (alpha.ndim - 3)] = bad
        expected = type(raises_naming(ValidationError, "alpha", apply, rule, q, k, v, beta=beta, alpha=alpha))
        err = raises_naming(expected, "alpha", apply, rule, q, k, v, beta=beta, alpha=alpha,
                            form="chunkwise", chunk_size=32)
        assert str(err) == str(raises_naming(expected, "alpha", apply, rule, q, k, v, beta=beta, alpha=alpha))
        q_bad = q.copy()
        q_bad[0, 0, 5, 0] = np.nan
        raises_naming(NonFiniteError, "q", apply, rule, q_bad, k, v, beta=beta, alpha=alpha, form="chunkwise")
        raises_naming(expected, "alpha", apply, rule, q, k, v, beta=beta, alpha=alpha, form="chunkwise",
                      initial_state=np.zeros((1, 2, 3, 3), dtype))
        alpha[(0, 1, 250) + (3,) * (alpha.ndim - 3)] = -0.0
        y, W = apply(rule, q, k, v, beta=beta, alpha=alpha, form="chunkwise", chunk_size=32)
        y_ref, W_ref = apply(rule, q, k, v, beta=beta, alpha=alpha)
        assert max_abs(y, y_ref) < 1e-4 and max_abs(W, W_ref) < 1e-4
