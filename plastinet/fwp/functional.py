"""The functional core of the rate engine: :func:`apply`.

``apply`` validates its inputs once, applies the rule's feature map to keys and queries,
merges batch and head axes, and hands plain arrays to the engine of the requested form
(:mod:`plastinet.fwp.forms`). It owns the read-out convention ``y_t = W_t phi(q_t)`` (the
read-out includes step ``t``'s write), the defaults of the gates, the attention normaliser
of the Hebbian rule, and the numerical guards.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from plastinet.errors import (
    NonFiniteError,
    RangeError,
    ShapeError,
    UnstableUpdateWarning,
    UnsupportedError,
    ValidationError,
    check_numerical_policy,
    report_numerical,
)
from plastinet.fwp.forms import chunkwise, parallel, recurrent
from plastinet.fwp.rules import RULES, DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, ThreeFactor, get_rule
from plastinet.validation import check_finite, check_range, check_shape, first_nonfinite, float_array

__all__ = ["apply", "State", "FORMS", "prepare"]

FORMS = ("recurrent", "parallel", "chunkwise")
_OBJ = "fwp.apply"


class State(NamedTuple):
    """Full state of a rule: the fast weights and, where the rule has one, its auxiliary state.

    Attributes
    ----------
    W : ndarray, shape (B, H, d_v, d_phi)
        Fast weights (rows: post/value neurons; columns: pre/key features).
    normalizer : ndarray, shape (B, H, d_phi), or None
        Attention normaliser ``z`` of ``Hebbian(normalize=True)``.
    eligibility : ndarray, shape (B, H, d_v, d_phi), or None
        Eligibility trace ``E`` of :class:`~plastinet.fwp.ThreeFactor`.
    """

    W: np.ndarray
    normalizer: np.ndarray | None = None
    eligibility: np.ndarray | None = None


class Prepared(NamedTuple):
    """Validated inputs of :func:`apply`, batch and head merged (``N = B * H``)."""

    rule: Rule
    shape: tuple[int, int, int]       # B, H, T
    q: np.ndarray                     # (N, T, d_phi), after phi
    k: np.ndarray                     # (N, T, d_phi), after phi
    v: np.ndarray                     # (N, T, d_v)
    beta: np.ndarray                  # (N, T)
    alpha: np.ndarray | None          # (N, T, 1) or (N, T, d_phi)
    modulator: np.ndarray | None      # (N, T)
    state: State                      # merged (N, ...)
    q_cache: tuple
    k_cache: tuple
    unchecked_alpha: np.ndarray | None = None   # as given, range not yet checked (see prepare)


def _coerce_rule(rule: Any) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str):
        return get_rule(rule)
    raise ValidationError(_OBJ, "rule", rule,
                          "expected a rule object (Hebbian, DecayedHebbian, Delta, GatedDelta, Oja, "
                          "ThreeFactor) or a rule name: " + ", ".join(RULES))


def _gate(value: Any, name: str, dtype: np.dtype, shape: tuple[int, ...], rule: Rule,
          low: float, high: float, labels: tuple[str, ...], default: float | None,
          per_key: int | None = None, check_values: bool = True) -> np.ndarray:
    """Validate a per-step gate (beta, alpha, modulator), or fill it with ``default``.

    ``check_values=False``: only its type and shape (the caller checks the values later
    with :func:`_check_gate_values`).
    """
    if value is None:
        return np.full(shape, default, dtype=dtype)
    arr = float_array(value, _OBJ, name, dtype)
    if per_key is not None and arr.ndim == 4:
        check_shape(arr, shape + (per_key,), _OBJ, name, labels + ("d_phi",))
    else:
        check_shape(arr, shape, _OBJ, name, labels)
    if check_values:
        _check_gate_values(arr, name, rule, low, high)
    return arr


def _check_gate_values(arr: np.ndarray, name: str, rule: Rule, low: float, high: float) -> None:
    """Require the entries of gate ``arr`` to be finite and lie in ``[low, high]``."""
    if low == -np.inf and high == np.inf:
        check_finite(arr, _OBJ, name)
    else:                                  # also rejects non-finite entries, in the same pass
        try:
            check_range(arr, low, high, _OBJ, name)
        except RangeError as err:
            raise RangeError(_OBJ, name, arr, f"{type(rule).__name__} allows {name} in "
                             f"[{low:g}, {high:g}]; {err.allowed.split('; ')[-1]}") from None


def _screened_by_loop(rule: Rule, form: str) -> bool:
    """Whether :func:`apply` leaves the NaN/Inf check of ``q``, ``k``, ``v`` to the chunk loops.

    The chunkwise engines check the arrays as they read them (``LoopChecks(inputs=True)``,
    in the compiled loops without a pass over memory of their own); they see ``phi(q)``
    and ``phi(k)``, so only where the feature map passes its input through unchanged.
    """
    phi = rule.phi
    return form == "chunkwise" and phi.kind == "identity" and phi.normalize is None


def _check_inputs(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
    """Raise :class:`NonFiniteError` for the first of ``q``, ``k``, ``v`` with a NaN/Inf entry."""
    for name, arr in (("q", q), ("k", k), ("v", v)):
        check_finite(arr, _OBJ, name)


def prepare(rule: Any, q: Any, k: Any, v: Any, *, beta: Any = None, alpha: Any = None,
            modulator: Any = None, initial_state: Any = None, form: str = "recurrent",
            loop_screen: bool = False) -> Prepared:
    """Validate the inputs of :func:`apply` and bring them to the engines' layout.

    Used by :func:`apply` and by the gradient code, so that both accept exactly the same
    inputs. See :func:`apply` for the parameters. ``loop_screen``: leave the NaN/Inf check
    of ``q``, ``k`` and ``v`` to the engine where :func:`_screened_by_loop` allows it (the
    caller then runs it with ``LoopChecks(inputs=True)``); an error in the other inputs is still
    reported after a non-finite ``q``, ``k`` or ``v``, as without. With ``loop_screen`` and
    the chunkwise form, the values of a given ``alpha`` are left to the chunk loops too
    (``unchecked_alpha``; the caller checks them unless the loops did: see :func:`apply`).
    """
    rule = _coerce_rule(rule)
    if form not in FORMS:
        raise UnsupportedError(_OBJ, "form", form, "allowed forms: " + ", ".join(FORMS))
    if form not in rule.forms:
        raise UnsupportedError(_OBJ, "form", form,
                               f"{type(rule).__name__} has the forms {', '.join(rule.forms)}")
    q = float_array(q, _OBJ, "q")
    dtype = q.dtype
    k = float_array(k, _OBJ, "k", dtype)
    v = float_array(v, _OBJ, "v", dtype)
    check_shape(q, (None, None, None, None), _OBJ, "q", ("B", "H", "T", "d_k"))
    B, H, T, d_k = q.shape
    check_shape(k, (B, H, T, d_k), _OBJ, "k", ("B", "H", "T", "d_k"))
    check_shape(v, (B, H, T, None), _OBJ, "v", ("B", "H", "T", "d_v"))
    d_v = v.shape[-1]
    if min(B, H, T, d_k, d_v) == 0:
        name, arr = ("v", v) if min(B, H, T, d_k) > 0 else ("q", q)
        raise ShapeError(_OBJ, name, arr, f"all sizes must be >= 1, got q {q.shape} and v {v.shape}")
    in_loop = loop_screen and _screened_by_loop(rule, form)
    defer_alpha = loop_screen and form == "chunkwise" and alpha is not None
    if not in_loop:
        _check_inputs(q, k, v)
    gates = (rule, beta, alpha, modulator, initial_state, dtype, B, H, T, d_k, d_v)
    try:
        beta_arr, alpha_arr, mod_arr, state = _gates_and_state(*gates, defer_alpha=defer_alpha)
    except ValidationError:
        if in_loop:                    # a non-finite q, k or v is reported first, as without
            _check_inputs(q, k, v)
        if defer_alpha:                # the first error in the order of the arguments
            _gates_and_state(*gates)
        raise
    phi = rule.phi
    d_phi = phi.out_dim(d_k)
    qf, q_cache = phi.forward(q)
    kf, k_cache = phi.forward(k)
    N = B * H
    merged = State(*(None if s is None else s.reshape((N,) + s.shape[2:]) for s in state))
    unchecked = alpha_arr.reshape(np.shape(alpha)) if defer_alpha and alpha_arr is not None else None
    return Prepared(rule, (B, H, T), qf.reshape(N, T, d_phi), kf.reshape(N, T, d_phi),
                    v.reshape(N, T, d_v), beta_arr.reshape(N, T), alpha_arr, mod_arr, merged,
                    q_cache, k_cache, unchecked)


def _gates_and_state(rule: Rule, beta: Any, alpha: Any, modulator: Any, initial_state: Any,
                     dtype: np.dtype, B: int, H: int, T: int, d_k: int, d_v: int,
                     defer_alpha: bool = False) -> tuple:
    """The validated ``beta``, ``alpha``, ``modulator`` and initial state of :func:`prepare`
    (``defer_alpha``: the values of ``alpha`` not yet checked)."""
    phi = rule.phi
    d_phi = phi.out_dim(d_k)
    labels = ("B", "H", "T")

    beta_arr = _gate(beta, "beta", dtype, (B, H, T), rule, *rule.beta_range, labels, 1.0)
    if rule.uses_alpha:
        decay = rule.decay
        if alpha is None and decay is None:
            raise ValidationError(_OBJ, "alpha", None, f"{type(rule).__name__} needs a decay gate: "
                                  "pass alpha (B, H, T) or construct the rule with decay=...")
        per_key = d_phi if isinstance(rule, DecayedHebbian) else None
        alpha_arr = _gate(alpha, "alpha", dtype, (B, H, T), rule, 0.0, 1.0, labels,
                          decay, per_key=per_key, check_values=not defer_alpha)
        alpha_arr = alpha_arr.reshape(B * H, T, -1)
    elif alpha is not None:
        raise UnsupportedError(_OBJ, "alpha", alpha, f"{type(rule).__name__} has no decay gate; "
                               "use DecayedHebbian or GatedDelta")
    else:
        alpha_arr = None
    if rule.uses_modulator:
        mod_arr = _gate(modulator, "modulator", dtype, (B, H, T), rule, -np.inf, np.inf, labels, 1.0)
        mod_arr = mod_arr.reshape(B * H, T)
    elif modulator is not None:
        raise UnsupportedError(_OBJ, "modulator", modulator,
                               f"{type(rule).__name__} has no neuromodulator; use ThreeFactor")
    else:
        mod_arr = None
    return beta_arr, alpha_arr, mod_arr, _initial_state(rule, initial_state, dtype, B, H, d_v, d_phi)


def _initial_state(rule: Rule, value: Any, dtype: np.dtype, B: int, H: int, d_v: int,
                   d_phi: int) -> State:
    """Validate ``initial_state`` (an array ``W0`` or a :class:`State`) and fill defaults."""
    needs_z = isinstance(rule, Hebbian) and rule.normalize
    needs_e = isinstance(rule, ThreeFactor)
    if value is None:
        W0, z0, E0 = None, None, None
    elif isinstance(value, State):
        W0, z0, E0 = value
    elif isinstance(value, tuple):
        raise ValidationError(_OBJ, "initial_state", value,
                              "expected an array W0 (B, H, d_v, d_phi) or a plastinet.fwp.State")
    else:
        W0, z0, E0 = value, None, None
    shape_w = (B, H, d_v, d_phi)
    labels_w = ("B", "H", "d_v", "d_phi")
    if W0 is None:
        W0 = np.zeros(shape_w, dtype=dtype)
    else:
        W0 = float_array(W0, _OBJ, "initial_state", dtype)
        check_shape(W0, shape_w, _OBJ, "initial_state", labels_w)
        check_finite(W0, _OBJ, "initial_state")
    if needs_z:
        if z0 is None:
            z0 = np.zeros((B, H, d_phi), dtype=dtype)
        else:
            z0 = float_array(z0, _OBJ, "initial_state.normalizer", dtype)
            check_shape(z0, (B, H, d_phi), _OBJ, "initial_state.normalizer", ("B", "H", "d_phi"))
            check_finite(z0, _OBJ, "initial_state.normalizer")
    elif z0 is not None:
        raise UnsupportedError(_OBJ, "initial_state.normalizer", z0,
                               "only Hebbian(normalize=True) has a normaliser state")
    if needs_e:
        if E0 is None:
            E0 = np.zeros(shape_w, dtype=dtype)
        else:
            E0 = float_array(E0, _OBJ, "initial_state.eligibility", dtype)
            check_shape(E0, shape_w, _OBJ, "initial_state.eligibility", labels_w)
            check_finite(E0, _OBJ, "initial_state.eligibility")
    elif E0 is not None:
        raise UnsupportedError(_OBJ, "initial_state.eligibility", E0,
                               "only ThreeFactor has an eligibility state")
    return State(W0, z0, E0)


def _warn_expanding(p: Prepared) -> None:
    """Warn once if a delta update ``I - beta k k^T`` expands (``beta ||k||^2 > 2``)."""
    gain = p.beta * np.einsum("ntd,ntd->nt", p.k, p.k)
    # slack for the rounding of ||k||^2, a length-d_phi sum (float32 unit keys exceed 1 by ~1e-6)
    slack = max(1e-6, 4.0 * np.sqrt(p.k.shape[-1]) * float(np.finfo(p.k.dtype).eps))
    expanding = gain > 2.0 * (1.0 + slack)
    if expanding.any():
        t = int(np.argmax(expanding.any(axis=0)))        # the first step that expands, ...
        n = int(np.argmax(expanding[:, t]))              # ... in the first head where it does
        b, h = divmod(n, p.shape[1])
        warnings.warn(
            f"{type(p.rule).__name__}: beta*||phi(k)||^2 reaches {float(gain.max()):.4g} > 2 (first "
            f"at step {t}, batch {b}, head {h}): the delta update expands and the memory may "
            "diverge; normalise keys (FeatureMap(..., normalize='l2')) or reduce beta",
            UnstableUpdateWarning, stacklevel=3)


def run_form(p: Prepared, form: str, chunk_size: int,
             checks: chunkwise.LoopChecks | None = None) -> tuple[np.ndarray, State]:
    """Dispatch prepared inputs to an engine; returns merged ``y (N, T, d_v)`` and state.

    ``checks`` (chunkwise form only): what the chunk loops are to check and report (see
    :class:`~plastinet.fwp.forms.chunkwise.LoopChecks`).
    """
    rule, q, k, v, beta, alpha = p.rule, p.q, p.k, p.v, p.beta, p.alpha
    W0 = p.state.W
    engine = {"recurrent": recurrent, "parallel": parallel, "chunkwise": chunkwise}[form]
    extra = (chunk_size, checks) if form == "chunkwise" else ()
    z = None
    E = None
    if isinstance(rule, Hebbian):
        y, W = engine.hebbian(q, k, v, beta, W0, *extra)
        if rule.normalize:
            zs = p.state.normalizer[:, None, :] + np.cumsum(k, axis=1)
            y = y / ((zs * q).sum(axis=-1, keepdims=True) + rule.eps)
            z = zs[:, -1]
            if checks is not None:               # the loops did not see the normalised read-outs
                checks.outputs_finite = False
    elif isinstance(rule, DecayedHebbian):
        y, W = engine.decayed_hebbian(q, k, v, beta, alpha, W0, *extra)
    elif isinstance(rule, Delta):
        y, W = engine.delta(q, k, v, beta, W0, *extra)
    elif isinstance(rule, GatedDelta):
        y, W = engine.gated_delta(q, k, v, beta, alpha, W0, *extra)
    elif isinstance(rule, Oja):
        y, W = engine.oja(q, k, v, beta, W0)
    elif isinstance(rule, ThreeFactor):
        y, W, E = engine.three_factor(q, k, v, beta, p.modulator, rule.gamma, W0, p.state.eligibility)
    else:  # pragma: no cover - every registered rule is handled above
        raise UnsupportedError(_OBJ, "rule", rule, "no engine for this rule")
    return y, State(W, z, E)


def _nonfinite_at(p: Prepared, y: np.ndarray, state: State) -> tuple[int, int] | None:
    """``(head index n, step)`` of the earliest non-finite read-out, or None.

    Earliest in time across every batch and head (ties: the lowest index ``n``); if every
    read-out is finite but the final state is not, its first head at the last step.
    """
    if first_nonfinite(y) is not None:
        bad = ~np.isfinite(y).all(axis=-1)                 # (N, T)
        step = int(np.argmax(bad.any(axis=0)))
        return int(np.argmax(bad[:, step])), step
    where_w = first_nonfinite(state.W)
    return None if where_w is None else (where_w[0], p.shape[2] - 1)


def _check_output(p: Prepared, y: np.ndarray, state: State, form: str = "recurrent",
                  on_numerical: str = "raise") -> None:
    """Report (raise :class:`NumericalError`, or warn) the first step and head whose state is non-finite.

    The parallel and chunkwise forms mix steps (a product ``0 * inf`` in a masked matrix
    product spreads a later overflow to earlier read-outs), so on failure the step is
    located with the recurrent form, the rule's definition, when it fails too.
    """
    where = _nonfinite_at(p, y, state)
    if where is None:
        return
    if form != "recurrent":
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            where = _nonfinite_at(p, *run_form(p, "recurrent", 1)) or where
    n, step = where
    b, h = divmod(int(n), p.shape[1])
    report_numerical(
        on_numerical,
        f"{type(p.rule).__name__}: the fast-weight state became non-finite at step {step} "
        f"(batch {b}, head {h}); reduce beta, normalise keys, or check the inputs' scale",
        step=int(step), where=f"batch {b}, head {h}", stacklevel=4)


def apply(rule: Rule | str, q: Any, k: Any, v: Any, *, beta: Any = None, alpha: Any = None,
          modulator: Any = None, initial_state: Any = None, form: str = "recurrent",
          chunk_size: int = 64, return_state: bool = False,
          on_numerical: str = "raise") -> tuple[np.ndarray, Any]:
    """Run a fast-weight rule over a sequence: ``y_t = W_t phi(q_t)``.

    Parameters
    ----------
    rule : Rule or str
        A rule object (:class:`Hebbian`, :class:`DecayedHebbian`, :class:`Delta`,
        :class:`GatedDelta`, :class:`Oja`, :class:`ThreeFactor`) or its registry key.
        Its feature map ``phi`` is applied to ``q`` and ``k``.
    q, k : ndarray, shape (B, H, T, d_k)
        Queries and keys (before ``phi``); float32 or float64, all inputs one dtype.
    v : ndarray, shape (B, H, T, d_v)
        Values (the post-synaptic targets / teacher).
    beta : ndarray, shape (B, H, T), optional
        Learning rate per step (default 1). Delta and GatedDelta need ``[0, 2]``.
    alpha : ndarray, shape (B, H, T) or (B, H, T, d_phi), optional
        Decay gate in ``[0, 1]`` (DecayedHebbian: scalar or per key feature; GatedDelta:
        scalar). Defaults to the rule's ``decay``.
    modulator : ndarray, shape (B, H, T), optional
        Neuromodulator ``m_t`` of ThreeFactor (default 1).
    initial_state : ndarray (B, H, d_v, d_phi) or State, optional
        Fast weights before step 0 (default zeros). Rules with auxiliary state
        (normalised Hebbian, ThreeFactor) take a :class:`State` to resume exactly.
    form : {"recurrent", "parallel", "chunkwise"}
        Computational form. All rules have ``"recurrent"``; Hebbian, DecayedHebbian and
        Delta have ``"parallel"``; Hebbian, DecayedHebbian, Delta and GatedDelta have
        ``"chunkwise"``. The forms agree to rounding error.
    chunk_size : int
        Chunk length of the chunkwise form (any ``T`` works; the last chunk is padded).
    return_state : bool
        Return a :class:`State` instead of the bare final weights.
    on_numerical : {"raise", "warn"}
        If the state becomes non-finite: raise :class:`NumericalError` (default), or warn
        :class:`~plastinet.errors.NumericalWarning` and return the non-finite arrays.

    Returns
    -------
    y : ndarray, shape (B, H, T, d_v)
        Read-outs ``y_t = W_t phi(q_t)`` (after step ``t``'s write), same dtype as ``q``.
    W_final : ndarray, shape (B, H, d_v, d_phi), or State
        Fast weights after the last step.

    Raises
    ------
    ValidationError
        (and its subclasses ShapeError, DTypeError, NonFiniteError, RangeError,
        UnsupportedError) for bad inputs; the message names the argument.
    NumericalError
        If the state becomes non-finite; names the step and head.

    Warns
    -----
    UnstableUpdateWarning
        Once per call, if a (gated) delta update expands: ``beta ||phi(k)||^2 > 2``.
    NumericalWarning
        With ``on_numerical="warn"``, instead of the NumericalError.

    Examples
    --------
    >>> import numpy as np
    >>> from plastinet.fwp import apply, Delta
    >>> rng = np.random.default_rng(0)
    >>> k = rng.normal(size=(1, 1, 5, 4)); k /= np.linalg.norm(k, axis=-1, keepdims=True)
    >>> v = rng.normal(size=(1, 1, 5, 3))
    >>> y, W = apply(Delta(), k, k, v)              # query with the keys just written
    >>> bool(np.allclose(y, v))                      # beta = 1 recalls the latest value
    True
    """
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise RangeError(_OBJ, "chunk_size", chunk_size, "expected a positive integer")
    check_numerical_policy(_OBJ, on_numerical)
    p = prepare(rule, q, k, v, beta=beta, alpha=alpha, modulator=modulator,
                initial_state=initial_state, form=form, loop_screen=True)
    B, H, T = p.shape
    checks = chunkwise.LoopChecks(inputs=_screened_by_loop(p.rule, form)) if form == "chunkwise" else None
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            y, state = run_form(p, form, min(int(chunk_size), T), checks)   # no padding beyond T
    except NonFiniteError:             # found by the chunk loop: name the entry as prepare does
        _check_inputs(*(x.reshape(B, H, T, -1) for x in (p.q, p.k, p.v)))
        raise
    # where the chunk loops recorded them, the gates, gain and finite outputs spare a pass over
    # memory each
    if p.unchecked_alpha is not None and not checks.gates_ok:
        _check_gate_values(p.unchecked_alpha, "alpha", p.rule, 0.0, 1.0)
    if isinstance(p.rule, (Delta, GatedDelta)) and not (checks is not None and checks.gain <= 2.0):
        _warn_expanding(p)
    if checks is None or not checks.outputs_finite:
        _check_output(p, y, state, form, on_numerical)
    y = y.reshape(B, H, T, -1)
    full = State(*(None if s is None else s.reshape((B, H) + s.shape[1:]) for s in state))
    return (y, full) if return_state else (y, full.W)
