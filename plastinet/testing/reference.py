"""Independent references of the compliance checks: plain loops written from the equations.

Nothing here calls an engine. :func:`rate_reference` runs a rate rule's recurrence step by
step as its docstring states it; :func:`spiking_reference` steps a small spiking network one
time step at a time through the step-order contract of ``docs/spiking.md`` with per-neuron
traces decayed by ``exp(-dt / tau)`` in every step (the engine evaluates them lazily, Brian2
event-driven), presynaptic traces and short-term plasticity kept per synapse and driven by
the spikes as they arrive after the synapse's delay (Brian2's ``Synapses(..., delay=...)``),
and the neuron models' own integration schemes. Only the random draws (connectivity, initial weights, reward delays:
:mod:`plastinet.spiking.draws`) and the Dataset layout (:mod:`plastinet.spiking.recordings`)
are shared, so that every backend, the numpy engine included, is held to something it does
not compute itself. The references cover what the compliance cases use and refuse anything
else with :class:`~plastinet.errors.UnsupportedError` naming it.
"""

from __future__ import annotations

import heapq
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import UnsupportedError
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, ThreeFactor
from plastinet.spiking.draws import connectivity, delay_steps, seed_streams
from plastinet.spiking.network import (
    LIF,
    ConductanceLIF,
    ModulatorProbe,
    Network,
    PoissonGroup,
    ProgrammedSignal,
    RateUnits,
    SpikeGenerator,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    WeightProbe,
)
from plastinet.spiking.recordings import build_dataset
from plastinet.spiking.rules import PES, DopamineSTDP, InhibitorySTDP, ModulatedHebbian, PairSTDP, TripletSTDP

__all__ = ["rate_reference", "spiking_reference"]


def _uncovered(what: str, spec: Any) -> UnsupportedError:
    kind = spec if isinstance(spec, str) else type(spec).__name__
    return UnsupportedError("compliance reference", what, kind,
                            "the independent references cover the compliance cases' models only")


# --------------------------------------------------------------------------------------
# rate rules
# --------------------------------------------------------------------------------------

def _phi(rule: Rule, x: np.ndarray) -> np.ndarray:
    fm = rule.feature_map
    if fm.kind == "identity":
        out = x
    elif fm.kind == "elu+1":
        out = np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))
    elif fm.kind == "relu":
        out = np.maximum(x, 0.0)
    else:
        raise _uncovered("feature map", fm.kind)
    if fm.normalize == "sum":
        out = out / (out.sum() + fm.eps)
    elif fm.normalize == "l2":
        out = out / math.sqrt(float(out @ out) + fm.eps)
    return out


