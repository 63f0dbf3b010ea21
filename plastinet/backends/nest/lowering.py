"""What each plastinet spec object becomes in NEST: the builder registries of the NEST backend.

Time convention. NEST stamps a spike at the *end* of the step in which the neuron crossed
threshold and needs delays of at least one step; plastinet labels a spike with the step's
start and delivers it in the same step (delay 0). The lowering therefore runs NEST
:data:`SHIFT_STEPS` steps ahead of plastinet (neurons start from the state that reaches
plastinet's initial state after those input-free steps) and places every spike so that
the state plastinet reaches at the end of step ``s`` is NEST's state at time
``(s + 1 + SHIFT_STEPS) dt``. ``docs/backends.md`` has the full table of conventions.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from plastinet.spiking.network import LIF, AdEx, ConductanceLIF, Izhikevich, PoissonGroup, Population, SpikeGenerator
from plastinet.spiking.rules import DopamineSTDP, InhibitorySTDP, PairSTDP, TripletSTDP, TsodyksMarkram

__all__ = ["SHIFT_STEPS", "parrots", "NeuronModel", "SynapseModel", "NEURONS", "SYNAPSES", "register_neuron",
           "register_synapse", "neuron_model", "synapse_model"]

#: NEST runs this many input-free steps before plastinet's step 0 (more, frozen, when dopamine weights are read).
SHIFT_STEPS = 2

MS, MV, PA, PF, NS = 1e3, 1e3, 1e12, 1e12, 1e9     # SI -> NEST units (ms, mV, pA, pF, nS)


@dataclass
class NeuronModel:
    """A dynamic population as NEST nodes: model name, parameters (NEST units), state variables.

    ``variables`` maps plastinet's state variable to (NEST recordable, factor NEST -> SI);
    ``receptors`` maps a projection target to (the sign plastinet's weights must have, the
    factor from plastinet's weight to NEST's): NEST's ``iaf_*`` neurons route a spike to the
    excitatory or the inhibitory synapse by the sign of its weight. ``exact`` is None when
    NEST integrates the model as plastinet does, else the difference (listed in results).
    ``input_steps``: steps between plastinet's delivery of a spike and its effect in NEST
    beyond the LIF's (1 where plastinet's delivery enters the *next* update, as Izhikevich's
    input does, whereas NEST adds a delivered spike in the update of its arrival step).
    ``start``: state set at plastinet's step 0, after NEST's input-free lead-in (for models
    whose lead-in cannot be inverted in closed form); None when ``params`` already start so.
    """

    model: str
    params: dict[str, Any]
    variables: dict[str, tuple[str, float]]
    receptors: dict[str, tuple[int, float]]
    exact: str | None = None
    input_steps: int = 0
    start: dict[str, float] | None = None


@dataclass
class SynapseModel:
    """A projection's synapses in NEST: model, synapse parameters, and the parameters NEST keeps
    on the *postsynaptic* node (``post_params``: the postsynaptic traces' time constants)."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    post_params: dict[str, float] = field(default_factory=dict)
    #: ``params`` are common properties (NEST refuses them in ``Connect``): set on a copy of the model
    common: bool = False


NEURONS: dict[type, Callable[[Population, float], NeuronModel]] = {}
SYNAPSES: dict[type, Callable[[Any, Any, float], SynapseModel]] = {}


def register_neuron(spec_type: type) -> Callable:
    """Decorator: register the NEST lowering of a population type."""
    def deco(func: Callable) -> Callable:
        NEURONS[spec_type] = func
        return func
    return deco


def register_synapse(spec_type: type) -> Callable:
    """Decorator: register the NEST lowering of a spike rule type."""
    def deco(func: Callable) -> Callable:
        SYNAPSES[spec_type] = func
        return func
    return deco


def neuron_model(pop: Population, dt: float) -> NeuronModel | None:
    """The NEST lowering of a dynamic population (None if NEST has none here)."""
    build = NEURONS.get(type(pop))
    return None if build is None else build(pop, dt)


def synapse_model(rule: Any, proj: Any, weight_factor: float) -> SynapseModel | None:
    """The NEST synapse of a projection's rule (None if NEST has none here)."""
    build = SYNAPSES.get(type(rule))
    return None if build is None else build(rule, proj, weight_factor)


@register_neuron(LIF)
def _lif(pop: LIF, dt: float) -> NeuronModel:
    """``iaf_psc_exp``: the same exact integration; ``C_m = tau_m / r_m``."""
    v_inf = pop.v_rest + pop.r_m * pop.i_ext
    v0 = pop.v_rest if pop.v_init is None else pop.v_init
    # start so that SHIFT_STEPS input-free steps of exact decay reach v0
    v_start = v_inf + (v0 - v_inf) * math.exp(SHIFT_STEPS * dt / pop.tau_m)
    params = {"tau_m": pop.tau_m * MS, "C_m": pop.tau_m / pop.r_m * PF, "E_L": pop.v_rest * MV,
              "V_th": pop.v_thresh * MV, "V_reset": pop.v_reset * MV, "t_ref": pop.t_ref * MS,
              "tau_syn_ex": pop.tau_e * MS, "tau_syn_in": pop.tau_i * MS, "I_e": pop.i_ext * PA,
              "V_m": v_start * MV}
    return NeuronModel("iaf_psc_exp", params,
                       {"v": ("V_m", 1 / MV), "I_e": ("I_syn_ex", 1 / PA), "I_i": ("I_syn_in", 1 / PA)},
                       {"I_e": (+1, PA), "I_i": (-1, PA)})


@register_neuron(ConductanceLIF)
def _conductance_lif(pop: ConductanceLIF, dt: float) -> NeuronModel:
    """``iaf_cond_exp``: ``g_L = g_l``, ``C_m = g_l tau_m``, conductances in nS (``g g_l``).

    NEST integrates it with an adaptive Runge-Kutta-Fehlberg solver, plastinet with (exponential)
    Euler steps, so the two agree to the integration error, not step for step.
    """
    g_l = getattr(pop, "g_l", 1e-8)
    i_ext = getattr(pop, "i_ext", 0.0)
    v_inf = pop.E_l + i_ext / g_l
    v0 = pop.E_l if pop.v_init is None else pop.v_init
    v_start = v_inf + (v0 - v_inf) * math.exp(SHIFT_STEPS * dt / pop.tau_m)
    params = {"C_m": g_l * pop.tau_m * PF, "g_L": g_l * NS, "E_L": pop.E_l * MV, "V_th": pop.v_thresh * MV,
              "V_reset": pop.v_reset * MV, "E_ex": pop.E_e * MV, "E_in": pop.E_i * MV, "t_ref": pop.t_ref * MS,
              "tau_syn_ex": pop.tau_e * MS, "tau_syn_in": pop.tau_i * MS, "I_e": i_ext * PA, "V_m": v_start * MV}
    return NeuronModel("iaf_cond_exp", params,
                       {"v": ("V_m", 1 / MV), "g_e": ("g_ex", 1 / (g_l * NS)), "g_i": ("g_in", 1 / (g_l * NS))},
                       {"g_e": (+1, g_l * NS), "g_i": (+1, -g_l * NS)},
                       exact=(f"ConductanceLIF {pop.name!r}: NEST's iaf_cond_exp integrates with an adaptive "
                              f"Runge-Kutta-Fehlberg solver, plastinet with {pop.method} steps of dt"))


@register_neuron(Izhikevich)
def _izhikevich(pop: Izhikevich, dt: float) -> NeuronModel:
    """``izhikevich`` in Izhikevich's units (mV, ms): ``a``, ``b`` per ms, ``u`` and ``d`` in mV/ms.

    ``method="euler"`` is NEST's ``consistent_integration`` (forward Euler on the old ``v``
    and ``u``; a spike of weight ``w_NEST`` mV jumps ``v``): plastinet's input ``w / dt``
    moves ``v`` by exactly ``w``, so ``w_NEST = w`` in mV. ``method="half_steps"`` is NEST's
    ``consistent_integration=False`` (Izhikevich's two half steps for ``v``, then ``u`` from
    the new ``v``), in which NEST adds a spike's weight as a current in both half steps:
    ``w_NEST = w / dt`` in mV/ms, plastinet's input. Both are the same arithmetic as the numpy
    engine. NEST's ``V_min`` stays unbounded.
    """
    v0 = pop.c if pop.v_init is None else pop.v_init
    u0 = pop.b * v0 if pop.u_init is None else pop.u_init
    start = {"V_m": v0 * MV, "U_m": u0 / MS * MV}            # u: V/s = mV/ms
    params = {"a": pop.a / MS, "b": pop.b / MS, "c": pop.c * MV, "d": pop.d / MS * MV, "V_th": pop.v_peak * MV,
              "I_e": 0.0, "consistent_integration": pop.method == "euler", **start}
    factor = MV if pop.method == "euler" else MV / (dt * MS)
    return NeuronModel("izhikevich", params, {"v": ("V_m", 1 / MV), "u": ("U_m", MS / MV)}, {"I": (0, factor)},
                       input_steps=1, start=start)


@register_neuron(AdEx)
def _adex(pop: AdEx, dt: float) -> NeuronModel:
    """``aeif_psc_exp``: the same equations (current synapses, ``v`` held at ``V_reset`` during
    ``t_ref`` while ``w`` evolves), integrated by NEST's adaptive Runge-Kutta-Fehlberg (4, 5)
    solver and by plastinet's forward Euler: they agree to Euler's error, not step for step.
    NEST starts from plastinet's initial state ``SHIFT_STEPS`` steps early (exact at rest).
    """
    params = {"C_m": pop.C * PF, "g_L": pop.g_L * NS, "E_L": pop.E_L * MV, "V_th": pop.V_T * MV,
              "Delta_T": pop.Delta_T * MV, "tau_w": pop.tau_w * MS, "a": pop.a * NS, "b": pop.b * PA,
              "V_reset": pop.V_reset * MV, "V_peak": pop.V_peak * MV, "t_ref": pop.t_ref * MS,
              "tau_syn_ex": pop.tau_e * MS, "tau_syn_in": pop.tau_i * MS, "I_e": pop.i_ext * PA,
              "V_m": (pop.E_L if pop.v_init is None else pop.v_init) * MV, "w": pop.w_init * PA}
    return NeuronModel("aeif_psc_exp", params,
                       {"v": ("V_m", 1 / MV), "w": ("w", 1 / PA), "I_e": ("I_syn_ex", 1 / PA),
                        "I_i": ("I_syn_in", 1 / PA)},
                       {"I_e": (+1, PA), "I_i": (-1, PA)},
                       exact=(f"AdEx {pop.name!r}: NEST's aeif_psc_exp integrates with an adaptive "
                              "Runge-Kutta-Fehlberg solver, plastinet with forward Euler steps of dt"))


@register_synapse(PairSTDP)
def _pair_stdp(rule: PairSTDP, proj: Any, weight_factor: float) -> SynapseModel:
    """``stdp_synapse`` (all-to-all) / ``stdp_nn_symm_synapse`` (nearest), additive bounds.

    NEST's update is ``w/Wmax + lambda K`` (capped at 1) and ``w/Wmax - alpha lambda K``
    (floored at 0), so ``Wmax = w_max``, ``lambda = A_plus / w_max``, ``alpha = A_minus /
    A_plus`` and the lower bound is 0.
    """
    model = "stdp_synapse" if rule.pairing == "all" else "stdp_nn_symm_synapse"
    wmax = proj.w_max * weight_factor
    return SynapseModel(model, {"Wmax": wmax, "lambda": rule.A_plus / proj.w_max,
                                "alpha": rule.A_minus / rule.A_plus if rule.A_plus else 0.0,
                                "mu_plus": 0.0, "mu_minus": 0.0, "tau_plus": rule.tau_plus * MS},
                        {"tau_minus": rule.tau_minus * MS})


@register_synapse(TripletSTDP)
def _triplet_stdp(rule: TripletSTDP, proj: Any, weight_factor: float) -> SynapseModel:
    """``stdp_triplet_synapse`` (all-to-all; absolute amplitudes, clipped to ``[0, Wmax]``)."""
    return SynapseModel("stdp_triplet_synapse",
                        {"Wmax": proj.w_max * weight_factor, "tau_plus": rule.tau_plus * MS,
                         "tau_plus_triplet": rule.tau_x * MS, "Aplus": rule.A2_plus * weight_factor,
                         "Aplus_triplet": rule.A3_plus * weight_factor, "Aminus": rule.A2_minus * weight_factor,
                         "Aminus_triplet": rule.A3_minus * weight_factor},
                        {"tau_minus": rule.tau_minus * MS, "tau_minus_triplet": rule.tau_y * MS})


@register_synapse(InhibitorySTDP)
def _inhibitory_stdp(rule: InhibitorySTDP, proj: Any, weight_factor: float) -> SynapseModel:
    """``vogels_sprekeler_synapse``: ``eta`` and ``alpha`` as plastinet's (absolute), weights of the sign of
    ``Wmax`` (negative onto NEST's inhibitory synapses); the post trace's ``tau`` is the neuron's ``tau_minus``.
    """
    return SynapseModel("vogels_sprekeler_synapse",
                        {"Wmax": proj.w_max * weight_factor, "eta": rule.eta * abs(weight_factor),
                         "alpha": rule.alpha, "tau": rule.tau * MS},
                        {"tau_minus": rule.tau * MS})


def _finite(w: float) -> float:
    """An unbounded weight bound as the largest double (NEST's bounds are finite numbers)."""
    return max(-sys.float_info.max, min(sys.float_info.max, w))


@register_synapse(DopamineSTDP)
def _dopamine_stdp(rule: DopamineSTDP, proj: Any, weight_factor: float) -> SynapseModel:
    """``stdp_dopamine_synapse`` (all-to-all traces, common properties on a model copy).

    Here in NEST's units for a volume transmitter whose spike adds ``1/tau_n`` (per ms) to
    ``n``: ``b`` per ms (``b / 1000``), ``A_plus``, ``A_minus``, ``Wmin``, ``Wmax`` in NEST's
    weight units. :func:`plastinet.backends.nest.modulation.dopamine_params` rescales them to
    the modulator's events (``tau_n``, the volume transmitter, the multiplicity of an event).
    """
    return SynapseModel("stdp_dopamine_synapse",
                        {"A_plus": rule.A_plus * weight_factor, "A_minus": rule.A_minus * weight_factor,
                         "tau_plus": rule.tau_plus * MS, "tau_c": rule.tau_c * MS, "b": rule.b / MS,
                         "Wmin": _finite(proj.w_min * weight_factor), "Wmax": _finite(proj.w_max * weight_factor)},
                        {"tau_minus": rule.tau_minus * MS}, common=True)


def tsodyks_params(stp: TsodyksMarkram) -> dict[str, float]:
    """``tsodyks2_synapse`` parameters of plastinet's Tsodyks-Markram model.

    NEST sends its first spike with the initial ``x u`` unchanged, then at every later spike
    updates ``x = 1 + (x - x u - 1) exp(-h/tau_rec)``, ``u = U + u (1 - U) exp(-h/tau_fac)`` and
    sends ``w x u``. Started at ``x = 1``, ``u = U`` this is plastinet's per-neuron ``R``, ``u``
    (first efficacy ``U``, measured against NEST 3.10).
    """
    return {"U": stp.U, "u": stp.U, "x": 1.0, "tau_rec": stp.tau_rec * MS, "tau_fac": stp.tau_facil * MS}


def rule_problem(rule: Any, proj: Any) -> str | None:
    """Why a plastic projection has no NEST lowering (None when it has one)."""
    if isinstance(rule, TripletSTDP):
        if rule.pairing != "all":
            return "TripletSTDP(pairing='nearest'): NEST's stdp_triplet_synapse is all-to-all"
        if proj.w_min != 0.0 or not math.isfinite(proj.w_max) or proj.w_max <= 0:
            return (f"TripletSTDP on {proj.name!r} needs w_min = 0 and a finite w_max > 0 (NEST clips to "
                    f"[0, Wmax]); got [{proj.w_min:g}, {proj.w_max:g}]")
        return None
    if isinstance(rule, InhibitorySTDP):
        if proj.w_min != 0.0 or not math.isfinite(proj.w_max):
            return (f"InhibitorySTDP on {proj.name!r} needs w_min = 0 and a finite w_max (NEST's "
                    f"vogels_sprekeler_synapse clips magnitudes to [0, |Wmax|]); got [{proj.w_min:g}, {proj.w_max:g}]")
        return None
    if isinstance(rule, DopamineSTDP):
        return None
    if not isinstance(rule, PairSTDP):
        return None
    if rule.pairing != "all":
        return (f"PairSTDP(pairing='nearest') on {proj.name!r}: NEST's stdp_nn_symm_synapse starts with a "
                "phantom presynaptic spike at t = 0, which plastinet does not have")
    if rule.bound != "additive":
        return "PairSTDP(bound='soft') (NEST's stdp_synapse is additive with mu = 0 only in this lowering)"
    if proj.w_min != 0.0 or not math.isfinite(proj.w_max) or proj.w_max <= 0:
        return (f"PairSTDP on {proj.name!r} needs w_min = 0 and a finite w_max > 0 (NEST's stdp_synapse "
                f"clips to [0, Wmax]); got [{proj.w_min:g}, {proj.w_max:g}]")
    if rule.A_plus == 0.0:
        return "PairSTDP with A_plus = 0 (NEST's alpha = A_minus / A_plus)"
    return None


def is_source(pop: Population) -> bool:
    """Whether a population's spikes are drawn in advance (Poisson groups, generators)."""
    return isinstance(pop, (PoissonGroup, SpikeGenerator)) or pop.source


def parrot_times(steps: np.ndarray, dt: float, offset_steps: int) -> np.ndarray:
    """Spike-generator times (ms) that make a parrot relay spike ``offset_steps`` after ``steps``."""
    return (steps + offset_steps).astype(np.float64) * dt * MS


def parrots(nest: Any, gens: Any, dt: float) -> Any:
    par = nest.Create("parrot_neuron", len(gens))
    nest.Connect(gens, par, "one_to_one", syn_spec={"delay": dt * MS})
    return par
