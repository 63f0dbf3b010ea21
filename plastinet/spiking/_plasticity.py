"""Long-term plasticity rules of the numpy engine, registered by rule type.

Each rule's state (:class:`RuleState` subclass) lives beside the projection's
(:class:`~plastinet.spiking._synapses.ProjectionState`: connectivity, weights ``p.w``,
bounds) and implements the rule's pathways on synapse index arrays:

``pre(syn, rep, js, steps, ss)``
    Pre pathway of the distinct pre neurons ``js`` spiking at ``steps`` (their synapses
    ``syn``, ``rep`` the position of each synapse's neuron in ``js``, ``ss`` each synapse's
    step); returns the weights to transmit (read before this spike's own update, as in
    Brian2's ``on_pre``).
``post(step, idx)``
    Post pathway of post neurons ``idx`` spiking at ``step``.
``continuous_update(step, m, post_state)``
    Per-step rules (``continuous = True``), run while the modulator ``m`` is non-zero.
``before_modulator_jump(step)``
    Called before the rule's modulator jumps (rules with ``listens_to_modulator``).

Traces are per neuron (:class:`Trace`, exact lazy decay). Presynaptic state lives per *pre
row* (``p.n_rows`` rows; synapse ``s`` reads row ``p.pre_row[s]``): a row is a pre neuron,
or with synaptic delays a (pre neuron, delay) pair, since the synapses of one neuron with
different delays see its spikes at different times. ``js`` in ``pre`` are rows.
``pre_traces`` names the traces a pre pathway changes: with ``snapshot``/``restore`` they let
the engine roll back a chunk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from plastinet.errors import RangeError
from plastinet.spiking._neurons import check_tau
from plastinet.spiking.registry import RULES
from plastinet.spiking.rules import PES, DopamineSTDP, ModulatedHebbian, PairSTDP, TripletSTDP

__all__ = ["Trace", "RuleState", "NEVER"]

NEVER = -(2 ** 40)   #: step of "no spike yet"


class Trace:
    """Per-neuron exponential trace with lazy exact decay; jumps ``+= amp`` or ``= amp``."""

    def __init__(self, n: int, tau: float, dt: float, amp: float = 1.0, reset: bool = False) -> None:
        self.val = np.zeros(n)
        self.last = np.full(n, NEVER, dtype=np.int64)
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


class RuleState(ABC):
    """Base class of a plasticity rule's engine state on one projection state ``p``.

    Built by the registry as ``RuleStateClass(rule, p, modulators)`` (``modulators``: the
    engine's modulator states by name).

    Subclasses create their traces in :attr:`traces` (name -> :class:`Trace`), list the
    ones the pre pathway changes in :attr:`pre_traces`, name per-synapse arrays the pre
    pathway changes in :attr:`pre_arrays`, and implement the pathways they use.
    """

    #: The rule changes weights in every step its modulator is non-zero.
    continuous: ClassVar[bool] = False
    #: :meth:`before_modulator_jump` must run before the rule's modulator jumps.
    listens_to_modulator: ClassVar[bool] = False
    #: Checkpoint name -> attribute of per-synapse state arrays (beyond weights and traces).
    arrays: ClassVar[dict[str, str]] = {}
    #: Attributes of per-synapse arrays the pre pathway changes (saved by :meth:`snapshot`).
    pre_arrays: ClassVar[tuple[str, ...]] = ()

    def __init__(self, rule: Any, p: Any, modulators: dict[str, Any]) -> None:
        self.p, self.rule = p, rule
        self.owner = f"{type(rule).__name__} ({p.name!r})"
        self.traces: dict[str, Trace] = {}
        self.pre_traces: tuple[str, ...] = ()
        self.has_post_pathway = False

    def check_taus(self, *names: str) -> None:
        for name in names:
            check_tau(self.owner, name, getattr(self.rule, name), self.p.dt)

    # -- pathways ---------------------------------------------------------------------------
    @abstractmethod
    def pre(self, syn: np.ndarray, rep: np.ndarray, js: np.ndarray, steps: Any, ss: Any) -> np.ndarray:
        """Pre pathway; returns the weights to transmit (see the module docstring)."""

    def post(self, step: int, idx: np.ndarray) -> None:
        """Post pathway (rules without one leave ``has_post_pathway`` false)."""

    def continuous_update(self, step: int, m: float, post_state: Any) -> None:
        """Per-step update (rules with ``continuous = True``)."""

    def before_modulator_jump(self, step: int) -> None:
        """Bring modulator-dependent state up to ``step`` (``listens_to_modulator`` rules)."""

    def weights_at(self, step: int) -> np.ndarray:
        """The weights at ``step`` without changing state."""
        return self.p.w.copy()

    # -- state ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What the pre pathway changes besides the weights."""
        return {"traces": [self.traces[n].snapshot() for n in self.pre_traces],
                "arrays": [getattr(self, a).copy() for a in self.pre_arrays]}

    def restore(self, snap: dict[str, Any]) -> None:
        for n, s in zip(self.pre_traces, snap["traces"]):
            self.traces[n].restore(s)
        for a, arr in zip(self.pre_arrays, snap["arrays"]):
            setattr(self, a, arr)

    def state(self) -> dict[str, np.ndarray]:
        """Checkpoint arrays: ``trace_<name>.val``/``.last`` and :attr:`arrays`."""
        out: dict[str, np.ndarray] = {}
        for name, tr in self.traces.items():
            out[f"trace_{name}.val"], out[f"trace_{name}.last"] = tr.val, tr.last
        out.update({key: getattr(self, attr) for key, attr in self.arrays.items()})
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for key, arr in arrays.items():
            if key in self.arrays:
                setattr(self, self.arrays[key], arr)
            else:
                name, field = key[len("trace_"):].rsplit(".", 1)
                setattr(self.traces[name], field, arr)


@RULES.register(PairSTDP)
class PairSTDPState(RuleState):
    """Pair STDP: pre trace ``x``, post trace ``y`` (all-to-all or nearest-spike)."""

    def __init__(self, rule: PairSTDP, p: Any, modulators: dict[str, Any]) -> None:
        super().__init__(rule, p, modulators)
        self.check_taus("tau_plus", "tau_minus")
        near = rule.pairing == "nearest"
        self.x = Trace(p.n_rows, rule.tau_plus, p.dt, reset=near)
        self.y = Trace(p.n_post, rule.tau_minus, p.dt, reset=near)
        self.traces, self.pre_traces, self.has_post_pathway = {"x": self.x, "y": self.y}, ("x",), True

    def pre(self, syn, rep, js, steps, ss):
        p, rule = self.p, self.rule
        delivered = p.w[syn]
        self.x.bump(js, steps)
        y = self.y.at(p.post[syn], ss)
        if rule.bound == "additive":
            new = delivered - rule.A_minus * y
        else:
            new = delivered - rule.A_minus * (delivered - p.w_min) * y
        p.clip(syn, new)
        return delivered

    def post(self, step, idx):
        p, rule = self.p, self.rule
        self.y.bump(idx, step)
        syn, _ = p.fan_in(idx)
        x = self.x.at(p.pre_row[syn], step)
        w = p.w[syn]
        if rule.bound == "additive":
            p.clip(syn, w + rule.A_plus * x)
        else:
            p.clip(syn, w + rule.A_plus * (p.w_max - w) * x)


@RULES.register(TripletSTDP)
class TripletSTDPState(RuleState):
    """Triplet STDP: pre traces ``r1``, ``r2``; post traces ``o1``, ``o2``."""

    def __init__(self, rule: TripletSTDP, p: Any, modulators: dict[str, Any]) -> None:
        super().__init__(rule, p, modulators)
        self.check_taus("tau_plus", "tau_minus", "tau_x", "tau_y")
        near = rule.pairing == "nearest"
        self.r1 = Trace(p.n_rows, rule.tau_plus, p.dt, reset=near)
        self.r2 = Trace(p.n_rows, rule.tau_x, p.dt, reset=near)
        self.o1 = Trace(p.n_post, rule.tau_minus, p.dt, reset=near)
        self.o2 = Trace(p.n_post, rule.tau_y, p.dt, reset=near)
        self.traces = {"r1": self.r1, "r2": self.r2, "o1": self.o1, "o2": self.o2}
        self.pre_traces, self.has_post_pathway = ("r1", "r2"), True

    def pre(self, syn, rep, js, steps, ss):
        p, rule = self.p, self.rule
        delivered = p.w[syn]
        r2 = self.r2.bump(js, steps)
        self.r1.bump(js, steps)
        o1 = self.o1.at(p.post[syn], ss)
        p.clip(syn, delivered - o1 * (rule.A2_minus + rule.A3_minus * r2[rep]))
        return delivered

    def post(self, step, idx):
        p, rule = self.p, self.rule
        o2 = self.o2.bump(idx, step)
        self.o1.bump(idx, step)
        syn, rep = p.fan_in(idx)
        r1 = self.r1.at(p.pre_row[syn], step)
        p.clip(syn, p.w[syn] + r1 * (rule.A2_plus + rule.A3_plus * o2[rep]))


@RULES.register(DopamineSTDP)
class DopamineSTDPState(RuleState):
    """Dopamine STDP: traces ``kp`` (pre), ``km`` (post), eligibility ``c`` per synapse;
    ``w`` and ``c`` integrated exactly between events (NEST's closed form)."""

    listens_to_modulator = True
    arrays = {"c": "c", "c_last": "t_last"}
    pre_arrays = ("c", "t_last")

    def __init__(self, rule: DopamineSTDP, p: Any, modulators: dict[str, Any]) -> None:
        super().__init__(rule, p, modulators)
        self.check_taus("tau_plus", "tau_minus", "tau_c")
        near = rule.convention == "nearest"
        self.kp = Trace(p.n_rows, rule.tau_plus, p.dt, reset=near)
        self.km = Trace(p.n_post, rule.tau_minus, p.dt, reset=near)
        self.traces, self.pre_traces, self.has_post_pathway = {"kp": self.kp, "km": self.km}, ("kp",), True
        self.c = np.zeros(p.w.size)
        self.t_last = np.zeros(p.w.size, dtype=np.int64)
        self.mod = modulators[rule.modulator]
        tau_n = self.mod.tau
        self.tau_s = rule.tau_c * tau_n / (rule.tau_c + tau_n)

    def integrate(self, syn: Any, step: Any, commit: bool = True) -> np.ndarray:
        """Bring ``w`` and ``c`` of synapses ``syn`` exactly up to ``step``."""
        p, rule, mod = self.p, self.rule, self.mod
        tl = self.t_last[syn]
        dt = p.dt
        delta = (step - tl) * dt
        n0 = mod.val * np.exp(-((tl - mod.last) * dt) / mod.tau)
        c = self.c[syn]
        w = p.w[syn] + c * (n0 * self.tau_s * -np.expm1(-delta / self.tau_s)
                            - rule.b * rule.tau_c * -np.expm1(-delta / rule.tau_c))
        if p.bounded:
            np.clip(w, p.w_min, p.w_max, out=w)
        if commit:
            p.w[syn] = w
            self.c[syn] = c * np.exp(-delta / rule.tau_c)
            self.t_last[syn] = step
        return w

    def pre(self, syn, rep, js, steps, ss):
        delivered = self.integrate(syn, ss)
        self.c[syn] -= self.rule.A_minus * self.km.at(self.p.post[syn], ss)
        self.kp.bump(js, steps)
        return delivered

    def post(self, step, idx):
        p = self.p
        syn, _ = p.fan_in(idx)
        self.integrate(syn, step)
        self.c[syn] += self.rule.A_plus * self.kp.at(p.pre_row[syn], step)
        self.km.bump(idx, step)

    def before_modulator_jump(self, step):
        self.integrate(slice(None), step)

    def weights_at(self, step):
        return self.integrate(slice(None), step, commit=False)


class _RateTraceRule(RuleState):
    """Per-step rules with a presynaptic rate trace ``xr`` (``x += 1/tau_pre`` per spike)."""

    continuous = True

    def __init__(self, rule: Any, p: Any, modulators: dict[str, Any]) -> None:
        super().__init__(rule, p, modulators)
        self.check_taus("tau_pre")
        self.xr = Trace(p.n_rows, rule.tau_pre, p.dt, amp=1.0 / rule.tau_pre)
        self.traces, self.pre_traces = {"xr": self.xr}, ("xr",)
        self.mod = modulators[rule.modulator]

    def pre(self, syn, rep, js, steps, ss):
        self.xr.bump(js, steps)
        return self.p.w[syn]

    @abstractmethod
    def activity(self, step: int, post_state: Any) -> np.ndarray:
        """The post factor of the update (per post neuron) at ``step``."""

    def continuous_update(self, step, m, post_state):
        p = self.p
        x = self.xr.at(slice(None), step)
        a = self.activity(step, post_state)
        g = self.rule.eta * m * p.dt
        if p.dense and p.n_rows == p.n_pre:
            dw = np.multiply.outer(x * g, a).reshape(-1)
        else:
            dw = g * a[p.post] * x[p.pre_row]
        new = p.w + dw
        if p.bounded:
            np.clip(new, p.w_min, p.w_max, out=new)
        p.w = new


@RULES.register(ModulatedHebbian)
class ModulatedHebbianState(_RateTraceRule):
    """Modulated Hebbian: post activity is a RateUnits variable or a spiking post rate trace."""

    def __init__(self, rule: ModulatedHebbian, p: Any, modulators: dict[str, Any]) -> None:
        super().__init__(rule, p, modulators)
        post = p.proj.post
        self.post_trace = None
        if post.spiking:
            self.post_trace = Trace(p.n_post, rule.tau_pre, p.dt, amp=1.0 / rule.tau_pre)
            self.traces["post_trace"] = self.post_trace
            self.has_post_pathway = True
        elif rule.post_variable not in post.inputs:
            raise RangeError("ModulatedHebbian", "post_variable", rule.post_variable,
                             f"RateUnits {post.name!r} has inputs {list(post.inputs)}")

    def post(self, step, idx):
        self.post_trace.bump(idx, step)

    def activity(self, step, post_state):
        if self.post_trace is not None:
            return self.post_trace.at(slice(None), step)
        return post_state.get(self.rule.post_variable)


@RULES.register(PES)
class PESState(_RateTraceRule):
    """PES: the error is teacher minus prediction, read from the RateUnits post population."""

    def activity(self, step, post_state):
        return post_state.get(self.rule.target_variable) - post_state.get(self.rule.prediction_variable)
