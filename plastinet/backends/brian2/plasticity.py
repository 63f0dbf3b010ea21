"""Brian2 ``Synapses`` code of projections: transmission, short-term and long-term plasticity.

One builder per rule type (registered in :data:`~plastinet.backends.brian2.registry.RULES`;
``type(None)`` for static synapses) turns the rule's parameters into a :class:`SynapseCode`.
Everything is plain abstract code for Brian2; values are SI floats from the namespace
(``DT`` is the time step in s; ``t_in_timesteps`` the integer step of the object's clock).
Traces that are not Brian2 event-driven variables keep their value at their last jump and
the step of that jump, and are evaluated exactly: ``value * exp(-((t_in_timesteps - last) *
DT) / tau)``. Branch-free selections use 0/1 factors (``h * a + (1 - h) * b`` is exactly
``a`` or ``b``). After every weight change ``w`` is clipped to ``[w_min, w_max]`` when the
projection has a finite bound.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from plastinet.backends.brian2.registry import RULES
from plastinet.spiking.guards import check_tau
from plastinet.spiking.network import Projection
from plastinet.spiking.rules import PES, DopamineSTDP, InhibitorySTDP, ModulatedHebbian, PairSTDP, TripletSTDP

__all__ = ["NEVER", "SynapseCode", "Projected", "synapse_code"]

NEVER = -(2 ** 30)        #: "never spiked" step of traces (int32 safe)
MAX_TABLE = 2 ** 20       #: longest decay table (entries, 8 MB) used instead of an exp per event
BIG = 1.7976931348623157e308


@dataclass(frozen=True)
class Projected:
    """What a rule builder needs to know about its projection beyond the rule's parameters."""

    proj: Projection
    dt: float                           #: time step (s)
    deliver: list[str]                  #: statements transmitting the (scaled) weight on a pre spike
    mod_tau: float | None = None        #: time constant (s) of the rule's SpikeSignal modulator
    mod_silent: bool = False            #: that SpikeSignal never jumps (no sources, no rewards): it stays 0

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.proj.w_min) or math.isfinite(self.proj.w_max)


@dataclass
class SynapseCode:
    """What a projection lowers to."""

    model: list[str] = field(default_factory=lambda: ["w : 1"])
    on_pre: list[str] = field(default_factory=list)
    on_post: list[str] = field(default_factory=list)
    continuous: str = ""                #: per-step code (``run_regularly`` in the ``synapses`` slot)
    namespace: dict[str, float] = field(default_factory=dict)
    w_now: str = ""                     #: code setting ``w_now``, the weight integrated to now (probes)
    linked: tuple[str, ...] = ()        #: variables linked from the modulator's group (same names)
    #: code run on every synapse in a step where the modulator jumps, before the jump (the
    #: synapses integrated up to its time); its names are the synapse's own (``w``, ``mval``, ...)
    on_jump: str = ""
    never: tuple[str, ...] = ()         #: integer "last jump" variables starting at NEVER
    #: integer variables of the pre / post neurons (``NeuronGroup``) starting at NEVER, named
    #: with the ``_pre`` / ``_post`` suffix in the code
    pre_vars: tuple[str, ...] = ()
    post_vars: tuple[str, ...] = ()
    #: lookup tables by a whole number of steps k, name -> (function, tau) of
    #: :func:`step_table`, called in the code as ``name(k * one_second)`` (a 1 s ``TimedArray``)
    tables: dict[str, tuple[str, float]] = field(default_factory=dict)


def _decay(var: str, last: str, tau: str) -> str:
    """Exact value of a trace now, from its value ``var`` at its last jump (step ``last``)."""
    return f"{var} * exp(-((t_in_timesteps - {last}) * DT) / {tau})"


def _clip(expr: str, bounded: bool) -> str:
    return f"clip({expr}, w_lo, w_hi)" if bounded else expr


