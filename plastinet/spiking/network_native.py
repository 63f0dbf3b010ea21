"""The compiled step loop of the numpy spiking engine (recurrent networks at simulator speed).

In a recurrent network the dynamic populations spike in nearly every step, so the engine's
chunking between spikes does not apply and each step costs a few dozen numpy calls.
``network_kernel.c`` runs whole steps in C instead, for networks made only of objects it
supports (:func:`unsupported_reason`) and that have a projection from a dynamic population
(feed-forward networks keep the engine's chunking between spikes): current-based
:class:`~plastinet.spiking.LIF`, forward-Euler :class:`~plastinet.spiking.ConductanceLIF`
(background current included) and :class:`~plastinet.spiking.Izhikevich` populations (both
methods), Poisson and generator sources, at most one
:class:`~plastinet.spiking.NoiseCurrent` per population, projections that are static or
carry :class:`~plastinet.spiking.PairSTDP` (any pairing and bound, delays included),
:class:`~plastinet.spiking.InhibitorySTDP` (without delays) or
:class:`~plastinet.spiking.DopamineSTDP` (both trace conventions, delays included), without
short-term plasticity, :class:`~plastinet.spiking.SpikeSignal` modulators without source
populations, :class:`~plastinet.spiking.CoincidenceReward` between dynamic populations, and
spike, state, weight and modulator probes.

Contract (as the rate engine's compiled chunk loops): the numpy path stays the reference
and the results are bit-identical (same spikes, same weights, same states): the C code
repeats the numpy engine's arithmetic operation for operation (compiled without
floating-point contraction), sums synaptic input in the same order, looks trace decays up
in tables numpy computed, and takes the source spikes and noise draws the numpy engine
draws. Rewards stay in Python: the C loop returns after a step in which a reward's n2
spikes (the engine then schedules the reward with its own random stream) and before the
step a reward is due (the engine makes the modulator jump, integrating the dopamine
synapses, which the C loop reads). The library
is built and cached as :mod:`plastinet._native` describes; without a compiler the engine
warns once and uses its numpy path. ``PLASTINET_NATIVE=0`` selects the numpy path.
"""

from __future__ import annotations

import ctypes
import math
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from plastinet._native import compile_library, native_enabled
from plastinet.spiking._izhikevich import K0, K1, K2, IzhikevichState
from plastinet.spiking._neurons import ConductanceLIFState, LIFState
from plastinet.spiking.network import LIF, ConductanceLIF, Izhikevich, PoissonGroup, SpikeGenerator, SpikeSignal
from plastinet.spiking.rules import DopamineSTDP, InhibitorySTDP, PairSTDP

__all__ = ["NativeNetwork", "native_network", "unsupported_reason", "native_status", "SOURCE"]

SOURCE = Path(__file__).with_name("network_kernel.c")
#: no contraction into FMA, no reassociation: the numpy engine's rounding, step for step
_FLAGS = (["-O3", "-march=native", "-ffp-contract=off"], ["-O2", "-ffp-contract=off"])
#: largest trace decay table (entries); a longer trace time constant uses the numpy path
MAX_TABLE = 1 << 22
#: argument beyond which numpy's exp(-x) is exactly 0 (float64 underflow)
_EXP_ZERO = 746.0
#: argument beyond which numpy's -expm1(-x) is exactly 1 (e^-x below half an ulp of 1)
_EXPM1_ONE = 40.0
_TARGETS = {"I_e": 0, "I_i": 1, "g_e": 0, "g_i": 1, "I": 0, "none": -1}
_DYNAMIC = {LIFState: 1, ConductanceLIFState: 2, IzhikevichState: 3}
_RULES = {PairSTDP: 1, InhibitorySTDP: 2, DopamineSTDP: 3}

_lock = threading.Lock()
_lib: Any = None                     # the loaded library, False on failure
_reason = ""

_i64p = ctypes.POINTER(ctypes.c_longlong)
_f64p = ctypes.POINTER(ctypes.c_double)


