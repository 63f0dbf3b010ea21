"""Programmers: the slow networks that map an input sequence to fast-weight commands.

Each programmer is a pair of functions, ``*_forward`` (returns the outputs and a cache) and
``*_backward`` (exact reverse-mode gradients of the slow parameters and of the input). They
read the slow parameters from a dict ``P`` of named arrays and a :class:`Config` of sizes;
:class:`~plastinet.fwp.FastWeightLayer` owns both and is the public interface.

Shapes: ``x (B, T, d_in)``; per-head commands ``k, q (B, H, T, d_k)``, ``v (B, H, T, d_v)``,
``beta, alpha, modulator (B, H, T)``; the fast read-out of all heads concatenated
``u (B, T, H d_v)``; the layer output ``y (B, T, d_out)``. Gates:

* ``beta_t = c * sigmoid(z_beta)`` with ``c = beta_scale`` (2 for the delta family by
  default, so that ``beta`` in ``(0, 2)`` is reachable; 1 otherwise);
* ``alpha_t = sigmoid(z_alpha)`` for rules with a decay gate (DecayedHebbian, GatedDelta);
* ``m_t = z_mod`` (linear, signed) for ThreeFactor's neuromodulator.

Programmers
-----------
``linear``
    ``k_t = W_k x_t``, ``q_t = W_q x_t``, ``v_t = W_v x_t`` (or the first ``d_v`` inputs,
    ``values="input"``), ``z_beta = W_beta x_t + b_beta`` and likewise for alpha and the
    modulator. All steps at once through :func:`plastinet.fwp.apply` (any form).
``mlp``
    The same projections applied to ``h_t = tanh(W_hidden x_t + b_hidden)``.
``recurrent``
    Irie et al. (2021), "Going beyond linear transformers with recurrent fast weight
    programmers": every command is also fed by the previous read-out,
    ``k_t = W_k x_t + R_k tanh(u_{t-1})`` (likewise ``q, v`` and the gates), ``u_{-1} = 0``.
    Step by step (one :func:`~plastinet.fwp.apply` call of length 1 per step).
``srwm``
    Self-referential weight matrix, Irie et al. (2022), "A modern self-referential weight
    matrix that learns to modify itself", eqs. 5-8, per head ``h`` on the input slice
    ``x_t^h`` of size ``d_h = d_in / H``, with ``W^h`` of shape ``(d_v + 2 d_h + 1, d_h)``::

        [y_t, k_t, q_t, z_t] = W_{t-1} x_t
        v_t = W_{t-1} phi(k_t),   vbar_t = W_{t-1} phi(q_t)
        W_t = W_{t-1} + c sigmoid(z_t) (v_t - vbar_t) phi(k_t)^T

    ``W_0`` is the slow parameter. Following the paper, ``y_t`` is read from ``W_{t-1}``
    (before the step's update) and ``phi`` must keep the size (softmax in the paper). The
    paper also describes four learning rates (one per sub-matrix of ``W``); this
    implementation uses the single rate of eq. 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from plastinet.fwp.functional import State, apply
from plastinet.fwp.rules import Delta, Hebbian, Rule

__all__ = ["Config", "PROGRAMMERS", "param_shapes", "feedforward_forward", "recurrent_forward",
           "srwm_forward", "read_query", "rule_supports",
           "feedforward_backward", "recurrent_backward", "srwm_backward"]

PROGRAMMERS = ("linear", "mlp", "recurrent", "srwm")


@dataclass(frozen=True)
class Config:
    """Sizes and options a programmer needs (derived from the layer's specification)."""

    rule: Rule
    programmer: str
    d_in: int
    d_out: int
    heads: int
    d_key: int
    d_value: int
    hidden: int
    beta_scale: float
    values: str
    output: str
    form: str
    chunk_size: int
    learned_init: bool

    @property
    def d_phi(self) -> int:
        return self.rule.phi.out_dim(self.d_key)

    @property
    def gates(self) -> tuple[str, ...]:
        """Names of the programmed gates: beta, plus alpha or mod where the rule has one."""
        extra = ("alpha",) if self.rule.uses_alpha else ("mod",) if self.rule.uses_modulator else ()
        return ("beta",) + extra

    @property
    def srwm_rows(self) -> int:
        return self.d_value + 2 * self.d_key + 1


def param_shapes(c: Config) -> dict[str, tuple[tuple[int, ...], int]]:
    """Names, shapes and fan-in of the slow parameters (fan-in 0: a bias, initialised to 0)."""
    H, dk, dv = c.heads, c.d_key, c.d_value
    out: dict[str, tuple[tuple[int, ...], int]] = {}
    if c.programmer == "srwm":
        out["W0"] = ((H, c.srwm_rows, dk), dk)
    else:
        d_src = c.d_in
        if c.programmer == "mlp":
            out["W_hidden"] = ((c.hidden, c.d_in), c.d_in)
            out["b_hidden"] = ((c.hidden,), 0)
            d_src = c.hidden
        out["W_k"] = ((H * dk, d_src), d_src)
        out["W_q"] = ((H * dk, d_src), d_src)
        if c.values == "project":
            out["W_v"] = ((H * dv, d_src), d_src)
        for g in c.gates:
            out[f"W_{g}"] = ((H, d_src), d_src)
            out[f"b_{g}"] = ((H,), 0)
        if c.programmer == "recurrent":
            d_u = H * dv
            for name in ("k", "q") + (("v",) if c.values == "project" else ()) + c.gates:
                rows = H * (dv if name == "v" else dk) if name in ("k", "q", "v") else H
                out[f"R_{name}"] = ((rows, d_u), d_u)
    if c.learned_init and c.programmer != "srwm":
        out["W_init"] = ((H, dv, c.d_phi), c.d_phi)
    if c.output == "project":
        out["W_out"] = ((c.d_out, H * dv), H * dv)
        out["b_out"] = ((c.d_out,), 0)
    return out


# -- helpers --------------------------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _summed_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_{batch, time} a[..., i] b[..., j]`` as one BLAS product (``a``, ``b``: (B, T, .))."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def _split_heads(a: np.ndarray, H: int) -> np.ndarray:
    """``(B, T, H*d) -> (B, H, T, d)``."""
    B, T, _ = a.shape
    return a.reshape(B, T, H, -1).transpose(0, 2, 1, 3)


def _merge_heads(a: np.ndarray) -> np.ndarray:
    """``(B, H, T, d) -> (B, T, H*d)``."""
    B, H, T, d = a.shape
    return a.transpose(0, 2, 1, 3).reshape(B, T, H * d)


def _gate_values(c: Config, z: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gate pre-activations ``z[g] (..., H)`` to gate values."""
    out = {"beta": c.beta_scale * _sigmoid(z["beta"])}
    if "alpha" in z:
        out["alpha"] = _sigmoid(z["alpha"])
    if "mod" in z:
        out["mod"] = z["mod"]
    return out


def _output(c: Config, P: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
    return u @ P["W_out"].T + P["b_out"] if c.output == "project" else u


def _apply_kwargs(c: Config, g: dict[str, np.ndarray]) -> dict[str, Any]:
    kw: dict[str, Any] = {"beta": g["beta"]}
    if "alpha" in g:
        kw["alpha"] = g["alpha"]
    if "mod" in g:
        kw["modulator"] = g["mod"]
    return kw


def _initial_state(c: Config, P: dict[str, np.ndarray], B: int) -> np.ndarray | None:
    """The learned initial fast weights broadcast to the batch, ``(B, H, d_v, d_phi)``."""
    if not c.learned_init:
        return None
    return np.broadcast_to(P["W_init"], (B,) + P["W_init"].shape).copy()


def _input_values(c: Config, x: np.ndarray) -> np.ndarray:
    """``values="input"``: every head's value is the first ``d_v`` inputs, ``(B, H, T, d_v)``."""
    v = x[..., : c.d_value]
    return np.broadcast_to(v[:, None], (x.shape[0], c.heads) + v.shape[1:]).copy()


# -- linear and MLP -------------------------------------------------------------------------
def feedforward_forward(c: Config, P: dict[str, np.ndarray], x: np.ndarray,
                        segment: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Linear or MLP programmer, all steps at once through :func:`~plastinet.fwp.apply`.

    Parameters
    ----------
    c : Config
    P : dict of ndarray
        Slow parameters.
    x : ndarray, shape (B, T, d_in)
    segment : int, optional
        Run ``apply`` on segments of this many steps, carrying the state, and keep the
        fast weights after each full segment (for weight probes). The chunk length of
        the chunkwise form is capped at the sequence (or segment) length.

    Returns
    -------
    y : ndarray, shape (B, T, d_out)
    cache : dict
        Everything the backward pass and the probes need (``k, q, v, beta, ...`` of shape
        ``(B, H, T, ...)``, the final :class:`~plastinet.fwp.State` under ``"state"`` and the
        sampled weights under ``"W_samples"``, ``(S, B, H, d_v, d_phi)``).
    """
    H = c.heads
    h = x
    cache: dict[str, Any] = {"x": x}
    if c.programmer == "mlp":
        h = np.tanh(x @ P["W_hidden"].T + P["b_hidden"])
        cache["h"] = h
    k = _split_heads(h @ P["W_k"].T, H)
    q = _split_heads(h @ P["W_q"].T, H)
    v = _split_heads(h @ P["W_v"].T, H) if c.values == "project" else _input_values(c, x)
    z = {g: (h @ P[f"W_{g}"].T + P[f"b_{g}"]).transpose(0, 2, 1) for g in c.gates}
    gates = _gate_values(c, z)
    kw = _apply_kwargs(c, gates)
    T = x.shape[1]
    if segment is None:
        y_fw, state = apply(c.rule, q, k, v, form=c.form, chunk_size=min(c.chunk_size, T),
                            return_state=True, initial_state=_initial_state(c, P, x.shape[0]), **kw)
        samples: list[np.ndarray] = []
    else:
        ys, samples, state = [], [], _initial_state(c, P, x.shape[0])
        for s in range(0, T, segment):
            sl = slice(s, s + segment)
            y_s, state = apply(c.rule, q[:, :, sl], k[:, :, sl], v[:, :, sl], form=c.form,
                               chunk_size=min(c.chunk_size, segment), return_state=True, initial_state=state,
                               **{n: a[:, :, sl] for n, a in kw.items()})
            ys.append(y_s)
            if s + segment <= T:
                samples.append(state.W.copy())
        y_fw = np.concatenate(ys, axis=2)
    u = _merge_heads(y_fw)
    cache.update(k=k, q=q, v=v, z=z, gates=gates, u=u, state=state,
                 W_samples=np.stack(samples) if samples else None)
    return _output(c, P, u), cache


def read_query(c: Config, P: dict[str, np.ndarray], state: State,
               xq: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the final fast weights with queries programmed from ``xq``, plasticity off.

    ``y^q_j = W_T phi(q_j)`` (divided by ``z_T . phi(q_j) + eps`` for the normalised
    Hebbian rule), ``q_j`` programmed from ``xq_j`` exactly as the write-phase queries.

    Parameters
    ----------
    xq : ndarray, shape (B, T_q, d_in)

    Returns
    -------
    y_query : ndarray, shape (B, T_q, d_out)
    cache : dict
    """
    h = np.tanh(xq @ P["W_hidden"].T + P["b_hidden"]) if c.programmer == "mlp" else xq
    q = _split_heads(h @ P["W_q"].T, c.heads)
    fq, q_cache = c.rule.phi.forward(q)
    u = fq @ state.W.swapaxes(-1, -2)
    denom = None
    if isinstance(c.rule, Hebbian) and c.rule.normalize:
        denom = (fq @ state.normalizer[..., None]) + c.rule.eps
        u = u / denom
    uq = _merge_heads(u)
    return _output(c, P, uq), {"xq": xq, "hq": h, "q": q, "fq": fq, "q_cache": q_cache,
                               "u": uq, "denom": denom, "u_heads": u}


# -- recurrent ------------------------------------------------------------------------------
def recurrent_forward(c: Config, P: dict[str, np.ndarray],
                      x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Recurrent programmer (Irie et al. 2021), step by step.

    Returns ``y (B, T, d_out)`` and a cache with the per-step commands ``k, q, v, beta...``
    of shape ``(B, H, T, ...)``, the read-outs ``u (B, T, H d_v)`` and the states entering
    every step (``states[t]`` is the :class:`~plastinet.fwp.State` before step ``t``;
    ``states[T]`` the final one).
    """
    B, T, _ = x.shape
    H, dv = c.heads, c.d_value
    names = ("k", "q") + (("v",) if c.values == "project" else ())
    feed = {n: x @ P[f"W_{n}"].T for n in names}
    feed.update({g: x @ P[f"W_{g}"].T + P[f"b_{g}"] for g in c.gates})
    v_in = _input_values(c, x) if c.values == "input" else None
    u = np.zeros((B, T, H * dv), dtype=x.dtype)
    r = np.zeros((B, H * dv), dtype=x.dtype)
    state: Any = _initial_state(c, P, B)
    states = []
    steps: dict[str, list[np.ndarray]] = {n: [] for n in ("k", "q", "v") + c.gates}
    for t in range(T):
        pre = {n: feed[n][:, t] + r @ P[f"R_{n}"].T for n in feed}
        cmd = {n: pre[n].reshape(B, H, 1, -1) for n in names}
        if v_in is not None:
            cmd["v"] = v_in[:, :, t:t + 1]
        z = {g: pre[g][:, :, None] for g in c.gates}
        gates = _gate_values(c, z)
        states.append(state)
        y_t, state = apply(c.rule, cmd["q"], cmd["k"], cmd["v"], form="recurrent",
                           return_state=True, initial_state=state, **_apply_kwargs(c, gates))
        u[:, t] = y_t.reshape(B, H * dv)
        r = np.tanh(u[:, t])
        for n in ("k", "q", "v"):
            steps[n].append(cmd[n])
        for g in c.gates:
            steps[g].append(gates[g])
    states.append(state)
    if not isinstance(states[0], State):
        states[0] = _first_state(states[0], states[1])
    cache: dict[str, Any] = {n: np.concatenate(a, axis=2) for n, a in steps.items()}
    cache["gates"] = {g: cache.pop(g) for g in c.gates}
    cache.update(x=x, u=u, states=states, state=state)
    return _output(c, P, u), cache


def _first_state(W0: np.ndarray | None, like: State) -> State:
    """The full state entering step 0: ``W0`` (zeros if None), zero auxiliary states."""
    zero = State(*(None if s is None else np.zeros_like(s) for s in like))
    return zero if W0 is None else zero._replace(W=W0)


# -- self-referential weight matrix ---------------------------------------------------------
def srwm_forward(c: Config, P: dict[str, np.ndarray],
                 x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Self-referential weight matrix (Irie et al. 2022, eqs. 5-8), step by step.

    Returns ``y (B, T, d_out)`` and a cache with the matrices entering every step
    ``Ws (T + 1, B, H, d_v + 2 d_h + 1, d_h)`` and the per-step ``k, q (B, H, T, d_h)``,
    ``v, vbar (B, H, T, rows)``, ``beta (B, H, T)``.
    """
    B, T, _ = x.shape
    H, dh, dv = c.heads, c.d_key, c.d_value
    phi = c.rule.phi
    xh = x.reshape(B, T, H, dh)
    W = np.broadcast_to(P["W0"], (B,) + P["W0"].shape).copy()
    Ws = np.empty((T + 1,) + W.shape, dtype=x.dtype)
    rows = c.srwm_rows
    u = np.empty((B, T, H, dv), dtype=x.dtype)
    k = np.empty((B, H, T, dh), dtype=x.dtype)
    q = np.empty_like(k)
    fk, fq = np.empty_like(k), np.empty_like(k)
    v = np.empty((B, H, T, rows), dtype=x.dtype)
    vbar = np.empty_like(v)
    zb = np.empty((B, H, T), dtype=x.dtype)
    for t in range(T):
        Ws[t] = W
        o = np.einsum("bhrd,bhd->bhr", W, xh[:, t])
        u[:, t] = o[..., :dv]
        k[:, :, t] = o[..., dv:dv + dh]
        q[:, :, t] = o[..., dv + dh:dv + 2 * dh]
        zb[:, :, t] = o[..., -1]
        fk[:, :, t] = phi(k[:, :, t])
        fq[:, :, t] = phi(q[:, :, t])
        v[:, :, t] = np.einsum("bhrd,bhd->bhr", W, fk[:, :, t])
        vbar[:, :, t] = np.einsum("bhrd,bhd->bhr", W, fq[:, :, t])
        s = c.beta_scale * _sigmoid(zb[:, :, t])
        W = W + s[..., None, None] * (v[:, :, t] - vbar[:, :, t])[..., :, None] * fk[:, :, t][..., None, :]
    Ws[T] = W
    u = u.reshape(B, T, H * dv)
    beta = c.beta_scale * _sigmoid(zb)
    cache = {"x": x, "Ws": Ws, "k": k, "q": q, "fk": fk, "fq": fq, "v": v, "vbar": vbar,
             "z": zb, "gates": {"beta": beta}, "u": u}
    return _output(c, P, u), cache


def rule_supports(c: Config) -> str | None:
    """Why the programmer cannot drive the rule (``None`` if it can)."""
    if c.programmer == "srwm" and not isinstance(c.rule, Delta):
        return "the self-referential programmer implements its own delta-style update: use rule='delta'"
    if c.programmer == "srwm" and c.rule.phi.out_dim(c.d_key) != c.d_key:
        return "the self-referential programmer needs a size-preserving feature map (not DPFP)"
    return None



# -- backward passes ------------------------------------------------------------------------
def _zeros_like_params(P: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: np.zeros_like(p) for n, p in P.items()}


def _gate_pre_grads(c: Config, gates: dict[str, np.ndarray],
                    dgates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cotangents of the gate values to their pre-activations (same shapes)."""
    out = {}
    for g, d in dgates.items():
        val = gates[g]
        if g == "beta":
            out[g] = d * val * (1.0 - val / c.beta_scale)
        elif g == "alpha":
            out[g] = d * val * (1.0 - val)
        else:
            out[g] = d
    return out


def _output_backward(c: Config, P: dict[str, np.ndarray], G: dict[str, np.ndarray],
                     u: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Accumulate the output projection's gradients into ``G``; return ``du``."""
    if c.output != "project":
        return dy
    G["W_out"] += _summed_outer(dy, u)
    G["b_out"] += dy.sum(axis=(0, 1))
    return dy @ P["W_out"]


def _vjp_gates(c: Config, g: dict[str, Any]) -> dict[str, np.ndarray]:
    """The gate cotangents from a :func:`~plastinet.fwp.vjp` result, keyed like the gates."""
    names = {"beta": "beta", "alpha": "alpha", "mod": "modulator"}
    return {n: g[names[n]] for n in c.gates}


def feedforward_backward(c: Config, P: dict[str, np.ndarray], cache: dict[str, Any],
                         dy: np.ndarray, dy_query: np.ndarray | None
                         ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """Gradients of the linear/MLP programmer, through :func:`plastinet.fwp.vjp`.

    Parameters
    ----------
    cache : dict
        From :func:`feedforward_forward` (with ``cache["query"]`` from :func:`read_query`
        when ``dy_query`` is given).
    dy : ndarray, shape (B, T, d_out)
        Cotangent of the outputs.
    dy_query : ndarray, shape (B, T_q, d_out), or None
        Cotangent of the read-phase outputs.

    Returns
    -------
    grads : dict of ndarray
        Same keys and shapes as ``P``.
    dx : ndarray, shape (B, T, d_in)
    dquery : ndarray, shape (B, T_q, d_in), or None
    """
    from plastinet.fwp.gradients import vjp

    G = _zeros_like_params(P)
    H = c.heads
    x = cache["x"]
    dstate: Any = None
    dquery = None
    if dy_query is not None:
        qc = cache["query"]
        state: State = cache["state"]
        du = _split_heads(_output_backward(c, P, G, qc["u"], dy_query), H)   # (B, H, Tq, d_v)
        fq = qc["fq"]
        dz_T = None
        if qc["denom"] is not None:
            den = qc["denom"]
            dden = -(du * qc["u_heads"]).sum(-1, keepdims=True) / den
            du = du / den
            dz_T = (dden.swapaxes(-1, -2) @ fq)[:, :, 0]
            dfq = dden * state.normalizer[:, :, None, :]
        else:
            dfq = np.zeros_like(fq)
        dW_T = du.swapaxes(-1, -2) @ fq
        dfq = dfq + du @ state.W
        dq = _merge_heads(c.rule.phi.vjp(qc["q_cache"], dfq))
        G["W_q"] += _summed_outer(dq, qc["hq"])
        dhq = dq @ P["W_q"]
        if c.programmer == "mlp":
            da = dhq * (1.0 - qc["hq"] ** 2)
            G["W_hidden"] += _summed_outer(da, qc["xq"])
            G["b_hidden"] += da.sum(axis=(0, 1))
            dquery = da @ P["W_hidden"]
        else:
            dquery = dhq
        dstate = State(dW_T, dz_T, None) if dz_T is not None else dW_T
    du = _split_heads(_output_backward(c, P, G, cache["u"], dy), H)
    init = _initial_state(c, P, x.shape[0])
    g = vjp(c.rule, cache["q"], cache["k"], cache["v"], du, initial_state=init, dW=dstate,
            form=c.form, chunk_size=min(c.chunk_size, x.shape[1]), **_apply_kwargs(c, cache["gates"]))
    if init is not None:
        G["W_init"] += g["initial_state"].sum(axis=0)
    h = cache.get("h", x)
    dh = np.zeros_like(h)
    dx = np.zeros_like(x)
    for name in ("k", "q", "v"):
        d = _merge_heads(g[name])
        if name == "v" and c.values == "input":
            dx[..., : c.d_value] += g["v"].sum(axis=1)
            continue
        G[f"W_{name}"] += _summed_outer(d, h)
        dh += d @ P[f"W_{name}"]
    dz = _gate_pre_grads(c, cache["gates"], _vjp_gates(c, g))
    for name, d in dz.items():
        d = d.transpose(0, 2, 1)                                          # (B, T, H)
        G[f"W_{name}"] += _summed_outer(d, h)
        G[f"b_{name}"] += d.sum(axis=(0, 1))
        dh += d @ P[f"W_{name}"]
    if c.programmer == "mlp":
        da = dh * (1.0 - h ** 2)
        G["W_hidden"] += _summed_outer(da, x)
        G["b_hidden"] += da.sum(axis=(0, 1))
        dx += da @ P["W_hidden"]
    else:
        dx += dh
    return G, dx, dquery


def recurrent_backward(c: Config, P: dict[str, np.ndarray], cache: dict[str, Any],
                       dy: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Backpropagation through time of the recurrent programmer.

    Each step's rule update is pulled back with :func:`plastinet.fwp.vjp` (one step, from the
    stored entering state); the recurrence ``tanh(u_{t-1})`` is pulled back here.

    Returns
    -------
    grads : dict of ndarray
        Same keys and shapes as ``P``.
    dx : ndarray, shape (B, T, d_in)
    """
    from plastinet.fwp.gradients import vjp

    G = _zeros_like_params(P)
    x, u, states = cache["x"], cache["u"], cache["states"]
    B, T, _ = x.shape
    H = c.heads
    names = ("k", "q") + (("v",) if c.values == "project" else ())
    du_ext = _output_backward(c, P, G, u, dy)
    r = np.tanh(u)
    dr = np.zeros((B, u.shape[-1]), dtype=x.dtype)
    dS: Any = State(*(None if s is None else np.zeros_like(s) for s in states[T]))
    dfeed = {n: np.zeros((B, T, P[f"W_{n}"].shape[0]), dtype=x.dtype) for n in names + c.gates}
    dx = np.zeros_like(x)
    for t in range(T - 1, -1, -1):
        du_t = du_ext[:, t] + dr * (1.0 - r[:, t] ** 2)
        sl = slice(t, t + 1)
        gates = {g: cache["gates"][g][:, :, sl] for g in c.gates}
        g = vjp(c.rule, cache["q"][:, :, sl], cache["k"][:, :, sl], cache["v"][:, :, sl],
                du_t.reshape(B, H, 1, -1), initial_state=states[t], dW=dS, form="recurrent",
                **_apply_kwargs(c, gates))
        dS = g["initial_state"]
        dpre = {n: g[n].reshape(B, -1) for n in names}
        if c.values == "input":
            dx[:, t, : c.d_value] += g["v"].sum(axis=(1, 2))
        dpre.update({n: d[:, :, 0] for n, d in _gate_pre_grads(c, gates, _vjp_gates(c, g)).items()})
        r_prev = r[:, t - 1] if t else np.zeros_like(dr)
        dr = np.zeros_like(dr)
        for n, d in dpre.items():
            dfeed[n][:, t] = d
            G[f"R_{n}"] += d.T @ r_prev
            dr += d @ P[f"R_{n}"]
    if c.learned_init:
        G["W_init"] += dS.W.sum(axis=0)
    for n, d in dfeed.items():
        G[f"W_{n}"] += _summed_outer(d, x)
        if n in c.gates:
            G[f"b_{n}"] += d.sum(axis=(0, 1))
        dx += d @ P[f"W_{n}"]
    return G, dx


def srwm_backward(c: Config, P: dict[str, np.ndarray], cache: dict[str, Any],
                  dy: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Backpropagation through time of the self-referential weight matrix (exact).

    Reverse of ``W_t = W_{t-1} + s_t (v_t - vbar_t) phi(k_t)^T`` with ``v_t = W_{t-1}
    phi(k_t)``, ``vbar_t = W_{t-1} phi(q_t)``, ``[y_t, k_t, q_t, z_t] = W_{t-1} x_t``,
    ``s_t = c sigmoid(z_t)``, from the stored matrices entering every step.

    Returns
    -------
    grads : dict of ndarray
        Same keys and shapes as ``P`` (``W0`` summed over the batch).
    dx : ndarray, shape (B, T, d_in)
    """
    G = _zeros_like_params(P)
    x, Ws = cache["x"], cache["Ws"]
    B, T, _ = x.shape
    H, dh, dv = c.heads, c.d_key, c.d_value
    phi = c.rule.phi
    xh = x.reshape(B, T, H, dh)
    du = _output_backward(c, P, G, cache["u"], dy).reshape(B, T, H, dv)
    beta = cache["gates"]["beta"]
    gW = np.zeros_like(Ws[0])
    dx = np.zeros((B, T, H, dh), dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        W = Ws[t]
        fk, fq = cache["fk"][:, :, t], cache["fq"][:, :, t]
        diff = cache["v"][:, :, t] - cache["vbar"][:, :, t]                 # (B, H, rows)
        s = beta[:, :, t]
        g_diff = s[..., None] * np.einsum("bhrd,bhd->bhr", gW, fk)
        dfk = s[..., None] * np.einsum("bhrd,bhr->bhd", gW, diff)
        ds = np.einsum("bhrd,bhr,bhd->bh", gW, diff, fk)
        # v = W fk, vbar = W fq (gW keeps the identity path W_t -> W_{t-1})
        gW = gW + g_diff[..., :, None] * fk[..., None, :] - g_diff[..., :, None] * fq[..., None, :]
        dfk = dfk + np.einsum("bhrd,bhr->bhd", W, g_diff)
        dfq = -np.einsum("bhrd,bhr->bhd", W, g_diff)
        _, k_cache = phi.forward(cache["k"][:, :, t])
        _, q_cache = phi.forward(cache["q"][:, :, t])
        dk = phi.vjp(k_cache, dfk)
        dq = phi.vjp(q_cache, dfq)
        dz = ds * s * (1.0 - s / c.beta_scale)
        do = np.concatenate([du[:, t], dk, dq, dz[..., None]], axis=-1)     # (B, H, rows)
        gW = gW + do[..., :, None] * xh[:, t][..., None, :]
        dx[:, t] = np.einsum("bhrd,bhr->bhd", W, do)
    G["W0"] += gW.sum(axis=0)
    return G, dx.reshape(B, T, H * dh)