def synapse_code(proj: Projection, dt: float, mod_tau: float | None = None, input_scale: float = 1.0,
                 probed: bool = False, mod_silent: bool = False) -> SynapseCode:
    """The Synapses code of ``proj``: short-term plasticity, transmission, then its rule's builder.

    Parameters
    ----------
    proj : Projection
        The projection's spec.
    dt : float
        Time step (s).
    mod_tau : float or None
        Time constant (s) of the rule's SpikeSignal modulator, if it has one.
    input_scale : float
        What a spike of weight ``w`` adds to the target, per unit weight (the post
        population's :attr:`~plastinet.backends.brian2.neurons.NeuronCode.input_scale`).
    mod_silent : bool
        Whether the rule's SpikeSignal can never jump (no sources, no rewards), so that it
        is 0 throughout and its terms drop out of the rule's code.
    probed : bool
        Whether a WeightProbe records the weights. A static projection with one weight for
        every synapse and no probe has no per-synapse ``w``: its spikes add a constant (as a
        hand-written script writes it; less memory and one read fewer per synapse).
    """
    if proj.rule is None and proj.stp is None and not probed and not isinstance(proj.weight, tuple) \
            and np.ndim(proj.weight) == 0:
        code = SynapseCode(model=[], namespace={"w_const": float(proj.weight) * input_scale})
        code.on_pre = [f"{proj.target}_post += w_const"] if proj.target != "none" else []
        return code
    code = SynapseCode()
    code.namespace.update(w_lo=proj.w_min if proj.w_min > -BIG else -BIG,
                          w_hi=proj.w_max if proj.w_max < BIG else BIG, DT=dt)
    stp = proj.stp
    delivered = "w"
    if stp is not None:
        owner = f"TsodyksMarkram ({proj.name!r})"
        check_tau(owner, "tau_rec", stp.tau_rec, dt)
        code.model += ["u_s : 1", "R_s : 1", "l_s : integer"]
        code.namespace.update(U=stp.U, tau_rec=stp.tau_rec)
        code.on_pre.append("gap = (t_in_timesteps - l_s) * DT")
        if stp.tau_facil > 0:
            check_tau(owner, "tau_facil", stp.tau_facil, dt)
            code.namespace["tau_facil"] = stp.tau_facil
            code.on_pre += ["u_s = u_s * exp(-gap / tau_facil)", "u_s = u_s + U * (1.0 - u_s)"]
        else:
            code.on_pre.append("u_s = U")
        code.on_pre += ["R_s = 1.0 + (R_s - 1.0) * exp(-gap / tau_rec)", "fac = u_s * R_s",
                        "R_s = R_s - u_s * R_s", "l_s = t_in_timesteps"]
        code.never += ("l_s",)
        delivered = "w * fac"
    if input_scale != 1.0:
        code.namespace["scale"] = input_scale
        delivered += " * scale"
    deliver = [f"{proj.target}_post += {delivered}"] if proj.target != "none" else []
    RULES(proj.rule, Projected(proj, dt, deliver, mod_tau, mod_silent), code)
    return code


@RULES.register(type(None))
def _static(rule: None, p: Projected, code: SynapseCode) -> None:
    code.on_pre += p.deliver


@RULES.register(PairSTDP)
def _pair(rule: PairSTDP, p: Projected, code: SynapseCode) -> None:
    owner = f"PairSTDP ({p.proj.name!r})"
    check_tau(owner, "tau_plus", rule.tau_plus, p.dt)
    check_tau(owner, "tau_minus", rule.tau_minus, p.dt)
    # Brian2's event-driven traces: both are brought to the event's time (from the synapse's
    # lastupdate) before the statements run
    code.model += ["dx/dt = -x / (tau_plus * second) : 1 (event-driven)",
                   "dy/dt = -y / (tau_minus * second) : 1 (event-driven)"]
    code.namespace.update(A_plus=rule.A_plus, A_minus=rule.A_minus, tau_plus=rule.tau_plus,
                          tau_minus=rule.tau_minus)
    near = rule.pairing == "nearest"
    b = p.bounded
    code.on_pre += p.deliver + ["x = 1.0" if near else "x += 1.0"]
    code.on_post.append("y = 1.0" if near else "y += 1.0")
    if rule.bound == "additive":
        code.on_pre.append("w = " + _clip("w - A_minus * y", b))
        code.on_post.append("w = " + _clip("w + A_plus * x", b))
    else:
        code.namespace.update(w_min=p.proj.w_min, w_max=p.proj.w_max)
        code.on_pre.append("w = " + _clip("w - A_minus * (w - w_min) * y", b))
        code.on_post.append("w = " + _clip("w + A_plus * (w_max - w) * x", b))