class _Pop(ctypes.Structure):
    _fields_ = [("n", ctypes.c_longlong), ("dynamic", ctypes.c_longlong),
                ("v", ctypes.c_void_p), ("I_e", ctypes.c_void_p), ("I_i", ctypes.c_void_p),
                ("ref", ctypes.c_void_p),
                *((name, ctypes.c_double) for name in ("v_inf", "pm", "pve", "pvi", "pe", "pi", "v_th",
                                                       "v_reset")),
                ("ref_steps", ctypes.c_longlong),
                ("acc_e", ctypes.c_void_p), ("acc_i", ctypes.c_void_p), ("hold", ctypes.c_void_p),
                ("spk", ctypes.c_void_p), ("ev_off", ctypes.c_void_p), ("ev_neuron", ctypes.c_void_p),
                ("out_step", ctypes.c_void_p), ("out_neuron", ctypes.c_void_p),
                ("out_n", ctypes.c_longlong), ("out_cap", ctypes.c_longlong),
                ("n_spk", ctypes.c_longlong), ("touched_e", ctypes.c_longlong),
                ("touched_i", ctypes.c_longlong), ("cur", ctypes.c_void_p),
                ("ev_base", ctypes.c_longlong), ("slots", ctypes.c_longlong),
                ("ring", ctypes.c_void_p), ("ring_n", ctypes.c_void_p),
                *((name, ctypes.c_double) for name in ("k", "E_l", "E_e", "E_i", "ce", "ci")),
                ("use_gi", ctypes.c_longlong),
                ("u", ctypes.c_void_p),
                *((name, ctypes.c_double) for name in ("a", "b", "d", "h", "dt", "k2", "k1", "k0")),
                ("half", ctypes.c_longlong),
                ("noise", ctypes.c_void_p), ("noise_base", ctypes.c_longlong),
                ("noise_target", ctypes.c_longlong), ("watch", ctypes.c_void_p)]


class _Proj(ctypes.Structure):
    _fields_ = [*((name, ctypes.c_longlong) for name in ("pre", "post", "target", "rule")),
                *((name, ctypes.c_void_p) for name in ("indptr_pre", "post_idx", "by_post",
                                                      "indptr_post", "w", "x_val", "y_val", "x_last",
                                                      "y_last", "x_tab", "y_tab")),
                *((name, ctypes.c_longlong) for name in ("x_len", "y_len", "x_reset", "y_reset", "soft",
                                                         "bounded")),
                *((name, ctypes.c_double) for name in ("x_amp", "y_amp", "A_plus", "A_minus", "w_min",
                                                       "w_max", "eta", "alpha")),
                ("max_delay", ctypes.c_longlong), ("n_rows", ctypes.c_longlong),
                *((name, ctypes.c_void_p) for name in ("row_key", "by_row", "indptr_row", "pre_row", "rows")),
                ("c", ctypes.c_void_p), ("t_last", ctypes.c_void_p),
                *((name, ctypes.c_void_p) for name in ("n_tab", "ec_tab", "es_tab", "fc_tab")),
                *((name, ctypes.c_longlong) for name in ("n_len", "ec_len", "es_len", "fc_len")),
                ("mod_val", ctypes.c_double), ("mod_last", ctypes.c_longlong),
                ("tau_s", ctypes.c_double), ("btc", ctypes.c_double)]


def _load() -> Any:
    global _lib, _reason
    with _lock:
        if _lib is None:
            try:
                lib = ctypes.CDLL(str(compile_library(SOURCE, (), _FLAGS)))
                fn = lib.network_steps
                fn.restype = ctypes.c_longlong
                fn.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_void_p, ctypes.c_longlong,
                               ctypes.c_longlong, ctypes.c_longlong]
                _lib = lib
            except (OSError, RuntimeError) as err:
                _lib, _reason = False, str(err)
                warnings.warn(f"plastinet: the compiled spiking step loop is unavailable ({err}); using the "
                              "numpy engine's own loop (same results, slower). Set PLASTINET_NATIVE=0 to "
                              "silence this.", RuntimeWarning, stacklevel=4)
        return _lib


def native_status() -> str:
    """``"enabled"``, ``"disabled (PLASTINET_NATIVE=0)"`` or ``"unavailable: <reason>"``."""
    if not native_enabled():
        return "disabled (PLASTINET_NATIVE=0)"
    return "enabled" if _load() else f"unavailable: {_reason}"