def rate_reference(rule: Rule, q: np.ndarray, k: np.ndarray, v: np.ndarray, *, initial_state: np.ndarray,
                   beta: np.ndarray, alpha: np.ndarray | None = None,
                   modulator: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read-outs ``y`` (B, H, T, d_v) and final weights (B, H, d_v, d_phi), one step at a time.

    Every step writes, then reads: ``y_t = W_t phi(q_t)`` (Hebbian with ``normalize`` divides
    by ``z_t . phi(q_t) + eps`` with ``z_t = z_{t-1} + phi(k_t)``, ``z_0 = 0``).
    """
    B, H, T, _ = q.shape
    W_all = np.array(initial_state, dtype=np.float64, copy=True)
    y = np.zeros((B, H, T, v.shape[-1]))
    for b in range(B):
        for h in range(H):
            W = W_all[b, h]
            z = np.zeros(W.shape[1])
            E = np.zeros_like(W)
            for t in range(T):
                kt, qt, vt, bt = _phi(rule, k[b, h, t]), _phi(rule, q[b, h, t]), v[b, h, t], beta[b, h, t]
                if isinstance(rule, Hebbian):
                    W = W + bt * np.outer(vt, kt)
                elif isinstance(rule, DecayedHebbian):
                    a = alpha[b, h, t]
                    W = (W * a[None, :] if np.ndim(a) else a * W) + bt * np.outer(vt, kt)
                elif isinstance(rule, Delta):
                    W = W + bt * np.outer(vt - W @ kt, kt)
                elif isinstance(rule, GatedDelta):
                    W = alpha[b, h, t] * (W - bt * np.outer(W @ kt, kt)) + bt * np.outer(vt, kt)
                elif isinstance(rule, Oja):
                    u = W @ kt
                    W = W + bt * (np.outer(u, kt) - np.outer(u, u) @ W)
                elif isinstance(rule, ThreeFactor):
                    E = rule.gamma * E + bt * np.outer(vt, kt)
                    W = W + modulator[b, h, t] * E
                else:
                    raise _uncovered("rule", rule)
                out = W @ qt
                if isinstance(rule, Hebbian) and rule.normalize:
                    z = z + kt
                    out = out / (z @ qt + rule.eps)
                y[b, h, t] = out
            W_all[b, h] = W
    return y, W_all


# --------------------------------------------------------------------------------------
# spiking networks
# --------------------------------------------------------------------------------------

class _Neurons:
    """A dynamic population: state dict, one step of its own integration scheme, threshold, reset."""

    def __init__(self, pop: Any, dt: float) -> None:
        self.pop, self.dt = pop, dt
        n = pop.n
        self.ref_steps = int(round(getattr(pop, "t_ref", 0.0) / dt))
        self.ref = np.zeros(n, dtype=np.int64)
        self.hold = np.zeros(n, dtype=bool)
        if isinstance(pop, LIF):
            self.s = {"v": np.full(n, pop.v_rest if pop.v_init is None else pop.v_init),
                      "I_e": np.zeros(n), "I_i": np.zeros(n)}
        elif isinstance(pop, ConductanceLIF):
            self.s = {"v": np.full(n, pop.E_l if pop.v_init is None else pop.v_init),
                      "g_e": np.zeros(n), "g_i": np.zeros(n)}
        elif isinstance(pop, RateUnits):
            self.s = {x: np.zeros(n) for x in pop.inputs}
        else:
            raise _uncovered("population", pop)
        self.c = self._constants(pop, dt)
        self.v_thresh = getattr(pop, "v_thresh", None)

    @staticmethod
    def _constants(pop: Any, dt: float) -> SimpleNamespace:
        """Per-step factors of the model's integration scheme."""
        if isinstance(pop, RateUnits):
            return SimpleNamespace(decay=math.exp(-dt / pop.tau))
        if isinstance(pop, LIF):
            # exact solution over dt of tau_m v' = v_rest + r_m i_ext - v + r_m (I_e + I_i), I' = -I / tau_s:
            # a current I at the start of the step adds gain * I to v at its end
            em = math.exp(-dt / pop.tau_m)
            gains = []
            for tau in (pop.tau_e, pop.tau_i):
                if abs(tau - pop.tau_m) < 1e-12 * pop.tau_m:
                    gains.append(pop.r_m * dt / pop.tau_m * em)
                else:
                    gains.append(pop.r_m * tau / (tau - pop.tau_m) * (math.exp(-dt / tau) - em))
            return SimpleNamespace(v_inf=pop.v_rest + pop.r_m * pop.i_ext, em=em, gain_e=gains[0], gain_i=gains[1],
                                   es_e=math.exp(-dt / pop.tau_e), es_i=math.exp(-dt / pop.tau_i))
        euler = pop.method == "euler"
        # tau_m v' = g_e (E_e - v) + g_i (E_i - v) + E_l - v + i_ext / g_l
        return SimpleNamespace(euler=euler, k=dt / pop.tau_m, E_e=pop.E_e, E_i=pop.E_i, E_l=pop.E_l,
                               v_bg=pop.i_ext / pop.g_l,
                               ce=1.0 - dt / pop.tau_e if euler else math.exp(-dt / pop.tau_e),
                               ci=1.0 - dt / pop.tau_i if euler else math.exp(-dt / pop.tau_i))

    def step(self) -> None:
        pop, c, s = self.pop, self.c, self.s
        if isinstance(pop, RateUnits):
            for x in pop.inputs:
                s[x] = s[x] * c.decay
            return
        v = s["v"]
        if isinstance(pop, LIF):
            new = c.v_inf + (v - c.v_inf) * c.em + c.gain_e * s["I_e"] + c.gain_i * s["I_i"]
            s["I_e"], s["I_i"] = s["I_e"] * c.es_e, s["I_i"] * c.es_i
        else:
            ge, gi = s["g_e"], s["g_i"]
            if c.euler:                     # forward Euler on (v, g_e, g_i)
                new = v + c.k * (ge * (c.E_e - v) + gi * (c.E_i - v) + c.E_l - v + c.v_bg)
            else:                           # conductances frozen over the step: v relaxes exactly
                a = 1.0 + ge + gi
                v_inf = (ge * c.E_e + gi * c.E_i + c.E_l + c.v_bg) / a
                new = v_inf + (v - v_inf) * np.exp(-c.k * a)
            s["g_e"], s["g_i"] = ge * c.ce, gi * c.ci
        self.hold = self.ref > 0
        s["v"] = np.where(self.hold, v, new)
        self.ref = np.where(self.hold, self.ref - 1, self.ref)

    def spikes(self) -> np.ndarray:
        if isinstance(self.pop, RateUnits):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero((self.s["v"] > self.v_thresh) & ~self.hold)

    def reset(self, idx: np.ndarray) -> None:
        self.s["v"][idx] = self.pop.v_reset
        self.ref[idx] = self.ref_steps

    def read(self, var: str) -> np.ndarray:
        if var == "rate":
            return sum((self.s[x] for x in self.pop.inputs), np.zeros(self.pop.n))
        return self.s[var].copy()


class _Trace:
    """A per-neuron trace decayed every step; a spike adds ``amp`` (or sets it, nearest pairing)."""

    def __init__(self, n: int, tau: float, dt: float, amp: float = 1.0, nearest: bool = False) -> None:
        self.x, self.f, self.amp, self.nearest = np.zeros(n), math.exp(-dt / tau), amp, nearest

    def decay(self) -> None:
        self.x = self.x * self.f

    def spike(self, idx: np.ndarray) -> None:
        self.x[idx] = self.amp if self.nearest else self.x[idx] + self.amp


class _Synapses:
    """One projection: weights per synapse, its rule's traces and its short-term plasticity."""

    def __init__(self, proj: Any, dt: float, rng: np.random.Generator, mods: dict) -> None:
        drawn = connectivity(proj, rng)
        self.proj, self.dt, self.pre, self.post, self.w = proj, dt, drawn.pre, drawn.post, drawn.w.copy()
        self.delay = delay_steps(drawn.delay, dt)
        self.pending: dict[int, list[np.ndarray]] = {}      # arrival step -> synapses
        self.rule = rule = proj.rule
        self.lo, self.hi = proj.w_min, proj.w_max
        self.traces: list[_Trace] = []
        # presynaptic traces live on the synapses (they see the delayed spikes), post ones on the neurons
        n_pre, n_post = self.w.size, proj.post.n
        if isinstance(rule, PairSTDP):
            near = rule.pairing == "nearest"
            self.x, self.y = _Trace(n_pre, rule.tau_plus, dt, nearest=near), _Trace(n_post, rule.tau_minus, dt,
                                                                                     nearest=near)
            self.traces = [self.x, self.y]
        elif isinstance(rule, TripletSTDP):
            near = rule.pairing == "nearest"
            self.r1, self.r2 = _Trace(n_pre, rule.tau_plus, dt, nearest=near), _Trace(n_pre, rule.tau_x, dt,
                                                                                      nearest=near)
            self.o1, self.o2 = _Trace(n_post, rule.tau_minus, dt, nearest=near), _Trace(n_post, rule.tau_y, dt,
                                                                                        nearest=near)
            self.traces = [self.r1, self.r2, self.o1, self.o2]
        elif isinstance(rule, InhibitorySTDP):
            self.x, self.y = _Trace(n_pre, rule.tau, dt), _Trace(n_post, rule.tau, dt)
            self.traces = [self.x, self.y]
        elif isinstance(rule, DopamineSTDP):
            near = rule.convention == "nearest"
            self.kp, self.km = _Trace(n_pre, rule.tau_plus, dt, nearest=near), _Trace(n_post, rule.tau_minus, dt,
                                                                                      nearest=near)
            self.traces = [self.kp, self.km]
            self.c = np.zeros(self.w.size)
            self.since = np.zeros(n_pre, dtype=np.int64)     # step of each synapse's last update
            self.mod = mods[rule.modulator]
        elif isinstance(rule, (ModulatedHebbian, PES)):
            self.xr = _Trace(n_pre, rule.tau_pre, dt, amp=1.0 / rule.tau_pre)
            self.traces = [self.xr]
            self.yr = None
            if isinstance(rule, ModulatedHebbian) and proj.post.spiking:
                self.yr = _Trace(n_post, rule.tau_pre, dt, amp=1.0 / rule.tau_pre)
                self.traces.append(self.yr)
        elif rule is not None:
            raise _uncovered("rule", rule)
        self.stp = proj.stp
        if self.stp is not None:
            self.u, self.R = np.zeros(n_pre), np.ones(n_pre)      # per synapse, as its delayed spikes arrive
            self.stp_last = np.full(n_pre, -np.inf)

    def bound(self, w: np.ndarray) -> np.ndarray:
        return np.clip(w, self.lo, self.hi)

    def dopamine_weights(self, syn: np.ndarray, step: int, commit: bool) -> np.ndarray:
        """dw/dt = c (n - b), dc/dt = -c / tau_c, n decaying with tau_n: integrated exactly to ``step``."""
        rule, dt, mod = self.rule, self.dt, self.mod
        span = (step - self.since[syn]) * dt
        n_then = mod.value_at(self.since[syn])
        tau_s = 1.0 / (1.0 / rule.tau_c + 1.0 / mod.tau)
        c = self.c[syn]
        w = self.bound(self.w[syn] + c * n_then * tau_s * (1.0 - np.exp(-span / tau_s))
                       - c * rule.b * rule.tau_c * (1.0 - np.exp(-span / rule.tau_c)))
        if commit:
            self.w[syn], self.c[syn], self.since[syn] = w, c * np.exp(-span / rule.tau_c), step
        return w

    def spike(self, step: int, js: np.ndarray) -> None:
        """Pre neurons ``js`` spike at ``step``: their synapses act ``delay`` steps later."""
        syn = np.flatnonzero(np.isin(self.pre, js))
        for d in np.unique(self.delay[syn]):
            self.pending.setdefault(step + int(d), []).append(syn[self.delay[syn] == d])

    def arrivals(self, step: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Pre pathway of the spikes arriving at ``step``: (post index, delivered value) per synapse."""
        if step not in self.pending:
            return None
        syn = np.sort(np.concatenate(self.pending.pop(step)))
        fac = None
        if self.stp is not None:
            stp = self.stp
            gap = (step - self.stp_last[syn]) * self.dt
            if stp.tau_facil > 0:           # u relaxes to 0, then jumps by U (1 - u)
                u = self.u[syn] * np.exp(-gap / stp.tau_facil)
                u = u + stp.U * (1.0 - u)
            else:
                u = np.full(syn.size, stp.U)
            R = 1.0 - (1.0 - self.R[syn]) * np.exp(-gap / stp.tau_rec)
            fac = u * R
            self.u[syn], self.R[syn], self.stp_last[syn] = u, R - u * R, step
        rule = self.rule
        if isinstance(rule, DopamineSTDP):
            delivered = self.dopamine_weights(syn, step, commit=True)
        else:
            delivered = self.w[syn].copy()
        if isinstance(rule, PairSTDP):
            self.x.spike(syn)
            y = self.y.x[self.post[syn]]
            dep = rule.A_minus * y if rule.bound == "additive" else rule.A_minus * (self.w[syn] - self.lo) * y
            self.w[syn] = self.bound(self.w[syn] - dep)
        elif isinstance(rule, TripletSTDP):
            r2_before = self.r2.x[syn].copy()
            self.r1.spike(syn)
            self.r2.spike(syn)
            self.w[syn] = self.bound(self.w[syn] - self.o1.x[self.post[syn]] * (rule.A2_minus + rule.A3_minus * r2_before))
        elif isinstance(rule, DopamineSTDP):
            self.c[syn] = self.c[syn] - rule.A_minus * self.km.x[self.post[syn]]
            self.kp.spike(syn)
        elif isinstance(rule, InhibitorySTDP):     # w += eta (x_post - 2 rho0 tau)
            self.x.spike(syn)
            self.w[syn] = self.bound(self.w[syn] + rule.eta * (self.y.x[self.post[syn]] - 2.0 * rule.rho0 * rule.tau))
        elif rule is not None:
            self.xr.spike(syn)
        if fac is not None:
            delivered = delivered * fac
        if isinstance(self.proj.post, RateUnits):
            delivered = delivered / self.proj.post.tau
        return self.post[syn], delivered

    def post_spikes(self, step: int, idx: np.ndarray) -> None:
        rule = self.rule
        syn = np.flatnonzero(np.isin(self.post, idx))
        if isinstance(rule, PairSTDP):
            self.y.spike(idx)
            x = self.x.x[syn]
            pot = rule.A_plus * x if rule.bound == "additive" else rule.A_plus * (self.hi - self.w[syn]) * x
            self.w[syn] = self.bound(self.w[syn] + pot)
        elif isinstance(rule, TripletSTDP):
            o2_before = self.o2.x[self.post[syn]].copy()
            self.o1.spike(idx)
            self.o2.spike(idx)
            self.w[syn] = self.bound(self.w[syn] + self.r1.x[syn] * (rule.A2_plus + rule.A3_plus * o2_before))
        elif isinstance(rule, InhibitorySTDP):     # w += eta x_pre
            self.y.spike(idx)
            self.w[syn] = self.bound(self.w[syn] + rule.eta * self.x.x[syn])
        elif isinstance(rule, DopamineSTDP):
            self.dopamine_weights(syn, step, commit=True)
            self.c[syn] = self.c[syn] + rule.A_plus * self.kp.x[syn]
            self.km.spike(idx)
        elif isinstance(rule, ModulatedHebbian) and self.yr is not None:
            self.yr.spike(idx)

    def every_step(self, m: float, post: _Neurons) -> None:
        """dw/dt = eta m a_post x_pre over one step (ModulatedHebbian, PES)."""
        rule = self.rule
        if isinstance(rule, PES):
            a = post.read(rule.target_variable) - post.read(rule.prediction_variable)
        elif self.yr is not None:
            a = self.yr.x
        else:
            a = post.read(rule.post_variable)
        self.w = self.bound(self.w + rule.eta * m * self.dt * a[self.post] * self.xr.x)

    def weights_at(self, step: int) -> np.ndarray:
        if isinstance(self.rule, DopamineSTDP):
            return self.dopamine_weights(np.arange(self.w.size), step, commit=False)
        return self.w.copy()


class _Modulator:
    def __init__(self, spec: Any, dt: float) -> None:
        self.spec, self.dt = spec, dt
        self.level, self.last = 0.0, 0        # SpikeSignal: level just after its last jump (step last)
        if isinstance(spec, SpikeSignal):
            self.tau = spec.tau
        elif isinstance(spec, ProgrammedSignal):
            self.seg = int(round(spec.interval / dt))
        else:
            raise _uncovered("modulator", spec)

    def value_at(self, step: Any) -> Any:
        if isinstance(self.spec, ProgrammedSignal):
            k = step // self.seg
            return float(self.spec.values[k]) if k < self.spec.values.size else 0.0
        return self.level * np.exp(-((step - self.last) * self.dt) / self.tau)

    def jump(self, step: int, amount: float) -> None:
        self.level = float(self.value_at(step)) + amount
        self.last = step


def spiking_reference(net: Network, duration: float, dt: float, seed: int) -> xr.Dataset:
    """Run ``net`` one step at a time in plain loops; same Dataset layout as the engines.

    Parameters
    ----------
    net : Network
        A network with spike-generator inputs and the neuron models, rules and modulators of
        the compliance cases.
    duration, dt : float
        Biological time and time step (s).
    seed : int
        Seed of the draws (connectivity, initial weights, reward delays).
    """
    n_steps = int(round(duration / dt))
    streams = seed_streams(net, seed)
    inputs: dict[str, dict[int, np.ndarray]] = {}
    dyn: dict[str, _Neurons] = {}
    for name, pop in net.populations.items():
        if isinstance(pop, SpikeGenerator):
            steps = np.rint(pop.times / dt).astype(np.int64)
            inputs[name] = {int(s): np.sort(pop.indices[steps == s]) for s in np.unique(steps)}
        elif isinstance(pop, PoissonGroup):
            raise _uncovered("population", pop)
        else:
            dyn[name] = _Neurons(pop, dt)
    mods = {name: _Modulator(m, dt) for name, m in net.modulators.items()}
    syns = {name: _Synapses(net.projections[name], dt, streams.projections[name], mods)
            for name in sorted(net.projections)}
    sampled = [p for p in net.probes.values() if not isinstance(p, SpikeProbe)]
    every = int(round(sampled[0].sample_every / dt)) if sampled else 0
    recorded = {p.population for p in net.probes.values() if isinstance(p, SpikeProbe)}
    spikes: dict[str, list] = {p: [] for p in recorded}
    samples: dict[str, list] = {p.name: [] for p in sampled}
    times: list[int] = []
    last_spike = {r.pre: np.full(net.populations[r.pre].n, -(2 ** 40)) for r in net.rewards.values()}
    due: list[tuple[int, int, str, float]] = []
    count = 0
    for step in range(n_steps):
        # groups: traces and populations advance to this step
        for s in syns.values():
            for tr in s.traces:
                tr.decay()
        for d in dyn.values():
            d.step()
        # thresholds
        spk = {name: ev[step] for name, ev in inputs.items() if step in ev}
        spk.update({name: idx for name, d in dyn.items() if (idx := d.spikes()).size})
        # synapses: modulator events, pre pathways, per-step rules, post pathways
        events: dict[str, float] = {}
        while due and due[0][0] == step:
            _, _, m, amount = heapq.heappop(due)
            events[m] = events.get(m, 0.0) + amount
        for m, spec in net.modulators.items():
            if isinstance(spec, SpikeSignal):
                for src in spec.sources:
                    if src in spk:
                        events[m] = events.get(m, 0.0) + spk[src].size * spec.increment
        for m, amount in events.items():
            for s in syns.values():
                if isinstance(s.rule, DopamineSTDP) and s.rule.modulator == m:
                    s.dopamine_weights(np.arange(s.w.size), step, commit=True)
            mods[m].jump(step, amount)
        for s in syns.values():
            if s.proj.pre.name in spk:
                s.spike(step, spk[s.proj.pre.name])
            out = s.arrivals(step)
            if out is not None and s.proj.target != "none" and s.proj.post.name in dyn:
                np.add.at(dyn[s.proj.post.name].s[s.proj.target], *out)
        for s in syns.values():
            if isinstance(s.rule, (ModulatedHebbian, PES)):
                m = float(mods[s.rule.modulator].value_at(step))
                if m != 0.0:
                    s.every_step(m, dyn[s.proj.post.name])
        for s in syns.values():
            if s.proj.post.name in spk:
                s.post_spikes(step, spk[s.proj.post.name])
        # resets
        for name, idx in spk.items():
            if name in dyn:
                dyn[name].reset(idx)
        # end: rewards, records
        for rname, rew in net.rewards.items():
            if rew.post in spk and np.any(spk[rew.post] == rew.post_neuron):
                lag = step - last_spike[rew.pre][rew.pre_neuron]
                if 0 < lag * dt <= rew.window + 1e-12 * dt:
                    wait = streams.rewards[rname].uniform(rew.delay_min, rew.delay_max)
                    count += 1
                    heapq.heappush(due, (step + max(1, int(round(wait / dt))), count, rew.modulator, rew.amount))
        for name, idx in spk.items():
            if name in last_spike:
                last_spike[name][idx] = step
            if name in spikes:
                spikes[name].append((np.full(idx.size, step, dtype=np.int64), idx.astype(np.int64)))
        if every and step % every == 0:
            times.append(step)
            for p in sampled:
                if isinstance(p, StateProbe):
                    val = dyn[p.population].read(p.variable)
                    samples[p.name].append(val if p.indices is None else val[p.indices])
                elif isinstance(p, WeightProbe):
                    samples[p.name].append(syns[p.projection].weights_at(step))
                elif isinstance(p, ModulatorProbe):
                    samples[p.name].append(np.array(float(mods[p.modulator].value_at(step))))
    projs = {name: SimpleNamespace(pre=s.pre, post=s.post, w=s.w, dense=s.proj.connectivity == "all",
                                   n_pre=s.proj.pre.n, n_post=s.proj.post.n,
                                   delay_steps=None if isinstance(s.proj.delay, float) and s.proj.delay == 0.0
                                   else s.delay) for name, s in syns.items()}
    final = {name: s.weights_at(n_steps) for name, s in syns.items() if s.rule is not None}
    rec = SimpleNamespace(network=net, dt=dt, _spikes=spikes, sampled=sampled, _samples=samples,
                          _sample_times=times, projs=projs)
    return build_dataset(rec, final)