@RULES.register(TripletSTDP)
def _triplet(rule: TripletSTDP, p: Projected, code: SynapseCode) -> None:
    for name in ("tau_plus", "tau_minus", "tau_x", "tau_y"):
        check_tau(f"TripletSTDP ({p.proj.name!r})", name, getattr(rule, name), p.dt)
    code.model += ["r1 : 1", "r2 : 1", "o1 : 1", "o2 : 1", "lr : integer", "lo : integer"]
    code.never += ("lr", "lo")
    code.namespace.update(A2_plus=rule.A2_plus, A3_plus=rule.A3_plus, A2_minus=rule.A2_minus,
                          A3_minus=rule.A3_minus, tau_plus=rule.tau_plus, tau_minus=rule.tau_minus,
                          tau_x=rule.tau_x, tau_y=rule.tau_y)
    near = rule.pairing == "nearest"
    b = p.bounded
    code.on_pre += p.deliver + [
        f"r2o = {_decay('r2', 'lr', 'tau_x')}",
        "r1 = 1.0" if near else f"r1 = {_decay('r1', 'lr', 'tau_plus')} + 1.0",
        "r2 = 1.0" if near else "r2 = r2o + 1.0", "lr = t_in_timesteps",
        f"o1v = {_decay('o1', 'lo', 'tau_minus')}",
        "w = " + _clip("w - o1v * (A2_minus + A3_minus * r2o)", b)]
    code.on_post += [
        f"o2o = {_decay('o2', 'lo', 'tau_y')}",
        "o1 = 1.0" if near else f"o1 = {_decay('o1', 'lo', 'tau_minus')} + 1.0",
        "o2 = 1.0" if near else "o2 = o2o + 1.0", "lo = t_in_timesteps",
        f"r1v = {_decay('r1', 'lr', 'tau_plus')}",
        "w = " + _clip("w + r1v * (A2_plus + A3_plus * o2o)", b)]


#: x beyond which exp(-x) is exactly 0 and expm1(-x) exactly -1 in double precision
_FLAT = {"exp": 746.0, "expm1": 40.0}


@functools.lru_cache(maxsize=32)
def step_table(function: str, tau: float, dt: float) -> np.ndarray | None:
    """``f(-(k dt) / tau)`` (``f``: numpy's ``exp`` or ``expm1``) for ``k = 0, 1, ...`` up to its
    first exact final value (0, or -1), which holds for every larger ``k``; None if that takes
    more than MAX_TABLE entries.

    The numpy engine's decay factors after ``k`` steps, bit for bit (the same numpy
    expression), read by index instead of an ``exp`` per synapse event.

    Parameters
    ----------
    function : {"exp", "expm1"}
        The numpy function applied to ``-(k dt) / tau``.
    tau : float
        Time constant (s).
    dt : float
        Time step (s).

    Returns
    -------
    numpy.ndarray or None
        The factors for ``k = 0 .. len - 1`` (dimensionless), or None when the table would
        exceed ``MAX_TABLE`` entries.
    """
    n = int(math.ceil(_FLAT[function] * tau / dt)) + 2
    if n > MAX_TABLE:
        return None
    values = getattr(np, function)(-(np.arange(n, dtype=np.int64) * dt) / tau)
    return values[:int(np.argmax(values == values[-1])) + 1]


