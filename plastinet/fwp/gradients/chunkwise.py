"""Chunkwise backward pass: matrix form inside chunks, a reverse scan across chunks.

A forward sweep recomputes the chunk-entry states ``S_c`` and keeps only them
(``ceil(T / C)`` states, never ``T``; the (gated) delta rule also keeps its pseudo-values,
in the buffer of the ``v`` gradient). A reverse sweep carries the state cotangent ``dS``
from the end to the start, one short matrix update per chunk; everything else is batched
matrix products over chunks. The state-independent matrices (scores, WY/UT factors) are
recomputed: for the (gated) delta rule one segment of :data:`SEGMENT` steps at a time, so
that their memory does not grow with ``T``, with heads spread over threads as in the
forward engine; for the Hebbian rules for all chunks at once (as the forward does). See
``docs/gradients.md`` for the derivations.

By default the compiled reverse sweeps of :mod:`plastinet.fwp.forms.native` run instead
(every rule; per-key gates only where a chunk's decay stays above ``1e-12``), one chunk at a
time with the entering states of every ``ceil(d_v / C)``-th chunk kept in the buffer of the
``q`` gradient (every chunk for ``C >= d_v``; see :func:`_states_in`), or of every
:data:`STATE_EVERY`-th chunk where they do not fit there; they form the gates' gradient
from the gradients of ``q`` and ``k`` (Hebbian rules) or ``q`` and ``v`` (gated delta
rule), see :func:`_hebbian_compiled`. The numpy sweeps here are the reference
and the fallback.

Decay gates enter through their within-chunk cumulative logarithm ``L_t``: the gradient is
first formed with respect to ``L_t`` (``dL``), then ``d log alpha_s = sum_{t >= s} dL_t``
within the chunk and ``d alpha = d log alpha / alpha``. This needs ``alpha > 0``; the caller
(:func:`plastinet.fwp.vjp`) routes gates below :data:`MIN_GATE` to the recurrent backward.

Shapes as in :mod:`plastinet.fwp.forms` (batch and head merged into ``N``).
"""

from __future__ import annotations

import numpy as np

from plastinet._blas import chunk_grain, map_heads
from plastinet.fwp.forms import chunkwise as chunkwise_forward
from plastinet.fwp.forms.chunkwise import unit_lower_inverse
from plastinet.fwp.forms.decay import cumulative_log_decay, decay_ratio, decayed_scores
from plastinet.fwp.forms.native import delta_backward_kernel, delta_kernel, hebbian_backward_kernel, hebbian_kernel

__all__ = ["hebbian", "decayed_hebbian", "gated_delta", "MIN_GATE", "SEGMENT"]

#: Smallest decay gate the chunkwise backward accepts (smaller gates lose relative accuracy
#: in ``d log alpha / alpha``); below it :func:`plastinet.fwp.vjp` uses the recurrent pass.
MIN_GATE = 1e-3


