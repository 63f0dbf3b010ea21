"""Projection state and the event-driven plasticity kernels of the numpy engine.

Synapses are stored sorted by presynaptic neuron (CSR, ``indptr_pre``) with a
permutation by postsynaptic neuron (``by_post``, ``indptr_post``), so a pre spike touches
its fan-out and a post spike its fan-in: the cost of a step grows with spikes x fan-out.
Traces live per neuron (they depend only on that neuron's spikes) and are evaluated
lazily and exactly: ``value * exp(-(t - t_last) / tau)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plastinet.errors import RangeError
from plastinet.spiking.draws import connectivity
from plastinet.spiking.guards import check_tau
from plastinet.spiking.network import Projection, RateUnits
from plastinet.spiking.rules import PES, DopamineSTDP, ModulatedHebbian, PairSTDP, TripletSTDP

_NEVER = -(2 ** 40)


class Trace:
    """Per-neuron exponential trace with lazy exact decay; jumps ``+= amp`` or ``= amp``."""

    def __init__(self, n: int, tau: float, dt: float, amp: float = 1.0, reset: bool = False) -> None:
        self.val = np.zeros(n)
        self.last = np.full(n, _NEVER, dtype=np.int64)
        self.tau, self.dt, self.amp, self.reset = tau, dt, amp, reset

    def at(self, idx: Any, step: Any) -> np.ndarray:
        """Value of the trace of neurons ``idx`` at ``step`` (before any jump at ``step``)."""
        return self.val[idx] * np.exp(-((step - self.last[idx]) * self.dt) / self.tau)

    def bump(self, idx: np.ndarray, step: Any) -> np.ndarray:
        """Jump the traces of the (distinct) neurons ``idx``; returns the value before."""
        before = self.at(idx, step)
        self.val[idx] = self.amp if self.reset else before + self.amp
        self.last[idx] = step
        return before

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self.val.copy(), self.last.copy()

    def restore(self, snap: tuple[np.ndarray, np.ndarray]) -> None:
        self.val, self.last = snap


def gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated index ranges ``indptr[r]:indptr[r+1]`` and the row position of each."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    if rows.size == 1:
        return np.arange(starts[0], starts[0] + counts[0]), np.zeros(counts[0], dtype=np.int64)
    rep = np.repeat(np.arange(rows.size), counts)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return starts[rep] + offs, rep


class ProjectionState:
    """Connectivity, weights, short-term and long-term plasticity state of a projection."""

    def __init__(self, proj: Projection, dt: float, rng: np.random.Generator, modulators: dict) -> None:
        self.proj, self.name, self.dt = proj, proj.name, dt
        n_pre, n_post = proj.pre.n, proj.post.n
        self.n_pre, self.n_post = n_pre, n_post
        self.dense = proj.connectivity == "all"
        drawn = connectivity(proj, rng)
        self.pre, self.post, self.w = drawn.pre, drawn.post, drawn.w
        n_syn = self.pre.size
        self.w_min, self.w_max = proj.w_min, proj.w_max
        self.bounded = math.isfinite(self.w_min) or math.isfinite(self.w_max)
        self.indptr_pre = np.searchsorted(self.pre, np.arange(n_pre + 1))
        self.by_post = np.argsort(self.post, kind="stable")
        self.indptr_post = np.searchsorted(self.post[self.by_post], np.arange(n_post + 1))
        self.target = proj.target
        self.scale = 1.0 / proj.post.tau if isinstance(proj.post, RateUnits) else 1.0
        self.transmits = proj.target != "none"
        # short-term plasticity (per presynaptic neuron)
        self.stp = proj.stp
        if self.stp is not None:
            check_tau(f"TsodyksMarkram ({proj.name!r})", "tau_rec", self.stp.tau_rec, dt)
            if self.stp.tau_facil > 0:
                check_tau(f"TsodyksMarkram ({proj.name!r})", "tau_facil", self.stp.tau_facil, dt)
            self.u = np.zeros(n_pre)
            self.R = np.ones(n_pre)
            self.stp_last = np.full(n_pre, _NEVER, dtype=np.int64)
        # long-term plasticity
        rule = self.rule = proj.rule
        self.rule_name = None if rule is None else type(rule).__name__
        self.traces_pre: list[Trace] = []
        self.traces_post: list[Trace] = []
        owner = f"{self.rule_name} ({proj.name!r})"
        if isinstance(rule, PairSTDP):
            check_tau(owner, "tau_plus", rule.tau_plus, dt)
            check_tau(owner, "tau_minus", rule.tau_minus, dt)
            near = rule.pairing == "nearest"
            self.x = Trace(n_pre, rule.tau_plus, dt, reset=near)
            self.y = Trace(n_post, rule.tau_minus, dt, reset=near)
            self.traces_pre, self.traces_post = [self.x], [self.y]
        elif isinstance(rule, TripletSTDP):
            for name in ("tau_plus", "tau_minus", "tau_x", "tau_y"):
                check_tau(owner, name, getattr(rule, name), dt)
            near = rule.pairing == "nearest"
            self.r1 = Trace(n_pre, rule.tau_plus, dt, reset=near)
            self.r2 = Trace(n_pre, rule.tau_x, dt, reset=near)
            self.o1 = Trace(n_post, rule.tau_minus, dt, reset=near)
            self.o2 = Trace(n_post, rule.tau_y, dt, reset=near)
            self.traces_pre, self.traces_post = [self.r1, self.r2], [self.o1, self.o2]
        elif isinstance(rule, DopamineSTDP):
            for name in ("tau_plus", "tau_minus", "tau_c"):
                check_tau(owner, name, getattr(rule, name), dt)
            self.kp = Trace(n_pre, rule.tau_plus, dt)
            self.km = Trace(n_post, rule.tau_minus, dt)
            self.traces_pre, self.traces_post = [self.kp], [self.km]
            self.c = np.zeros(n_syn)
            self.t_last = np.zeros(n_syn, dtype=np.int64)
            self.mod = modulators[rule.modulator]
            tau_n = self.mod.tau
            self.tau_s = rule.tau_c * tau_n / (rule.tau_c + tau_n)
        elif isinstance(rule, (ModulatedHebbian, PES)):
            check_tau(owner, "tau_pre", rule.tau_pre, dt)
            self.xr = Trace(n_pre, rule.tau_pre, dt, amp=1.0 / rule.tau_pre)
            self.traces_pre = [self.xr]
            self.mod = modulators[rule.modulator]
            self.post_trace = None
            if isinstance(rule, ModulatedHebbian) and proj.post.spiking:
                self.post_trace = Trace(n_post, rule.tau_pre, dt, amp=1.0 / rule.tau_pre)
                self.traces_post = [self.post_trace]
            elif isinstance(rule, ModulatedHebbian) and rule.post_variable not in proj.post.inputs:
                raise RangeError("ModulatedHebbian", "post_variable", rule.post_variable,
                                 f"RateUnits {proj.post.name!r} has inputs {list(proj.post.inputs)}")
        self.has_post_pathway = bool(self.traces_post)
        self.continuous = isinstance(rule, (ModulatedHebbian, PES))

    # -- helpers --------------------------------------------------------------------------
    def clip(self, syn: np.ndarray, values: np.ndarray) -> None:
        if self.bounded:
            np.clip(values, self.w_min, self.w_max, out=values)
        self.w[syn] = values

    def fan_out(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return gather(self.indptr_pre, rows)

    def fan_in(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, rep = gather(self.indptr_post, rows)
        return self.by_post[pos], rep

    def snapshot(self) -> dict:
        snap: dict[str, Any] = {"w": self.w.copy(), "tr": [t.snapshot() for t in self.traces_pre]}
        if self.stp is not None:
            snap["stp"] = (self.u.copy(), self.R.copy(), self.stp_last.copy())
        if self.rule_name == "DopamineSTDP":
            snap["c"] = (self.c.copy(), self.t_last.copy())
        return snap

    def restore(self, snap: dict) -> None:
        self.w = snap["w"]
        for t, s in zip(self.traces_pre, snap["tr"]):
            t.restore(s)
        if "stp" in snap:
            self.u, self.R, self.stp_last = snap["stp"]
        if "c" in snap:
            self.c, self.t_last = snap["c"]

    def integrate_dopamine(self, syn: Any, step: Any, commit: bool = True) -> np.ndarray:
        """Bring ``w`` and ``c`` of synapses ``syn`` exactly up to ``step`` (NEST's closed form)."""
        rule, mod = self.rule, self.mod
        tl = self.t_last[syn]
        dt = self.dt
        delta = (step - tl) * dt
        n0 = mod.val * np.exp(-((tl - mod.last) * dt) / mod.tau)
        c = self.c[syn]
        w = self.w[syn] + c * (n0 * self.tau_s * -np.expm1(-delta / self.tau_s)
                               - rule.b * rule.tau_c * -np.expm1(-delta / rule.tau_c))
        if self.bounded:
            np.clip(w, self.w_min, self.w_max, out=w)
        if commit:
            self.w[syn] = w
            self.c[syn] = c * np.exp(-delta / rule.tau_c)
            self.t_last[syn] = step
        return w

    def weights_at(self, step: int) -> np.ndarray:
        """Current weights (dopamine synapses integrated to ``step`` without changing state)."""
        if self.rule_name == "DopamineSTDP":
            return self.integrate_dopamine(slice(None), step, commit=False)
        return self.w.copy()

    # -- pathways -------------------------------------------------------------------------
    def pre_round(self, steps: Any, js: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Pre pathway for distinct neurons ``js`` spiking at ``steps`` (array or scalar).

        Returns ``(event position of each synapse, post index, delivered value)`` (or None
        when the projection transmits nothing).
        """
        factor = None
        if self.stp is not None:
            stp = self.stp
            gap = (steps - self.stp_last[js]) * self.dt
            if stp.tau_facil > 0:
                u = self.u[js] * np.exp(-gap / stp.tau_facil)
                u = u + stp.U * (1.0 - u)
            else:
                u = np.full(js.size, stp.U)
            R = 1.0 + (self.R[js] - 1.0) * np.exp(-gap / stp.tau_rec)
            factor = u * R
            self.u[js], self.R[js], self.stp_last[js] = u, R - u * R, steps
        syn, rep = self.fan_out(js)
        ss = steps[rep] if isinstance(steps, np.ndarray) else steps
        rule_name = self.rule_name
        if rule_name is None:
            delivered = self.w[syn]
        elif rule_name == "PairSTDP":
            delivered = self.w[syn]
            self.x.bump(js, steps)
            y = self.y.at(self.post[syn], ss)
            rule = self.rule
            if rule.bound == "additive":
                new = delivered - rule.A_minus * y
            else:
                new = delivered - rule.A_minus * (delivered - self.w_min) * y
            self.clip(syn, new)
        elif rule_name == "TripletSTDP":
            delivered = self.w[syn]
            rule = self.rule
            r2 = self.r2.bump(js, steps)
            self.r1.bump(js, steps)
            o1 = self.o1.at(self.post[syn], ss)
            self.clip(syn, delivered - o1 * (rule.A2_minus + rule.A3_minus * r2[rep]))
        elif rule_name == "DopamineSTDP":
            delivered = self.integrate_dopamine(syn, ss)
            self.c[syn] -= self.rule.A_minus * self.km.at(self.post[syn], ss)
            self.kp.bump(js, steps)
        else:  # continuous rules: the pre rate trace
            delivered = self.w[syn]
            self.xr.bump(js, steps)
        if not self.transmits:
            return None
        if factor is not None:
            delivered = delivered * factor[rep]
        if self.scale != 1.0:
            delivered = delivered * self.scale
        return rep, self.post[syn], delivered

    def post_pathway(self, step: int, idx: np.ndarray) -> None:
        """Post pathway for post neurons ``idx`` spiking at ``step``."""
        rule_name = self.rule_name
        if rule_name == "PairSTDP":
            self.y.bump(idx, step)
            syn, _ = self.fan_in(idx)
            x = self.x.at(self.pre[syn], step)
            rule = self.rule
            w = self.w[syn]
            if rule.bound == "additive":
                self.clip(syn, w + rule.A_plus * x)
            else:
                self.clip(syn, w + rule.A_plus * (self.w_max - w) * x)
        elif rule_name == "TripletSTDP":
            rule = self.rule
            o2 = self.o2.bump(idx, step)
            self.o1.bump(idx, step)
            syn, rep = self.fan_in(idx)
            r1 = self.r1.at(self.pre[syn], step)
            self.clip(syn, self.w[syn] + r1 * (rule.A2_plus + rule.A3_plus * o2[rep]))
        elif rule_name == "DopamineSTDP":
            syn, _ = self.fan_in(idx)
            self.integrate_dopamine(syn, step)
            self.c[syn] += self.rule.A_plus * self.kp.at(self.pre[syn], step)
            self.km.bump(idx, step)
        elif rule_name == "ModulatedHebbian" and self.post_trace is not None:
            self.post_trace.bump(idx, step)

    def continuous_update(self, step: int, m: float, post_state: Any) -> None:
        """Per-step update of ModulatedHebbian / PES (``synapses`` slot, order 0)."""
        rule = self.rule
        x = self.xr.at(slice(None), step)
        if self.rule_name == "PES":
            a = post_state.get(rule.target_variable) - post_state.get(rule.prediction_variable)
        elif self.post_trace is not None:
            a = self.post_trace.at(slice(None), step)
        else:
            a = post_state.get(rule.post_variable)
        g = rule.eta * m * self.dt
        if self.dense:
            dw = np.multiply.outer(x * g, a).reshape(-1)
        else:
            dw = g * a[self.post] * x[self.pre]
        new = self.w + dw
        if self.bounded:
            np.clip(new, self.w_min, self.w_max, out=new)
        self.w = new