def _table_length(tau: float, dt: float, limit: float = _EXP_ZERO) -> int:
    return int(math.ceil(limit * tau / dt)) + 2


def _rule_taus(sim: Any, proj: Any) -> tuple[float, ...]:
    """The time constants of the exp(-t / tau) tables of a projection's rule."""
    rule = proj.rule
    if isinstance(rule, PairSTDP):
        return rule.tau_plus, rule.tau_minus
    if isinstance(rule, InhibitorySTDP):
        return (rule.tau,)
    if isinstance(rule, DopamineSTDP):
        return rule.tau_plus, rule.tau_minus, rule.tau_c, sim.mods[rule.modulator].tau
    return ()


def unsupported_reason(sim: Any) -> str | None:
    """Why the compiled loop does not run the network of ``sim`` (None when it does)."""
    net = sim.network
    if not any(p.proj.pre.name in sim.dyn for p in sim.projs.values()):
        return "no recurrent projection (the engine's chunking between spikes serves feed-forward networks)"
    for name, mod in net.modulators.items():
        if not isinstance(mod, SpikeSignal) or mod.sources:
            return f"modulator {name!r} (the compiled loop has SpikeSignal modulators without sources)"
    for name, rew in net.rewards.items():
        if rew.pre not in sim.dyn or rew.post not in sim.dyn:
            return f"reward {name!r} (the compiled loop has rewards between dynamic populations)"
    noisy = [x.population for x in sim.noise_inputs]
    for name in set(noisy):
        if noisy.count(name) > 1:
            return f"population {name!r} (more than one noise current)"
    for name, pop in net.populations.items():
        state = sim.dyn.get(name)
        if not isinstance(pop, (LIF, ConductanceLIF, Izhikevich, PoissonGroup, SpikeGenerator)) or (
                state is not None and type(state) not in _DYNAMIC):
            return f"population {name!r} ({type(pop).__name__})"
        if type(state) is ConductanceLIFState and not state.euler:
            return f"population {name!r} (ConductanceLIF method {pop.method!r}; the compiled loop has 'euler')"
    for name, p in sim.projs.items():
        proj = p.proj
        if proj.stp is not None or p.scale != 1.0 or proj.target not in _TARGETS:
            return f"projection {name!r} (short-term plasticity or target {proj.target!r})"
        if proj.rule is not None and type(proj.rule) not in _RULES:
            return f"projection {name!r} (rule {type(proj.rule).__name__})"
        if isinstance(proj.rule, InhibitorySTDP) and p.max_delay:
            return f"projection {name!r} (InhibitorySTDP with delays)"
        if max((_table_length(tau, sim.dt) for tau in _rule_taus(sim, proj)), default=0) > MAX_TABLE:
            return f"projection {name!r} (time constants above {MAX_TABLE * sim.dt / _EXP_ZERO:g} s)"
    return None


def _tables(dt: float, tau: float, cache: dict[tuple[str, float], np.ndarray], kind: str = "exp") -> np.ndarray:
    """``exp(-(gap dt) / tau)`` (the last entries 0) or, ``kind="expm1"``,
    ``-expm1(-(gap dt) / tau)`` (the last entries 1) for gaps ``0 .. G-1``, as the engine forms them."""
    if (kind, tau) not in cache:
        if kind == "exp":
            gap = np.arange(_table_length(tau, dt), dtype=np.int64)
            tab, end = np.exp(-(gap * dt) / tau), 0.0
        else:
            gap = np.arange(_table_length(tau, dt, _EXPM1_ONE), dtype=np.int64)
            delta = gap * dt
            tab, end = -np.expm1(-delta / tau), 1.0
        if tab[-1] != end:
            raise RuntimeError(f"{kind} table for tau = {tau} s does not reach {end}")
        cache[kind, tau] = tab
    return cache[kind, tau]


def _traces(p: Any) -> tuple[Any, Any]:
    """The (pre, post) traces of a projection's rule."""
    r = p.plasticity
    if isinstance(p.rule, PairSTDP):
        return r.x, r.y
    if isinstance(p.rule, InhibitorySTDP):
        return r.x_pre, r.x_post
    return r.kp, r.km