def _last_spike_on_neurons(rule: DopamineSTDP, p: Projected) -> bool:
    """Whether the nearest-spike traces can live on the neurons as the step of their last spike.

    With Izhikevich's convention a trace is ``exp(-age / tau)`` of the last spike, a value of
    the neuron: without delays every synapse of a neuron would hold the same copy. The
    synapses then read one "last spike" step per pre and post neuron (written by the pathways,
    so a pre spike is seen by the post pathway of its step and a post spike by the pre
    pathways of the next steps, as the engine's traces are) and look the decay up in a table
    (:func:`step_table`; a trace that never jumped is far past its end, at 0), instead of
    two values and two steps per synapse and an ``exp`` per event.
    """
    undelayed = isinstance(p.proj.delay, float) and p.proj.delay == 0.0
    return (rule.convention == "nearest" and undelayed and not p.proj.pre.source
            and all(step_table("exp", tau, p.dt) is not None for tau in (rule.tau_plus, rule.tau_minus)))


@RULES.register(DopamineSTDP)
def _dopamine(rule: DopamineSTDP, p: Projected, code: SynapseCode) -> None:
    for name in ("tau_plus", "tau_minus", "tau_c"):
        check_tau(f"DopamineSTDP ({p.proj.name!r})", name, getattr(rule, name), p.dt)
    tau_n = p.mod_tau
    code.model += ["c : 1", "tl : integer", "w_now : 1"]
    # between events dc/dt = -c/tau_c and dw/dt = c (n - b) with n = n0 e^{-t/tau_n}: the
    # closed form over an interval of length dl uses tau_s = tau_c tau_n / (tau_c + tau_n)
    code.namespace.update(A_plus=rule.A_plus, A_minus=rule.A_minus, tau_plus=rule.tau_plus,
                          tau_minus=rule.tau_minus, tau_c=rule.tau_c, b=rule.b, tau_n=tau_n,
                          tau_s=rule.tau_c * tau_n / (rule.tau_c + tau_n))
    # the factors of c's decay since the synapse's last update: looked up by its age in steps
    tabled = all(step_table(f, rule.tau_c, p.dt) is not None for f in ("exp", "expm1"))
    integ = []
    if tabled:
        code.tables.update(exp_c=("exp", rule.tau_c), expm1_c=("expm1", rule.tau_c))
        integ.append("k = (t_in_timesteps - tl) * one_second")
        em1_c, c_new = "expm1_c(k)", "c * exp_c(k)"
    else:
        em1_c, c_new = "em1(-dl / tau_c)", "c * exp(-dl / tau_c)"
    if not (tabled and p.mod_silent):
        integ.append("dl = (t_in_timesteps - tl) * DT")
    if p.mod_silent:        # n = 0 throughout: the modulator's term is exactly 0
        w_new = _clip(f"w - c * (b * tau_c * -{em1_c})", p.bounded)
    else:
        code.model += ["midx : integer (constant)", "mval : 1 (linked)", "mlast : integer (linked)"]
        code.linked = ("mval", "mlast")
        integ.append("n0 = mval * exp(-((tl - mlast) * DT) / tau_n)")
        w_new = _clip(f"w + c * (n0 * tau_s * -em1(-dl / tau_s) - b * tau_c * -{em1_c})", p.bounded)
    if _last_spike_on_neurons(rule, p):
        lkp, lkm = f"lkp_{p.proj.name}", f"lkm_{p.proj.name}"
        code.pre_vars, code.post_vars = (lkp,), (lkm,)
        code.tables.update(decay_plus=("exp", rule.tau_plus), decay_minus=("exp", rule.tau_minus))
        kmv = f"decay_minus((t_in_timesteps - {lkm}_post) * one_second)"
        kpv = f"decay_plus((t_in_timesteps - {lkp}_pre) * one_second)"
        pre_bump, post_bump = [f"{lkp}_pre = t_in_timesteps"], [f"{lkm}_post = t_in_timesteps"]
    else:                                   # traces per synapse: value at the last jump and its step
        code.model += ["Kp : 1", "Km : 1", "lkp : integer", "lkm : integer"]
        code.never += ("lkp", "lkm")
        near = rule.convention == "nearest"      # Izhikevich's daspnet.m: a spike resets its trace to 1
        kmv, kpv = _decay("Km", "lkm", "tau_minus"), _decay("Kp", "lkp", "tau_plus")
        pre_bump = ["Kp = 1.0" if near else f"Kp = {kpv} + 1.0", "lkp = t_in_timesteps"]
        post_bump = ["Km = 1.0" if near else f"Km = {kmv} + 1.0", "lkm = t_in_timesteps"]
    # the pathways: integrate to now (w, then c from its old value), then the spike's own effect
    code.on_pre += integ + [f"w = {w_new}", f"c = {c_new} - A_minus * {kmv}", "tl = t_in_timesteps"] \
        + p.deliver + pre_bump
    code.on_post += integ + [f"w = {w_new}", f"c = {c_new} + A_plus * {kpv}", "tl = t_in_timesteps"] + post_bump
    # integrate every synapse up to now when the modulator jumps in this step
    code.on_jump = "\n".join(integ + [f"w = {w_new}", f"c = {c_new}", "tl = t_in_timesteps"])
    code.w_now = "\n".join(integ + [f"w_now = {w_new}"])


