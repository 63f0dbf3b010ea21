"""Reverse-mode gradients of the rate engine: :func:`vjp`.

``vjp`` returns the vector-Jacobian product of :func:`plastinet.fwp.apply` for given
cotangents of the read-outs and of the final state. It validates its inputs with the same
code as ``apply`` (:func:`plastinet.fwp.functional.prepare`), dispatches to a backward
engine and pulls the key and query gradients back through the rule's feature map.

Engines (see ``docs/gradients.md``):

* :mod:`~plastinet.fwp.gradients.recurrent` -- every rule; checkpointed (``O(sqrt(T))``
  states kept), exact.
* :mod:`~plastinet.fwp.gradients.chunkwise` -- Hebbian, DecayedHebbian, Delta, GatedDelta;
  keeps only the ``ceil(T / C)`` chunk-entry states. ``form="parallel"`` also uses it (the
  forward forms agree, so their gradients do).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet.errors import NumericalError, RangeError, UnsupportedError, ValidationError
from plastinet.fwp.forms import chunkwise as chunkwise_forward
from plastinet.fwp.forms import recurrent as recurrent_forward
from plastinet.fwp.functional import Prepared, State, _warn_expanding, prepare
from plastinet.fwp.gradients import chunkwise, recurrent
from plastinet.fwp.rules import DecayedHebbian, Delta, GatedDelta, Hebbian
from plastinet.validation import check_finite, check_shape, first_nonfinite, float_array

__all__ = ["vjp"]

_OBJ = "fwp.vjp"


def _cotangent(value: Any, name: str, dtype: np.dtype, shape: tuple[int, ...],
               labels: tuple[str, ...]) -> np.ndarray:
    """A validated cotangent array, or zeros for ``None``."""
    if value is None:
        return np.zeros(shape, dtype=dtype)
    arr = float_array(value, _OBJ, name, dtype)
    check_shape(arr, shape, _OBJ, name, labels)
    check_finite(arr, _OBJ, name)
    return arr


def _state_cotangent(p: Prepared, dW: Any, d_v: int, d_phi: int) -> State:
    """Validate ``dW`` (array or :class:`State`) and return it merged, zeros filled in."""
    B, H, _ = p.shape
    N = B * H
    dtype = p.q.dtype
    if isinstance(dW, State):
        W, z, E = dW
    elif isinstance(dW, tuple):
        raise ValidationError(_OBJ, "dW", dW, "expected an array (B, H, d_v, d_phi) or a "
                                              "plastinet.fwp.State")
    else:
        W, z, E = dW, None, None
    has_z = p.state.normalizer is not None
    has_e = p.state.eligibility is not None
    if z is not None and not has_z:
        raise UnsupportedError(_OBJ, "dW.normalizer", z,
                               "only Hebbian(normalize=True) has a normaliser state")
    if E is not None and not has_e:
        raise UnsupportedError(_OBJ, "dW.eligibility", E, "only ThreeFactor has an eligibility state")
    labels = ("B", "H", "d_v", "d_phi")
    W = _cotangent(W, "dW", dtype, (B, H, d_v, d_phi), labels).reshape(N, d_v, d_phi)
    if has_z:
        z = _cotangent(z, "dW.normalizer", dtype, (B, H, d_phi),
                       ("B", "H", "d_phi")).reshape(N, d_phi)
    if has_e:
        E = _cotangent(E, "dW.eligibility", dtype, (B, H, d_v, d_phi), labels).reshape(N, d_v, d_phi)
    return State(W, z if has_z else None, E if has_e else None)


def _engine(p: Prepared, form: str) -> str:
    """``"chunkwise"`` or ``"recurrent"``: the backward engine for ``p`` and ``form``."""
    if form == "recurrent":
        return "recurrent"
    if isinstance(p.rule, (DecayedHebbian, GatedDelta)) and float(p.alpha.min()) < chunkwise.MIN_GATE:
        return "recurrent"
    return "chunkwise"


def _own_features(p: Prepared) -> bool:
    """Whether the mapped ``q`` and ``k`` of ``p`` are arrays of their own that the backward may
    overwrite: not the caller's arrays nor anything the feature map's backward reads (its
    caches), C-contiguous and writeable. True for normalised maps (``phi(x) / n(x)`` is a new
    array), False for the identity map (``phi(x)`` is ``x``)."""
    def own(mapped: np.ndarray, cache: tuple) -> bool:
        return (mapped.flags.c_contiguous and mapped.flags.writeable and
                not any(isinstance(c, np.ndarray) and np.may_share_memory(mapped, c) for c in cache))
    return own(p.q, p.q_cache) and own(p.k, p.k_cache) and not np.may_share_memory(p.q, p.k)


def _core(p: Prepared, dy: np.ndarray, dstate: State, engine: str, C: int,
          overwrite: bool = False) -> dict[str, np.ndarray]:
    """Gradients of the rule without a normaliser, merged layout; keys as in :func:`vjp`.

    ``overwrite``: the chunkwise engine may return the gradients of the mapped ``q`` and ``k``
    in their buffers (see :func:`_own_features`; the caller must not read them afterwards)."""
    rule = p.rule
    if engine == "recurrent":
        dS = (dstate.W,) if dstate.eligibility is None else (dstate.W, dstate.eligibility)
        grads, dq, dS0 = recurrent.backward(p, dy, dS)
        out = {"q": dq, "k": grads.k, "v": grads.v, "beta": grads.beta, "alpha": grads.alpha,
               "modulator": grads.modulator, "W0": dS0[0]}
        if len(dS0) > 1:
            out["E0"] = dS0[1]
        return out
    args = (p.q, p.k, p.v, p.beta)
    if isinstance(rule, Hebbian):
        return chunkwise.hebbian(*args, p.state.W, dy, dstate.W, C, overwrite)
    if isinstance(rule, DecayedHebbian):
        return chunkwise.decayed_hebbian(*args, p.alpha, p.state.W, dy, dstate.W, C, overwrite)
    alpha = None if isinstance(rule, Delta) else p.alpha
    return chunkwise.gated_delta(*args, alpha, p.state.W, dy, dstate.W, C, overwrite)


def _normalised_hebbian(p: Prepared, dy: np.ndarray, dstate: State, engine: str,
                        C: int) -> dict[str, np.ndarray]:
    """Backward of ``y_t = (W_t q_t) / (z_t . q_t + eps)`` with ``z_t = z_0 + sum k``."""
    q, k = p.q, p.k
    if engine == "recurrent":
        y_raw, _ = recurrent_forward.hebbian(q, k, p.v, p.beta, p.state.W)
    else:
        y_raw, _ = chunkwise_forward.hebbian(q, k, p.v, p.beta, p.state.W, C)
    zs = p.state.normalizer[:, None, :] + np.cumsum(k, axis=1)           # (N, T, d_phi)
    den = (zs * q).sum(-1, keepdims=True) + q.dtype.type(p.rule.eps)
    dden = -(dy * y_raw).sum(-1, keepdims=True) / (den * den)
    out = _core(p, dy / den, dstate, engine, C)
    dz = dden * q
    dz[:, -1] += dstate.normalizer
    dk_z = np.flip(np.cumsum(np.flip(dz, 1), axis=1), 1)
    out["q"] = out["q"] + dden * zs
    out["k"] = out["k"] + dk_z
    out["z0"] = dk_z[:, 0]
    return out


def vjp(rule: Any, q: Any, k: Any, v: Any, dy: Any, *, beta: Any = None, alpha: Any = None,
        modulator: Any = None, initial_state: Any = None, dW: Any = None, form: str = "recurrent",
        chunk_size: int = 64) -> dict[str, Any]:
    """Vector-Jacobian product of :func:`plastinet.fwp.apply`.

    For the scalar ``L = <dy, Y> + <dW, W_final>`` (``Y, W_final = apply(...)``), return
    ``dL/d(input)`` for every input of ``apply``.

    Parameters
    ----------
    rule, q, k, v, beta, alpha, modulator, initial_state, form, chunk_size
        Exactly as for :func:`plastinet.fwp.apply` (validated by the same code).
        ``form="parallel"`` computes its gradients with the chunkwise backward (the
        forward forms agree to rounding). For DecayedHebbian and GatedDelta, gates below
        ``1e-3`` (including 0) make the chunkwise/parallel forms use the recurrent
        backward, which is exact for every gate value.
    dy : ndarray, shape (B, H, T, d_v)
        Cotangent of the read-outs ``Y``, same dtype as ``q``.
    dW : ndarray (B, H, d_v, d_phi) or State, optional
        Cotangent of the final state (default zero). A :class:`State` also carries the
        cotangents of the normaliser ``(B, H, d_phi)`` (``Hebbian(normalize=True)``) or
        the eligibility trace ``(B, H, d_v, d_phi)`` (ThreeFactor); ``None`` fields are zero.

    Returns
    -------
    dict
        ``"q"``, ``"k"`` (B, H, T, d_k) -- through the feature map --, ``"v"``
        (B, H, T, d_v), and, only for arguments that were given (not ``None``): ``"beta"``
        (B, H, T), ``"alpha"`` (the shape given), ``"modulator"`` (B, H, T),
        ``"initial_state"`` (an array like ``initial_state``, or a :class:`State` with
        every component the rule has when a State was given). Dtype of ``q``.

    Raises
    ------
    ValidationError
        (ShapeError, DTypeError, NonFiniteError, RangeError, UnsupportedError) for bad
        inputs, naming the argument (``dy``, ``dW``, ``dW.normalizer``, ...).
    NumericalError
        If a gradient becomes non-finite.

    Warns
    -----
    UnstableUpdateWarning
        As :func:`~plastinet.fwp.apply`, when a (gated) delta update expands.

    Notes
    -----
    Memory: the recurrent backward keeps ``ceil(sqrt(T))`` checkpointed states plus one
    segment of as many; the chunkwise backward keeps the ``ceil(T / C)`` chunk-entry states
    and per-chunk ``C x C`` matrices. Neither stores all ``T`` states.

    Examples
    --------
    >>> import numpy as np
    >>> from plastinet.fwp import Delta, apply, vjp
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.normal(size=(3, 1, 2, 6, 4)) * 0.5
    >>> dy = rng.normal(size=(1, 2, 6, 4))
    >>> g = vjp(Delta(), q, k, v, dy, form="chunkwise", chunk_size=4)
    >>> sorted(g), g["k"].shape
    (['k', 'q', 'v'], (1, 2, 6, 4))
    """
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise RangeError(_OBJ, "chunk_size", chunk_size, "expected a positive integer")
    p = prepare(rule, q, k, v, beta=beta, alpha=alpha, modulator=modulator,
                initial_state=initial_state, form=form)
    B, H, T = p.shape
    N, d_v, d_phi = B * H, p.v.shape[-1], p.q.shape[-1]
    if isinstance(p.rule, (Delta, GatedDelta)):
        _warn_expanding(p)
    dy_arr = float_array(dy, _OBJ, "dy", p.q.dtype)
    check_shape(dy_arr, (B, H, T, d_v), _OBJ, "dy", ("B", "H", "T", "d_v"))
    check_finite(dy_arr, _OBJ, "dy")
    dstate = _state_cotangent(p, dW, d_v, d_phi)
    engine = _engine(p, form)
    dy_m = dy_arr.reshape(N, T, d_v)
    C = min(int(chunk_size), T)                   # as apply: no padding beyond T
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if isinstance(p.rule, Hebbian) and p.rule.normalize:
            g = _normalised_hebbian(p, dy_m, dstate, engine, C)
        else:                                     # (the normalised rule reads q, k after _core)
            g = _core(p, dy_m, dstate, engine, C, overwrite=_own_features(p))
    rule, dtype, q_cache, k_cache = p.rule, p.q.dtype, p.q_cache, p.k_cache
    del p, dy_m                                   # the mapped q, k are no longer needed
    for name, arr in g.items():
        if arr is not None and first_nonfinite(arr) is not None:
            raise NumericalError(f"{type(rule).__name__}: the gradient of {name} became non-finite; "
                                 "reduce beta, normalise keys, or check the inputs' scale")
    out: dict[str, Any] = {"v": g.pop("v").reshape(B, H, T, d_v)}
    out["q"] = rule.phi.vjp(q_cache, g.pop("q").reshape(B, H, T, d_phi), overwrite=True)
    out["k"] = rule.phi.vjp(k_cache, g.pop("k").reshape(B, H, T, d_phi), overwrite=True)
    if beta is not None:
        out["beta"] = g["beta"].reshape(B, H, T)
    if alpha is not None:
        out["alpha"] = g["alpha"].reshape(np.shape(alpha))
    if modulator is not None:
        out["modulator"] = g["modulator"].reshape(B, H, T)
    if initial_state is not None:
        dW0 = g["W0"].reshape(B, H, d_v, d_phi)
        if isinstance(initial_state, State):
            z0 = g["z0"].reshape(B, H, d_phi) if "z0" in g else None
            E0 = g["E0"].reshape(B, H, d_v, d_phi) if "E0" in g else None
            out["initial_state"] = State(dW0, z0, E0)
        else:
            out["initial_state"] = dW0
    return {name: np.asarray(out[name], dtype=dtype) if not isinstance(out[name], State) else out[name]
            for name in ("q", "k", "v", "beta", "alpha", "modulator", "initial_state") if name in out}