def _ptr(a: np.ndarray, dtype: Any, n: int | None = None) -> int:
    if a.dtype != dtype or not a.flags.c_contiguous or (n is not None and a.shape != (n,)):
        raise ValueError(f"compiled spiking loop: expected a C-contiguous {np.dtype(dtype)} array "
                         f"of shape ({n},), got {a.dtype} {a.shape}")
    return a.ctypes.data


class NativeNetwork:
    """Runs chunks of a :class:`~plastinet.spiking.Simulator` through ``network_kernel.c``.

    Built by :func:`native_network`; the engine calls :meth:`chunk` in place of its own
    chunk. The C loop works on the engine's own state arrays (membrane potentials,
    currents, refractory counters, weights, traces), so probes, checkpoints and the
    numerical guard see the same state as on the numpy path.
    """

    def __init__(self, sim: Any, lib: Any) -> None:
        self.sim, self.fn = sim, lib.network_steps
        names = list(sim.network.populations)
        self.index = {name: k for k, name in enumerate(names)}
        self.pops = (_Pop * len(names))()
        self.scratch: dict[str, tuple[np.ndarray, ...]] = {}
        self.rings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: how far back each source's spikes are needed (its delayed projections)
        self.lookback = {name: max((p.max_delay for p in sim.out_of.get(name, ())), default=0)
                         for name in sim.sources}
        self.noises = {x.population: x for x in sim.noise_inputs}
        self.watch: dict[str, np.ndarray] = {}
        for rew in sim.network.rewards.values():
            self.watch.setdefault(rew.post, np.zeros(sim.network.populations[rew.post].n, np.uint8))[
                rew.post_neuron] = 1
        for name, c in zip(names, self.pops):
            n = sim.network.populations[name].n
            c.n = n
            if name in sim.dyn:
                d = sim.dyn[name]
                c.dynamic = _DYNAMIC[type(d)]
                if c.dynamic == 1:
                    c.v_inf, c.pm, c.pve, c.pvi, c.pe, c.pi = d.v_inf, d.pm, d.pve, d.pvi, d.pe, d.pi
                elif c.dynamic == 2:
                    c.k, c.E_l, c.E_e, c.E_i, c.ce, c.ci = d.k, d.E_l, d.E_e, d.E_i, d.ce, d.ci
                if c.dynamic == 3:
                    c.a, c.b, c.d, c.h, c.dt, c.half = d.a, d.b, d.d, 0.5 * d.dt, d.dt, int(d.half_steps)
                    c.k2, c.k1, c.k0 = K2, K1, K0
                    c.v_th, c.v_reset, c.ref_steps = d.v_peak, d.c, 0
                else:
                    c.v_th, c.v_reset, c.ref_steps = d.v_th, d.v_reset, d.ref_steps
                if name in self.noises:
                    c.noise_target = _TARGETS[self.noises[name].target]
                if name in self.watch:
                    c.watch = self.watch[name].ctypes.data
                cap = max(8 * n, 1 << 16)
                s = (np.zeros(n), np.zeros(n), np.zeros(n, np.uint8), np.zeros(n, np.int64),
                     np.zeros(cap, np.int64), np.zeros(cap, np.int64))
                self.scratch[name] = s
                c.acc_e, c.acc_i, c.hold, c.spk, c.out_step, c.out_neuron = (a.ctypes.data for a in s)
                c.out_cap = cap
                slots = sim.flight_steps[name] + 1 if name in sim.flight_steps else 0
                if slots:                      # the spikes in flight of delayed projections
                    ring = (np.zeros((slots, n), np.int64), np.zeros(slots, np.int64))
                    self.rings[name] = ring
                    c.slots, c.ring, c.ring_n = slots, ring[0].ctypes.data, ring[1].ctypes.data
        tables: dict[tuple[str, float], np.ndarray] = {}
        self.projs = (_Proj * len(sim.projs))()
        self.tabs = []                  # keeps the tables and row buffers alive
        for p, c in zip(sim.projs.values(), self.projs):
            c.pre, c.post = self.index[p.proj.pre.name], self.index[p.proj.post.name]
            c.target = _TARGETS[p.proj.target]
            c.bounded = int(p.bounded)
            c.w_min, c.w_max = p.w_min, p.w_max
            c.indptr_pre, c.post_idx, c.by_post, c.indptr_post, c.pre_row = (
                _ptr(a, np.int64) for a in (p.indptr_pre, p.post, p.by_post, p.indptr_post, p.pre_row))
            c.max_delay, c.n_rows = p.max_delay, p.n_rows
            if p.max_delay:
                rows = np.zeros(p.n_rows, np.int64)
                self.tabs.append(rows)
                c.row_key, c.by_row, c.indptr_row, c.rows = (
                    _ptr(a, np.int64) for a in (p.row_key, p.by_row, p.indptr_row, rows))
            rule = p.rule
            if rule is not None:
                c.rule = _RULES[type(rule)]
                if c.rule == 1:
                    c.A_plus, c.A_minus, c.soft = rule.A_plus, rule.A_minus, int(rule.bound == "soft")
                elif c.rule == 2:
                    c.eta, c.alpha = p.plasticity.eta, p.plasticity.alpha
                else:
                    c.A_plus, c.A_minus = rule.A_plus, rule.A_minus
                    c.tau_s, c.btc = p.plasticity.tau_s, rule.b * rule.tau_c
                    for field, tau, kind in (("n", p.plasticity.mod.tau, "exp"), ("ec", rule.tau_c, "exp"),
                                             ("es", p.plasticity.tau_s, "expm1"), ("fc", rule.tau_c, "expm1")):
                        tab = _tables(sim.dt, tau, tables, kind)
                        self.tabs.append(tab)
                        setattr(c, f"{field}_tab", tab.ctypes.data)
                        setattr(c, f"{field}_len", tab.size)
                for side, tr in zip("xy", _traces(p)):
                    tab = _tables(sim.dt, tr.tau, tables)
                    self.tabs.append(tab)
                    setattr(c, f"{side}_tab", tab.ctypes.data)
                    setattr(c, f"{side}_len", tab.size)
                    setattr(c, f"{side}_reset", int(tr.reset))
                    setattr(c, f"{side}_amp", tr.amp)

    def _refresh(self) -> None:
        """Point the C structures at the engine's current arrays (numpy code may replace them)."""
        sim = self.sim
        for name, d in sim.dyn.items():
            c = self.pops[self.index[name]]
            if c.dynamic == 3:
                c.v, c.u, c.I_e = (_ptr(a, np.float64, c.n) for a in (d.v, d.u, d.I))
                c.I_i = c.I_e
                continue
            inputs = (d.I_e, d.I_i) if c.dynamic == 1 else (d.g_e, d.g_i)
            c.v, c.I_e, c.I_i = (_ptr(a, np.float64, c.n) for a in (d.v, *inputs))
            c.ref = _ptr(d.ref, np.int64, c.n)
            if c.dynamic == 2:
                c.use_gi = int(d._use_gi)
        for p, c in zip(sim.projs.values(), self.projs):
            c.w = _ptr(p.w, np.float64, p.pre.size)
            if c.rule:
                x, y = _traces(p)
                c.x_val, c.x_last = _ptr(x.val, np.float64, p.n_rows), _ptr(x.last, np.int64, p.n_rows)
                c.y_val, c.y_last = _ptr(y.val, np.float64, p.n_post), _ptr(y.last, np.int64, p.n_post)
            if c.rule == 3:
                r = p.plasticity
                c.c, c.t_last = _ptr(r.c, np.float64, p.pre.size), _ptr(r.t_last, np.int64, p.pre.size)
                c.mod_val, c.mod_last = r.mod.val, r.mod.last

    def chunk(self, n0: int, end_all: int) -> None:
        """Advance the engine from step ``n0`` by up to ``chunk_steps`` steps (not past
        ``end_all``, ending after a sampling step and at the numerical guard's next check,
        where a spiking step would end the engine's own chunk)."""
        sim = self.sim
        end = min(n0 + sim.chunk_steps, end_all, max(n0 + 1, sim._checked + sim._guard_steps))
        if sim.sample_steps:
            end = min(end, -(-n0 // sim.sample_steps) * sim.sample_steps + 1)
        events = {name: src.events(n0, end) for name, src in sim.sources.items()}
        keep = []                              # the arrays the C structures point to
        for name, src in sim.sources.items():
            c = self.pops[self.index[name]]
            base = max(0, n0 - self.lookback[name])
            steps, neurons = src.events(base, end) if base < n0 else events[name]
            off = np.searchsorted(steps, np.arange(base, end + 1)).astype(np.int64)
            neurons = np.ascontiguousarray(neurons, dtype=np.int64)
            keep.append((off, neurons))
            c.ev_off, c.ev_neuron, c.ev_base = off.ctypes.data, neurons.ctypes.data, base
        for name, x in self.noises.items():
            draws = np.ascontiguousarray(x.draws(n0, end), dtype=np.float64)
            keep.append(draws)
            c = self.pops[self.index[name]]
            c.noise, c.noise_base = draws.ctypes.data, n0
        for name, (ring, counts) in self.rings.items():
            steps, neurons = sim.in_flight[name]
            counts[:] = 0
            for t in np.unique(steps):
                sel = neurons[steps == t]
                ring[t % counts.size, :sel.size] = sel
                counts[t % counts.size] = sel.size
        step = n0
        while step < end:
            if sim.reward_queue and sim.reward_queue[0][0] == step:
                sim._modulator_events(step, {})       # rewards due now (slot -2, before the pre pathways)
            stop = min(end, sim.reward_queue[0][0]) if sim.reward_queue else end
            self._refresh()
            for c in self.pops:
                if c.dynamic:
                    c.out_n = 0
            k = int(self.fn(ctypes.addressof(self.pops), len(self.pops), ctypes.addressof(self.projs),
                            len(self.projs), step, stop - step))
            self._records(step + k - 1)
            step += k
        for name, d in sim.dyn.items():
            if isinstance(d, ConductanceLIFState):
                d._use_gi = bool(self.pops[self.index[name]].use_gi)
        for name, (steps, neurons) in events.items():
            if steps.size:
                sim._commit_records({name: (steps, neurons)})
        for name, (ring, counts) in self.rings.items():
            ts = np.arange(max(0, end - sim.flight_steps[name]), end)
            n = counts[ts % counts.size]
            sim.in_flight[name] = (np.repeat(ts, n).astype(np.int64),
                                   np.concatenate([ring[t % counts.size, :k] for t, k in zip(ts, n)]
                                                  or [np.zeros(0, np.int64)]).astype(np.int64))
        last = end - 1
        if sim.sample_steps and last % sim.sample_steps == 0:
            sim._sample_times.append(last)
            for probe in sim.sampled:
                sim._samples[probe.name].append(sim._read(probe, last))
        sim.step = end

    def _records(self, last: int) -> None:
        """Spike records, the guard's spike counts and the rewards' last spikes from the C
        record buffers of a call that ended with step ``last``; schedules the rewards of
        ``last`` (a watched neuron can only have spiked in a call's last step)."""
        sim = self.sim
        at_last: dict[str, np.ndarray] = {}
        for name, s in self.scratch.items():
            c = self.pops[self.index[name]]
            m = c.out_n
            if not m:
                continue
            steps, neurons = s[4][:m].copy(), s[5][:m].copy()
            if name in sim._spikes:
                sim._spikes[name].append((steps, neurons))
            sim._spike_count[name] += np.bincount(neurons, minlength=c.n)
            if self.watch:
                lo = int(np.searchsorted(steps, last))
                at_last[name] = neurons[lo:]
                if name in sim.last_spike and lo:
                    idx, first = np.unique(neurons[:lo][::-1], return_index=True)
                    sim.last_spike[name][idx] = steps[:lo][::-1][first]
        if self.watch:
            sim._schedule_rewards(last, at_last)
            for name, idx in at_last.items():
                if name in sim.last_spike:
                    sim.last_spike[name][idx] = last


def native_network(sim: Any) -> NativeNetwork | None:
    """The compiled loop for ``sim``, or None (numpy path: disabled, unsupported network or
    no compiler; the last warns once per process)."""
    if not native_enabled() or unsupported_reason(sim) is not None:
        return None
    lib = _load()
    return NativeNetwork(sim, lib) if lib else None