#: Where the kept states do not fit in the buffer of the ``q`` gradient (see
#: :func:`_states_in`), the compiled backwards keep the entering state of every this many
#: chunks in an array of its own (a quarter of the memory of all of them) and rebuild the
#: others, one ``K^T V`` (Hebbian) or ``K^T U`` (delta rules: from the pseudo-values)
#: product per chunk.
STATE_EVERY = 4


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _chunk(x: np.ndarray, C: int, fill: float = 0.0) -> np.ndarray:
    """Time axis (axis 1) of ``x`` reshaped to ``(n_chunks, C)``, padded with ``fill``."""
    N, T = x.shape[:2]
    n = -(-T // C)
    if n * C != T:
        pad = np.full((N, n * C - T) + x.shape[2:], fill, dtype=x.dtype)
        x = np.concatenate([x, pad], axis=1)
    return x.reshape((N, n, C) + x.shape[2:])


def _unchunk(x: np.ndarray, T: int) -> np.ndarray:
    """Inverse of :func:`_chunk`: merge ``(n_chunks, C)`` back into ``T`` steps."""
    N, n, C = x.shape[:3]
    return x.reshape((N, n * C) + x.shape[3:])[:, :T]


def _chunk_out(out: np.ndarray, C: int) -> np.ndarray:
    """A chunked ``(N, n, C, ...)`` array to fill for ``out``: a view of it when ``C`` divides
    its time axis (axis 1), else a padded buffer (copy it back with :func:`_unchunk`)."""
    N, T = out.shape[:2]
    if T % C == 0:
        return out.reshape((N, T // C, C) + out.shape[2:])
    return np.empty((N, -(-T // C), C) + out.shape[2:], dtype=out.dtype)


def _copy_back(T: int, C: int, *pairs: tuple[np.ndarray, np.ndarray]) -> None:
    """Copy the chunked gradients ``(out, chunked)`` of :func:`_chunk_out` back into ``out``
    where they were padded buffers (``C`` does not divide ``T``)."""
    if T % C:
        for grad, chunked in pairs:
            np.copyto(grad, _unchunk(chunked, T))


def _reverse_cumsum(x: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)


def hebbian(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray, W0: np.ndarray,
            dy: np.ndarray, dW: np.ndarray, C: int, overwrite: bool = False) -> dict[str, np.ndarray]:
    """Backward of chunkwise linear attention.

    Parameters
    ----------
    q, k : ndarray, shape (N, T, d_k)
        Queries and keys after phi.
    v : ndarray, shape (N, T, d_v)
    beta : ndarray, shape (N, T)
    W0 : ndarray, shape (N, d_v, d_k)
        Initial state.
    dy : ndarray, shape (N, T, d_v)
        Cotangent of the read-outs.
    dW : ndarray, shape (N, d_v, d_k)
        Cotangent of the final state.
    C : int
        Chunk length.
    overwrite : bool
        ``q`` and ``k`` may be overwritten: the compiled sweeps then return the gradients of
        ``q`` and ``k`` in their buffers (two arrays of their size fewer), see
        :func:`_hebbian_compiled`. They must be C-contiguous and writeable.

    Returns
    -------
    dict
        ``q, k, v, beta`` gradients (merged layout) and ``W0``.
    """
    compiled = _hebbian_compiled(q, k, v, beta, None, W0, dy, dW, C, overwrite)
    if compiled is not None:
        return compiled
    T = q.shape[1]
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    bV = b[..., None] * V
    A = np.tril(Q @ _t(K))
    dS = _t(bV) @ K                                                   # state increments
    S = np.cumsum(dS, axis=1)
    S -= dS
    S += W0[:, None]                                                  # chunk-entry states
    R = _t(dY) @ Q                                                    # (N, n, d_v, d_k)
    dSexit = _reverse_cumsum(R, axis=1)
    dSexit -= R
    dSexit += dW[:, None]                                             # cotangent of exit states
    dA = np.tril(dY @ _t(bV))
    dbV = _t(A) @ dY + K @ _t(dSexit)
    dQ = dA @ K + dY @ S
    dK = _t(dA) @ Q + bV @ dSexit
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "W0": dW + R.sum(axis=1)}


def _hebbian_compiled(q, k, v, beta, alpha, W0, dy, dW, C,
                      overwrite: bool = False) -> dict[str, np.ndarray] | None:
    """Backward of the Hebbian rules by the compiled chunk loops, or None (no compiler,
    ``PLASTINET_NATIVE=0``, or per-key gates the kernel leaves to numpy).

    The forward kernel recomputes the entering states of every ``ceil(d_v / C)``-th chunk
    (every chunk for ``C >= d_v``; every :data:`STATE_EVERY`-th where they do not fit in the
    buffer of the ``q`` gradient, see :func:`_states_in`) and the final state, the reverse
    kernel the gradients of ``q, k, v, beta``, ``W0`` and
    the gates. The gates' gradient follows from those of ``q`` and ``k``: with ``L_s`` the
    cumulative log-gate, the read-outs and the final state depend on ``L_s`` through
    ``exp(L_s)`` on the query side and ``exp(-L_s)`` on the key side (and ``W_T`` on
    ``L_T``), so ``d log alpha_t = sum_{s >= t} (q_s dq_s - k_s dk_s) + <dW, W_T>`` (per key
    unit; summed for scalar gates), accumulated in float64 by the reverse sweep.

    With ``overwrite`` (and unless per-key gates could make the kernel decline a head, see
    :func:`_may_decline`: ``q`` and ``k`` must stay intact for the numpy engine then), each
    head's ``q`` and ``k`` gradients are formed in two head-sized buffers and copied over
    that head's ``q`` and ``k``, which the sweep no longer reads.
    """
    dt = q.dtype
    forward, backward = hebbian_kernel(dt), hebbian_backward_kernel(dt)
    if backward is None:
        return None
    N, T, d_k = q.shape
    d_v = v.shape[-1]
    reuse = overwrite and not _may_decline(alpha, C)
    out = {"q": q if reuse else np.empty_like(q), "k": k if reuse else np.empty_like(k),
           "v": np.empty_like(v), "beta": np.empty_like(beta),
           "W0": np.empty((N, d_v, d_k), dtype=dt)}
    if alpha is not None:
        out["alpha"] = np.empty_like(alpha)
    work = 2.0 * N * T * (5 * d_k * d_v + 5 * C * (d_k + d_v))
    done, = map_heads(_hebbian_heads, (q, k, v, beta, alpha, W0, dy, dW, out["q"], out["k"],
                                       out["v"], out["beta"], out["W0"], out.get("alpha")),
                      C, forward, backward, reuse, work=work)
    if reuse and not done.all():
        raise RuntimeError("hebbian backward kernel declined a head after q and k were overwritten")
    return out if done.all() else None


def _may_decline(alpha: np.ndarray | None, C: int) -> bool:
    """Whether the compiled Hebbian backward may decline a head: per-key gates whose product
    over a chunk of ``C`` steps can fall below :data:`KERNEL_RATIO_MIN` (a tenfold margin for
    the rounding of the kernel's running products)."""
    return alpha is not None and alpha.shape[-1] > 1 and float(alpha.min()) ** C < 10 * KERNEL_RATIO_MIN


#: ``RATIO_MIN`` of ``delta_kernel.c``: the compiled Hebbian backward declines per-key gates
#: whose product over a chunk falls below it.
KERNEL_RATIO_MIN = 1e-12


def _hebbian_heads(q, k, v, beta, alpha, W0, dy, dW, dq, dk, dv, dbeta, dW0, dalpha, C,
                   forward, backward, reuse):
    """:func:`_hebbian_compiled` on one group of heads; returns ``(done,)`` per head (all
    False if the kernel declined a head). ``reuse``: ``dq, dk`` are ``q, k`` themselves."""
    N, T, d_k = q.shape
    d_v = v.shape[-1]
    dt = q.dtype
    Q, K, V, b, dY = (np.ascontiguousarray(_chunk(x, C)) for x in (q, k, v, beta, dy))
    A = None if alpha is None else np.ascontiguousarray(_chunk(alpha, C, fill=1.0))
    n = Q.shape[1]
    dV, dB = _chunk_out(dv, C), _chunk_out(dbeta, C)
    # reuse: one head's q and k gradients in these buffers, then copied over its q and k
    scratch = np.empty((2, 1, n, C, d_k), dtype=dt) if reuse else None
    dQ, dK = (None, None) if reuse else (_chunk_out(dq, C), _chunk_out(dk, C))
    # the kept states of a head in the buffer of its q gradient where they fit (see
    # _states_in; the state of every chunk where C >= d_v: no rebuilding): one call per head;
    # else those of every STATE_EVERY-th chunk in an array of their own, one call for all
    # heads (one per head with reuse)
    every, ns, inside = _kept_states(n, C, d_v)
    states = None if inside else np.empty((N, ns, d_k, d_v), dtype=dt)
    heads = [slice(h, h + 1) for h in range(N)] if inside or reuse else [slice(0, N)]
    ST = np.array(_t(W0), dtype=dt, order="C")
    dST = np.array(_t(dW), dtype=dt, order="C")
    dA = None if alpha is None else _chunk_out(dalpha, C)
    for h in heads:
        gq, gk = scratch if reuse else (dQ[h], dK[h])
        kept = _states_in(gq, ns, d_v) if inside else states[h]
        forward(Q[h], K[h], V[h], b[h], None if A is None else A[h], ST[h], None, states=kept,
                every=every)
        carry = None
        if alpha is not None:
            carry = np.einsum("nij,nji->nj", dW[h], ST[h], dtype=np.float64)  # <dW, W_T> per unit
            if alpha.shape[-1] == 1:
                carry = carry.sum(-1, keepdims=True)
        if not backward(Q[h], K[h], V[h], b[h], None if A is None else A[h], dY[h], kept, dST[h],
                        gq, gk, dV[h], dB[h], every, carry=carry,
                        dalpha=None if dA is None else dA[h]):
            return (np.zeros(N, dtype=bool),)
        if reuse:
            np.copyto(dq[h], _unchunk(gq, T))
            np.copyto(dk[h], _unchunk(gk, T))
    _copy_back(T, C, *(() if reuse else ((dq, dQ), (dk, dK))), (dv, dV), (dbeta, dB),
               *(() if alpha is None else ((dalpha, dA),)))
    np.copyto(dW0, _t(dST))
    return (np.ones(N, dtype=bool),)


def _kept_states(n: int, C: int, d_v: int) -> tuple[int, int, bool]:
    """``(every, ns, inside)`` of the compiled backwards' kept states for ``n`` chunks: the
    state of every ``ceil(d_v / C)``-th chunk (``ns`` of them) in the buffer of the ``q``
    gradient (``inside``, see :func:`_states_in`) where they fit, else of every
    :data:`STATE_EVERY`-th chunk in an array of their own."""
    every = -(-d_v // C)
    ns = -(-n // every)
    if ns * d_v <= n * C:
        return every, ns, True
    return STATE_EVERY, -(-n // STATE_EVERY), False


def _states_in(grad: np.ndarray, ns: int, d_v: int) -> np.ndarray:
    """The ``ns`` kept states ``(1, ns, d_k, d_v)`` of one head, laid over the start of its
    chunked gradient buffer ``grad (1, n, C, d_k)`` (C-contiguous).

    With the states of every ``e``-th chunk kept: the reverse sweep writes the gradient of
    chunk ``j`` only after it has read the state of ``j``'s group (the group's first state,
    copied when the sweep enters the group), and state ``i`` ends at ``(i + 1) d_k d_v``
    numbers, before chunk ``(i + 1) e`` starts, when ``e C >= d_v``: no state is overwritten
    before it is used. This saves the states' memory; with ``e = ceil(d_v / C)`` (1 for
    ``C >= d_v``) it also spares the sweep the rebuilding of the states in between (one
    ``K^T V``, or ``K^T U`` for the delta rules, product for ``e - 1`` of every ``e``
    chunks).
    """
    d_k = grad.shape[-1]
    return grad.reshape(-1)[:ns * d_k * d_v].reshape(1, ns, d_k, d_v)


#: Row-block size of the per-key decayed scores (memory ``block**2 d`` per chunk).
_BLOCK = 16


def _decayed_scores_vjp(dA: np.ndarray, Q: np.ndarray, K: np.ndarray, L: np.ndarray,
                        Z: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Pull ``dA`` back through :func:`~plastinet.fwp.forms.decay.decayed_scores` (per key).

    ``A[t, tau] = sum_j Q_tj K_tauj R_{t tau j}`` with ``R`` the per-feature decay over
    ``(tau, t]``; returns ``dQ_tj = sum_tau dA_{t tau} K_tauj R_{t tau j}`` and
    ``dK_tauj = sum_t dA_{t tau} Q_tj R_{t tau j}``, with the block structure of the forward:
    dense ratios on diagonal blocks, and earlier columns factored through the step before
    the block (both factors <= 1). ``dA`` must be lower triangular.
    """
    C = Q.shape[-2]
    dt = Q.dtype
    causal = np.tril(np.ones((block, block), dtype=bool))[..., None]
    dQ = np.zeros_like(Q)
    dK = np.zeros_like(K)
    for s in range(0, C, block):
        e = min(s + block, C)
        r = decay_ratio(L[..., s:e, None, :], Z[..., s:e, None, :], L[..., None, s:e, :], Z[..., None, s:e, :])
        r = np.where(causal[: e - s, : e - s], r, 0.0).astype(dt) * dA[..., s:e, s:e, None]
        dQ[..., s:e, :] += (r * K[..., None, s:e, :]).sum(-2)
        dK[..., s:e, :] += (r * Q[..., s:e, None, :]).sum(-3)
        if s == 0:
            continue
        Lr, Zr = L[..., s - 1: s, :], Z[..., s - 1: s, :]
        rq = decay_ratio(L[..., s:e, :], Z[..., s:e, :], Lr, Zr).astype(dt)   # (..., b, d)
        rk = decay_ratio(Lr, Zr, L[..., :s, :], Z[..., :s, :]).astype(dt)     # (..., s, d)
        dA_off = dA[..., s:e, :s]
        dQ[..., s:e, :] += rq * (dA_off @ (K[..., :s, :] * rk))
        dK[..., :s, :] += rk * (_t(dA_off) @ (Q[..., s:e, :] * rq))
    return dQ, dK


def decayed_hebbian(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                    alpha: np.ndarray, W0: np.ndarray, dy: np.ndarray, dW: np.ndarray,
                    C: int, overwrite: bool = False) -> dict[str, np.ndarray]:
    """Backward of chunkwise decayed linear attention (scalar or per-key gates > 0).

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` or ``(N, T, d_k)``.
    Scalar gates: ``C x C`` decay matrices. Per-key gates: the blocked decayed scores of
    the forward (:func:`~plastinet.fwp.forms.decay.decayed_scores`) and their pull-back.
    Both batched over all chunks, as the forward.
    """
    compiled = _hebbian_compiled(q, k, v, beta, alpha, W0, dy, dW, C, overwrite)
    if compiled is not None:
        return compiled
    N, T, _ = q.shape
    dt = q.dtype
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    Al = _chunk(alpha, C, fill=1.0)
    L, Z = cumulative_log_decay(Al, axis=2)                           # (N, n, C, e)
    g = np.exp(L).astype(dt)                                          # from the chunk start
    Dend = np.exp(L[:, :, -1:] - L).astype(dt)                        # decay to the chunk end
    Kend = K * Dend
    total = g[:, :, -1][:, :, None, :]                                # (N, n, 1, e)
    n = Q.shape[1]
    bV = b[..., None] * V
    # forward scan (chunk-entry states) and reverse scan (cotangents of chunk-exit states)
    S = np.empty((N, n) + W0.shape[1:], dtype=dt)
    state = W0
    for c in range(n):
        S[:, c] = state
        state = state * total[:, c] + _t(bV[:, c]) @ Kend[:, c]
    Qg = Q * g
    RQ = _t(dY) @ Qg                                                  # (N, n, d_v, d_k)
    dSexit = np.empty_like(S)
    dS = dW
    for c in reversed(range(n)):
        dSexit[:, c] = dS
        dS = dS * total[:, c] + RQ[:, c]
    del RQ
    YS = dY @ S                                                       # (N, n, C, d_k)
    KdS = bV @ dSexit                                                 # d Kend, (N, n, C, d_k)
    dbV = Kend @ _t(dSexit)
    dA = np.tril(dY @ _t(bV))
    dQ = g * YS
    X = Kend * KdS                                                    # d/dlog of the end decay
    dLj = Qg * YS - X                                                 # per key feature
    if L.shape[-1] == 1:
        causal = np.tril(np.ones((C, C), dtype=bool))
        D = np.where(causal, decay_ratio(L[..., :, None, 0], Z[..., :, None, 0],
                                         L[..., None, :, 0], Z[..., None, :, 0]), 0.0).astype(dt)
        QK = Q @ _t(K)
        dbV += _t(QK * D) @ dY
        dAD = dA * D
        dQ += dAD @ K
        dK = _t(dAD) @ Q
        M = dAD * QK                                                  # d/dlog D, (N, n, C, C)
        dL = (M.sum(-1) - M.sum(-2) + dLj.sum(-1))[..., None]
        del D, QK, dAD, M
    else:
        dbV += _t(decayed_scores(Q, K, L, Z, block=_BLOCK)) @ dY
        dQA, dK = _decayed_scores_vjp(dA, Q, K, L, Z, _BLOCK)
        dQ += dQA
        dL = dLj + Q * dQA - K * dK                                   # d/dlog D, row - column sums
    dK += Dend * KdS
    end = X.sum(axis=2) + total[:, :, 0] * (dSexit * S).sum(axis=2)   # (N, n, d_k)
    dL[:, :, -1] += end if L.shape[-1] > 1 else end.sum(-1, keepdims=True)
    dalpha = _reverse_cumsum(dL, axis=2) / Al
    return {"q": _unchunk(dQ, T), "k": _unchunk(dK, T), "v": _unchunk(b[..., None] * dbV, T),
            "beta": _unchunk((dbV * V).sum(-1), T), "alpha": _unchunk(dalpha, T), "W0": dS}


#: Steps per segment of the (gated) delta backward: the state-independent matrices are
#: recomputed one segment of chunks at a time, so their memory does not grow with T.
SEGMENT = 128


def gated_delta(q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray,
                alpha: np.ndarray | None, W0: np.ndarray, dy: np.ndarray, dW: np.ndarray,
                C: int, overwrite: bool = False) -> dict[str, np.ndarray]:
    """Backward of the chunkwise (gated) delta rule in the WY/UT representation.

    Parameters as :func:`hebbian`, plus ``alpha`` of shape ``(N, T, 1)`` (gates > 0) or
    ``None`` for the plain delta rule. The forward engine recomputes the chunk-entry states
    and pseudo-values; a reverse sweep over segments of about :data:`SEGMENT` steps
    recomputes each segment's factors and pulls the cotangents through it. Heads are spread
    over threads with single-threaded BLAS (:func:`~plastinet._blas.map_heads`).
    ``overwrite``: as for :func:`hebbian` (the compiled loops only).
    """
    N, T, d_k = q.shape
    d_v = v.shape[-1]
    dt = q.dtype
    reuse = overwrite and delta_backward_kernel(dt) is not None
    out = {"q": q if reuse else np.empty_like(q), "k": k if reuse else np.empty_like(k),
           "v": np.empty_like(v), "beta": np.empty_like(beta),
           "W0": np.empty((N, d_v, d_k), dtype=dt)}
    if alpha is not None:
        out["alpha"] = np.empty(alpha.shape, dtype=dt)
    work = 2.0 * N * T * (8 * d_k * d_v + 12 * C * (d_k + d_v))
    # the gradients are written into slices of ``out`` (no concatenation of the groups)
    grads = (out["q"], out["k"], out["v"], out["beta"], out["W0"], out.get("alpha"))
    map_heads(_gated_delta_heads, (q, k, v, beta, alpha, W0, dy, dW, *grads), C, reuse, work=work,
              grain=chunk_grain(C, d_k, d_v, dt))
    return out


def _gated_delta_compiled(Q, K, V, b, dY, alpha, W0, dW, dq, dk, dV, dB, dW0, dalpha, C,
                          forward, backward, reuse):
    """The compiled chunk loops of :func:`_gated_delta_heads` on its chunked arrays.

    The forward kernel recomputes all pseudo-values (into ``dV``, which the reverse kernel
    overwrites with the value gradients), each chunk's ``T`` in the buffer of the ``k``
    gradient where it fits (``C <= d_k``), and the entering states as for the Hebbian rules:
    those of every ``ceil(d_v / C)``-th chunk (every chunk for ``C >= d_v``: the reverse
    sweep rebuilds none) in the buffer of the ``q`` gradient (see :func:`_states_in`), one
    call of each kernel per head; where they do not fit there, those of every
    :data:`STATE_EVERY`-th chunk in an array of their own, one call for all heads (one per
    head with ``reuse``). With ``reuse`` (``dq, dk`` are ``q, k``), each head's ``q`` and
    ``k`` gradients are formed in two head-sized buffers and then copied over its ``q`` and
    ``k``, which the sweep no longer reads.
    """
    N, n, _, d_k = Q.shape
    d_v = V.shape[-1]
    T = dq.shape[1]
    dt = Q.dtype
    inputs = [np.ascontiguousarray(x) for x in (Q, K, V, b)]
    dYc = np.ascontiguousarray(dY)
    gates = None if alpha is None else np.ascontiguousarray(_chunk(alpha[..., 0], C, fill=1.0))
    every, ns, inside = _kept_states(n, C, d_v)
    states = None if inside else np.empty((N, ns, d_k, d_v), dtype=dt)
    ST = np.array(_t(W0), dtype=dt, order="C")
    dST = np.array(_t(dW), dtype=dt, order="C")
    carry = dA = None
    if alpha is not None:
        carry = np.empty(N, dtype=np.float64)
        dA = _chunk_out(dalpha[..., 0], C)
    if reuse:
        scratch = np.empty((2, 1, n, C, d_k), dtype=dt)
    else:
        dQ, dK = _chunk_out(dq, C), _chunk_out(dk, C)
    heads = [slice(h, h + 1) for h in range(N)] if inside or reuse else [slice(0, N)]
    for h in heads:
        gq, gk = scratch if reuse else (dQ[h], dK[h])
        kept = _states_in(gq, ns, d_v) if inside else states[h]
        inv = gk if C <= d_k else None
        a = None if gates is None else gates[h]
        forward(*(x[h] for x in inputs), ST[h], None, states=kept, pseudo=dV[h], every=every,
                alpha=a, inv=inv)
        if alpha is not None:
            carry[h] = np.einsum("nij,nji->n", dW[h], ST[h], dtype=np.float64)   # <dW, W_T>
        backward(*(x[h] for x in inputs), dYc[h], kept, dV[h], dST[h], gq, gk, dB[h], every,
                 alpha=a, carry=None if carry is None else carry[h],
                 dalpha=None if dA is None else dA[h], inv=inv)
        if reuse:
            np.copyto(dq[h], _unchunk(gq, T))
            np.copyto(dk[h], _unchunk(gk, T))
    if not reuse:
        _copy_back(T, C, (dq, dQ), (dk, dK))
    if alpha is not None:
        _copy_back(T, C, (dalpha[..., 0], dA))
    np.copyto(dW0, _t(dST))


def _gated_delta_heads(q, k, v, beta, alpha, W0, dy, dW, dq, dk, dv, dbeta, dW0, dalpha, C,
                       reuse):
    """:func:`gated_delta` on one group of heads, writing into ``dq, dk, dv, dbeta, dW0``
    (and ``dalpha``, None for the plain delta rule); ``reuse``: ``dq, dk`` are ``q, k``
    themselves (compiled loops only, see :func:`_gated_delta_compiled`).

    The compiled loops form the gates' gradient from those of ``q`` and ``v``: ``W_t e^{-L_t}``
    (``L`` the cumulative log-gate) is a delta rule fed ``v_t e^{-L_t}`` and read out as
    ``y_t = e^{L_t} (...) q_t``, so ``d log alpha_t = sum_{s >= t} (q_s dq_s - v_s dv_s)
    + <dW, W_T>`` (as for the Hebbian rules, see :func:`_hebbian_compiled`).

    Notation of the forward engine: the state is kept transposed, ``ST = S^T`` (d_k, d_v),
    and so is its cotangent ``dST``. Per chunk, reverse scan::

        dU = attn^T dY + K_end dST'             dST = g_C dST' + (Q g)^T dY - W_y^T dU

    as two stacked products, ``[attn^T | K_end] [dY; dST']`` and ``[Q g; -W_y]^T [dY; dU]``.
    """
    N, T, d_k = q.shape
    d_v = v.shape[-1]
    dt = q.dtype
    Q, K, V, b, dY = _chunk(q, C), _chunk(k, C), _chunk(v, C), _chunk(beta, C), _chunk(dy, C)
    n = Q.shape[1]
    dV, dB = _chunk_out(dv, C), _chunk_out(dbeta, C)
    # forward sweep: chunk-entry states, and the pseudo-values, kept in the buffer of dv
    # until the reverse sweep has used those of a segment and overwrites them
    forward, backward = delta_kernel(dt), delta_backward_kernel(dt)
    if backward is not None:                                  # the compiled chunk loops
        _gated_delta_compiled(Q, K, V, b, dY, alpha, W0, dW, dq, dk, dV, dB, dW0, dalpha, C,
                              forward, backward, reuse)
        _copy_back(T, C, (dv, dV), (dbeta, dB))
        return ()
    dQ, dK = _chunk_out(dq, C), _chunk_out(dk, C)
    states = np.empty((N, n, d_k, d_v), dtype=dt)
    chunkwise_forward.gated_delta_engine(q, k, v, beta, alpha, W0, None, None, C,
                                         states=states, pseudo=dV)
    G = max(1, min(n, SEGMENT // C))
    gated = alpha is not None
    if gated:
        Al = _chunk(alpha, C, fill=1.0)[..., 0]                          # (N, n, C)
        L = np.cumsum(np.log(Al, dtype=np.float64), axis=2)             # gates >= MIN_GATE
        dL = np.empty(b.shape, dtype=dt)
    tril = np.tril(np.ones((C, C), dtype=dt))
    strict = np.tril(np.ones((C, C), dtype=dt), -1)
    AK = np.empty((N, G, C, C + d_k), dtype=dt)           # [attn^T | K_end]
    YS = np.empty((N, G, C + d_k, d_v), dtype=dt)         # [dY; dST'] (dST': exit cotangent)
    YU = np.empty((N, G, 2 * C, d_v), dtype=dt)           # [dY; dU]
    QW = np.empty((N, G, 2 * C, d_k), dtype=dt)           # [Q g; -W_y]
    X2 = np.empty((N, G, 2 * C, C), dtype=dt)             # [d attn; dKK + dKK^T]
    dST = np.array(_t(dW), dtype=dt, order="C")
    step = np.empty((N, d_k, d_v), dtype=dt)
    for s in reversed(range(0, n, G)):
        e = min(s + G, n)
        m = e - s
        ak, ys, yu, qw, x2 = AK[:, :m], YS[:, :m], YU[:, :m], QW[:, :m], X2[:, :m]
        Qs, Ks, Vs, dYs = Q[:, s:e], K[:, s:e], V[:, s:e], dY[:, s:e]
        bs = b[:, s:e, :, None]                                          # (N, m, C, 1)
        KK = Ks @ _t(Ks)
        QK = Qs @ _t(Ks)
        if gated:
            Ls = L[:, s:e]
            D = np.exp(np.minimum(Ls[..., :, None] - Ls[..., None, :], 0.0)).astype(dt) * tril
            g = np.exp(Ls).astype(dt)[..., None]                          # (N, m, C, 1)
            Dend = np.exp(Ls[..., -1:] - Ls).astype(dt)[..., None]
            KK *= D                                                       # K K^T * D
            attn = QK * D
        else:
            attn = QK * tril
        Ti = unit_lower_inverse(KK * bs)
        TB = Ti * _t(bs)                                                  # T diag(beta)
        Uy = TB @ Vs
        if gated:
            TB *= _t(g)
        Wy = TB @ Ks
        # operands of the reverse scan
        np.copyto(ak[..., :C], _t(attn))
        np.copyto(ys[:, :, :C], dYs)
        np.copyto(yu[:, :, :C], dYs)
        np.negative(Wy, out=qw[:, :, C:])
        if gated:
            np.multiply(Ks, Dend, out=ak[..., C:])
            np.multiply(Qs, g, out=qw[:, :, :C])
        else:
            np.copyto(ak[..., C:], Ks)
            np.copyto(qw[:, :, :C], Qs)
        for i in reversed(range(m)):
            np.copyto(ys[:, i, C:], dST)
            np.matmul(ak[:, i], ys[:, i], out=yu[:, i, C:])              # dU
            np.matmul(_t(qw[:, i]), yu[:, i], out=step)                  # (Q g)^T dY - W_y^T dU
            if gated:
                dST *= g[:, i, -1, :, None]
            dST += step
        dSx, dU, Us, STs = ys[:, :, C:], yu[:, :, C:], dV[:, s:e], states[:, s:e]
        # through the read-out Y = attn U + (Q g) S^T and the write S' = g_C S + U^T K_end
        QS = yu @ _t(STs)                                                # [dY S; dU S]
        dQg, dUS = QS[:, :, :C], QS[:, :, C:]
        dKend = Us @ _t(dSx)
        dattn = dYs @ _t(Us)
        dattn *= D if gated else tril
        # through the solves Ti^-1 U_y = diag(beta) V and Ti^-1 W_y = diag(beta g) K
        drhs_v = _t(Ti) @ dU                                             # d(beta V)
        nk = _t(Ti) @ dUS                                                # -d(beta g K)
        dM = drhs_v @ _t(Uy)
        dM -= nk @ _t(Wy)
        dM *= -strict                                                    # d(strict lower part)
        dbs = (drhs_v * Vs).sum(-1)
        dV[:, s:e] = bs * drhs_v
        hk = (nk * Ks).sum(-1)                                           # -d/d(beta g) via K
        dKK = bs * dM
        if gated:
            F = dKK * KK                                                 # d/dlog D (solve)
            dKK *= D
            dbs += (dM * KK).sum(-1) - g[..., 0] * hk
            E = dattn * QK                                               # d/dlog D (read-out)
            dLs = E.sum(-1) - E.sum(-2) + (qw[:, :, :C] * dQg).sum(-1)
            X = (ak[..., C:] * dKend).sum(-1)                            # d/dlog end decay
            dLs -= X
            dLs[..., -1] += X.sum(-1) + g[:, :, -1, 0] * (dSx * STs).sum(axis=(-1, -2))
            dLs += F.sum(-1) - F.sum(-2) - b[:, s:e] * g[..., 0] * hk
            dL[:, s:e] = dLs
            dQg *= g
            dKend *= Dend
            dKend -= (bs * g) * nk
        else:
            dbs += (dM * KK).sum(-1) - hk
            dKend -= bs * nk
        np.copyto(x2[:, :, :C], dattn)
        np.add(dKK, _t(dKK), out=x2[:, :, C:])
        P = x2 @ Ks                                                      # [d attn K; (dKK + dKK^T) K]
        np.add(P[:, :, :C], dQg, out=dQ[:, s:e])
        dKend += P[:, :, C:]
        dKend += _t(dattn) @ Qs
        dK[:, s:e] = dKend
        dB[:, s:e] = dbs
    _copy_back(T, C, (dq, dQ), (dk, dK), (dv, dV), (dbeta, dB))
    np.copyto(dW0, _t(dST))
    if gated:
        np.copyto(dalpha, _unchunk((_reverse_cumsum(dL, axis=2) / Al)[..., None], T))
    return ()
