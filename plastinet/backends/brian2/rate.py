"""Rate fast-weight rules lowered to Brian2.

Layout for ``N = B * H`` independent memories: a key group ``pre`` (``N * d_phi`` units),
a value group ``post`` (``N * d_v`` units), and ``Synapses`` connecting every key unit of
memory ``n`` to every value unit of memory ``n``; synapse ``(i, j)`` holds ``W[n, i, j]``.
One time step of the rule is one tick of a clock with nominal ``dt = 1 ms``, scheduled as

=================  ==========================================================================
slot               what runs
=================  ==========================================================================
``start``          inputs from ``TimedArray``\\s: ``k, q`` (pre), ``v, beta, alpha, m`` (post)
``groups``         ``(summed)``: ``pred_i = sum_j w_ij k_j`` (``W_{t-1} k_t``); Oja also
                   ``uw_j = sum_i pred_i w_ij``
``synapses``       ``run_regularly``: the rule's weight update (table below)
``after_synapses`` ``(summed)``: ``y_i = sum_j w_ij q_j`` (``W_t q_t``); normaliser if any
``end``            ``StateMonitor`` records ``y``
=================  ==========================================================================

The feature map is applied before lowering (it belongs to the programmer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet.backends.brian2.session import brian2_run, run_network
from plastinet.errors import UnsupportedError, check_numerical_policy
from plastinet.fwp.functional import State, _check_output, prepare
from plastinet.fwp.rules import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, ThreeFactor

__all__ = ["apply_fwp", "update_code"]


def update_code(rule: Rule, per_key_alpha: bool = False) -> str:
    """The Brian2 synaptic ``run_regularly`` code of one step of ``rule``."""
    if isinstance(rule, Hebbian):
        return "w = w + beta_post * v_post * k_pre"
    if isinstance(rule, DecayedHebbian):
        gate = "alpha_pre" if per_key_alpha else "alpha_post"
        return f"w = {gate} * w + beta_post * v_post * k_pre"
    if isinstance(rule, Delta):
        return "w = w + beta_post * (v_post - pred_post) * k_pre"
    if isinstance(rule, GatedDelta):
        return "w = alpha_post * (w - beta_post * pred_post * k_pre) + beta_post * v_post * k_pre"
    if isinstance(rule, Oja):
        return "w = w + beta_post * pred_post * (k_pre - uw_pre)"
    if isinstance(rule, ThreeFactor):
        return "E = gamma * E + beta_post * v_post * k_pre\nw = w + m_post * E"
    raise UnsupportedError("brian2 backend", "rule", rule, "no Brian2 lowering for this rule")


def _series(x: np.ndarray) -> np.ndarray:
    """(N, T, d) -> (T, N * d), the layout of a 2-D TimedArray."""
    N, T, d = x.shape
    return np.ascontiguousarray(np.transpose(x, (1, 0, 2)).reshape(T, N * d), dtype=np.float64)


def apply_fwp(rule: Any, q: Any, k: Any, v: Any, *, beta: Any = None, alpha: Any = None,
              modulator: Any = None, initial_state: Any = None, target: str = "numpy",
              return_state: bool = False, on_numerical: str = "raise") -> tuple[np.ndarray, Any]:
    """Run a rate rule as a Brian2 network (see :func:`plastinet.fwp.apply` for the contract).

    Parameters
    ----------
    rule, q, k, v, beta, alpha, modulator, initial_state, return_state, on_numerical
        As in :func:`plastinet.fwp.apply` (recurrent semantics; the read-back state is
        checked for non-finite values).
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 code-generation target. Computation is float64; outputs are cast back to the
        input dtype.

    Returns
    -------
    y : ndarray, shape (B, H, T, d_v)
    W_final : ndarray (B, H, d_v, d_phi), or State
    """
    check_numerical_policy("brian2 backend", on_numerical)
    p = prepare(rule, q, k, v, beta=beta, alpha=alpha, modulator=modulator,
                initial_state=initial_state, form="recurrent")
    rule = p.rule
    B, H, T = p.shape
    N, _, d_k = p.k.shape
    d_v = p.v.shape[-1]
    per_key = p.alpha is not None and p.alpha.shape[-1] > 1
    expand_post = lambda g: np.repeat(g[:, :, None], d_v, axis=2)          # (N, T) -> (N, T, d_v)  # noqa: E731

    with brian2_run(target) as b2:
        step = 1 * b2.ms
        clock = b2.Clock(step, name="fwp_step*")          # one explicit clock for every object
        ns: dict[str, Any] = {"K_in": b2.TimedArray(_series(p.k), dt=step),
                              "Q_in": b2.TimedArray(_series(p.q), dt=step),
                              "V_in": b2.TimedArray(_series(p.v), dt=step),
                              "BETA_in": b2.TimedArray(_series(expand_post(p.beta)), dt=step)}
        pre_eqs = ["k : 1", "q : 1"]
        post_eqs = ["v : 1", "beta : 1", "pred : 1", "y : 1"]
        pre_code = ["k = K_in(t, i)", "q = Q_in(t, i)"]
        post_code = ["v = V_in(t, i)", "beta = BETA_in(t, i)"]
        syn_eqs = ["w : 1", "pred_post = w * k_pre : 1 (summed)", "y_post = w * q_pre : 1 (summed)"]
        if p.alpha is not None:
            if per_key:
                ns["ALPHA_in"] = b2.TimedArray(_series(p.alpha), dt=step)
                pre_eqs.append("alpha : 1")
                pre_code.append("alpha = ALPHA_in(t, i)")
            else:
                ns["ALPHA_in"] = b2.TimedArray(_series(expand_post(p.alpha[:, :, 0])), dt=step)
                post_eqs.append("alpha : 1")
                post_code.append("alpha = ALPHA_in(t, i)")
        if isinstance(rule, ThreeFactor):
            ns["M_in"] = b2.TimedArray(_series(expand_post(p.modulator)), dt=step)
            ns["gamma"] = float(rule.gamma)
            post_eqs.append("m : 1")
            post_code.append("m = M_in(t, i)")
            syn_eqs.append("E : 1")
        if isinstance(rule, Oja):
            pre_eqs.append("uw : 1")
            syn_eqs.append("uw_pre = pred_post * w : 1 (summed)")
        normalize = isinstance(rule, Hebbian) and rule.normalize
        if normalize:
            pre_eqs.append("z : 1")
            pre_code.append("z = z + k")
            post_eqs += ["ynum : 1", "den : 1"]
            syn_eqs[-1] = "ynum_post = w * q_pre : 1 (summed)"
            syn_eqs.append("den_post = z_pre * q_pre : 1 (summed)")
            ns["eps"] = float(rule.eps)

        # post runs before pre within a slot, so Oja's uw (summed into pre) sees pred
        post = b2.NeuronGroup(N * d_v, "\n".join(post_eqs), clock=clock, order=0, name="fwp_post*")
        pre = b2.NeuronGroup(N * d_k, "\n".join(pre_eqs), clock=clock, order=2, name="fwp_pre*")
        for group in (pre, post):       # no differential equations: skip the empty state updaters
            group.state_updater.active = False
        pre.run_regularly("\n".join(pre_code), when="start", clock=clock)
        post.run_regularly("\n".join(post_code), when="start", clock=clock)
        syn = b2.Synapses(pre, post, "\n".join(syn_eqs), clock=clock, name="fwp_syn*")
        n_idx, i_idx, j_idx = np.meshgrid(np.arange(N), np.arange(d_v), np.arange(d_k), indexing="ij")
        syn.connect(i=(n_idx * d_k + j_idx).ravel(), j=(n_idx * d_v + i_idx).ravel())
        syn.w = p.state.W.astype(np.float64).ravel()
        if isinstance(rule, ThreeFactor):
            syn.E = p.state.eligibility.astype(np.float64).ravel()
        if normalize:
            pre.z = p.state.normalizer.astype(np.float64).ravel()
        syn.run_regularly(update_code(rule, per_key), when="synapses", clock=clock)
        readout = "ynum_post" if normalize else "y_post"
        syn.summed_updaters[readout].when = "after_synapses"
        objects = [pre, post, syn]
        if normalize:
            syn.summed_updaters["den_post"].when = "after_synapses"
            objects.append(post.run_regularly("y = ynum / (den + eps)", when="after_synapses",
                                              order=5, clock=clock))
        monitor = b2.StateMonitor(post, "y", record=True, when="end", clock=clock)
        net = b2.Network(*objects, monitor)
        run_network(net, T * step, namespace=ns)
        y_rec = np.asarray(monitor.y)                                     # (N * d_v, T)
        W = np.asarray(syn.w[:]).reshape(N, d_v, d_k)
        E = np.asarray(syn.E[:]).reshape(N, d_v, d_k) if isinstance(rule, ThreeFactor) else None
        z = np.asarray(pre.z[:]).reshape(N, d_k) if normalize else None

    dtype = p.v.dtype
    y = y_rec.reshape(N, d_v, T).transpose(0, 2, 1).astype(dtype)
    state = State(W.astype(dtype), None if z is None else z.astype(dtype),
                  None if E is None else E.astype(dtype))
    _check_output(p, y, state, on_numerical=on_numerical)
    full = State(*(None if s is None else s.reshape((B, H) + s.shape[1:]) for s in state))
    y = y.reshape(B, H, T, d_v)
    return (y, full) if return_state else (y, full.W)