@RULES.register(InhibitorySTDP)
def _inhibitory(rule: InhibitorySTDP, p: Projected, code: SynapseCode) -> None:
    """Vogels et al. (2011) as in Brian2's ``examples/frompapers/Vogels_et_al_2011.py``."""
    check_tau(f"InhibitorySTDP ({p.proj.name!r})", "tau", rule.tau, p.dt)
    code.model += ["dApre/dt = -Apre / (tau_istdp * second) : 1 (event-driven)",
                   "dApost/dt = -Apost / (tau_istdp * second) : 1 (event-driven)"]
    code.namespace.update(eta=rule.eta, tau_istdp=rule.tau, alpha=rule.alpha)
    code.on_pre += p.deliver + ["Apre += 1.0", "w = " + _clip("w + eta * (Apost - alpha)", p.bounded)]
    code.on_post += ["Apost += 1.0", "w = " + _clip("w + eta * Apre", p.bounded)]


def _rate_trace_rule(rule: ModulatedHebbian | PES, p: Projected, code: SynapseCode, activity: str) -> None:
    """Per-step ``w += eta m a x DT`` with the presynaptic rate trace ``x`` (+1/tau_pre per spike)."""
    check_tau(f"{type(rule).__name__} ({p.proj.name!r})", "tau_pre", rule.tau_pre, p.dt)
    code.model += ["x : 1", "lx : integer", "midx : integer (constant)", "m : 1 (linked)"]
    code.never += ("lx",)
    code.linked = ("m",)
    code.namespace.update(eta=rule.eta, tau_pre=rule.tau_pre, AMP=1.0 / rule.tau_pre)
    code.on_pre += p.deliver + [f"x = {_decay('x', 'lx', 'tau_pre')} + AMP", "lx = t_in_timesteps"]
    lines = [f"xv = {_decay('x', 'lx', 'tau_pre')}", "g = eta * m * DT"]
    if activity == "yv":
        lines.insert(0, f"yv = {_decay('y', 'ly', 'tau_pre')}")
    dw = f"xv * g * {activity}" if p.proj.connectivity == "all" else f"g * {activity} * xv"
    lines.append("w = " + _clip(f"w + {dw}", p.bounded))
    code.continuous = "\n".join(lines)


@RULES.register(ModulatedHebbian)
def _modulated_hebbian(rule: ModulatedHebbian, p: Projected, code: SynapseCode) -> None:
    if p.proj.post.spiking:         # the post rate trace, with the pre trace's filter
        code.model += ["y : 1", "ly : integer"]
        code.never += ("ly",)
        code.on_post += [f"y = {_decay('y', 'ly', 'tau_pre')} + AMP", "ly = t_in_timesteps"]
        _rate_trace_rule(rule, p, code, "yv")
    else:
        _rate_trace_rule(rule, p, code, f"{rule.post_variable}_post")


@RULES.register(PES)
def _pes(rule: PES, p: Projected, code: SynapseCode) -> None:
    _rate_trace_rule(rule, p, code, f"({rule.target_variable}_post - {rule.prediction_variable}_post)")
