"""Brian2 code of the dynamic populations, derived from each spec's parameters.

Every builder takes the population spec, the time step ``dt`` (s) and the set of input
targets that projections feed, and returns a :class:`NeuronCode`: the ``NeuronGroup`` model,
the code of the ``groups`` slot (a ``run_regularly`` update: the groups have no differential
equations), threshold, reset, namespace and initial values. The integration schemes are those
stated in the specs' docstrings:

* ``LIF``: the exact solution over one step of the linear system
  ``tau_m dv/dt = v_inf - v + r_m (I_e + I_i)``, ``dI/dt = -I / tau_s``:
  ``v(t+dt) = v_inf + (v - v_inf) e^{-dt/tau_m} + sum_s c_s I_s`` with
  ``c_s = r_m tau_s / (tau_s - tau_m) (e^{-dt/tau_s} - e^{-dt/tau_m})``
  (``r_m dt / tau_m e^{-dt/tau_m}`` when ``tau_s = tau_m``), ``I_s <- I_s e^{-dt/tau_s}``.
* ``ConductanceLIF``: forward Euler on ``(v, g_e, g_i)`` (``method="euler"``), or exponential
  Euler: conductances decay exactly, ``v`` relaxes exactly to
  ``v_inf = (g_e E_e + g_i E_i + E_l) / (1 + g_e + g_i)`` with rate ``(1 + g_e + g_i) / tau_m``
  (conductances frozen over the step).
* ``RateUnits``: each input decays exactly, ``x <- x e^{-dt/tau}``; a spike adds ``w / tau``.
* ``Izhikevich``: forward Euler (``u`` from the old ``v``) or Izhikevich's two half steps of
  ``dt / 2`` for ``v`` followed by one step for ``u`` (``method="half_steps"``) with the input
  ``I`` (V/s) gathered in the previous step, then cleared (a spike adds ``w / dt``); ``v >= v_peak``
  spikes and resets (``v = c``, ``u += d``).
* ``AdEx``: forward Euler on ``(v, w, I_e, I_i)``; a spike when ``v > V_peak`` resets ``v`` and
  adds ``b`` to ``w``; ``v`` is held during ``t_ref`` while ``w`` evolves.

``v`` is held while the refractory counter (``round(t_ref / dt)`` steps) runs; the counter is
left out of the code when ``t_ref`` rounds to zero steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from plastinet.backends.brian2.registry import POPULATIONS
from plastinet.errors import RangeError
from plastinet.spiking.guards import check_tau
from plastinet.spiking.network import LIF, AdEx, ConductanceLIF, Izhikevich, RateUnits

__all__ = ["NeuronCode"]


@dataclass(frozen=True)
class NeuronCode:
    """What a dynamic population lowers to (abstract code; values in SI as plain floats)."""

    model: str                                              #: NeuronGroup model (no differential equations)
    update: str                                             #: ``groups``-slot code of one step
    threshold: str | None = None
    reset: str | None = None
    namespace: dict[str, float] = field(default_factory=dict)
    init: dict[str, float] = field(default_factory=dict)    #: initial values of state variables
    input_scale: float = 1.0                                #: a spike of weight w adds input_scale * w


def refractory_steps(t_ref: float, dt: float) -> int:
    """The refractory period in whole steps (``t_ref / dt`` rounded to the nearest integer)."""
    return int(round(t_ref / dt))


def _hold(update: str, state_lines: list[str], refractory: bool) -> str:
    """The groups-slot code: ``update`` of ``v`` (held while refractory), then ``state_lines``."""
    if not refractory:
        return "\n".join([f"v = {update}"] + state_lines)
    return "\n".join(["hold = int(ref > 0)", f"v = hold * v + (1 - hold) * ({update})", "ref = ref - hold"]
                     + state_lines)


def _spiking(model: list[str], update: str, refractory: bool, ns: dict[str, float], init: dict[str, float],
             ref_steps: int, v_thresh: float, v_reset: float) -> NeuronCode:
    if refractory:
        model = model + ["ref : integer", "hold : integer"]
        threshold, reset = "v > v_th and hold == 0", "v = v_reset\nref = ref_steps"
    else:
        threshold, reset = "v > v_th", "v = v_reset"
    ns = {**ns, "v_th": v_thresh, "v_reset": v_reset, "ref_steps": ref_steps}
    return NeuronCode("\n".join(model), update, threshold, reset, ns, init)


def _coupling(r_m: float, tau_m: float, tau_s: float, dt: float) -> float:
    """Weight of a synaptic current at the start of a step in ``v`` at its end (V/A)."""
    if abs(tau_s - tau_m) < 1e-12 * tau_m:
        return r_m * dt / tau_m * math.exp(-dt / tau_m)
    return r_m * tau_s / (tau_s - tau_m) * (math.exp(-dt / tau_s) - math.exp(-dt / tau_m))


@POPULATIONS.register(LIF)
def _lif(pop: LIF, dt: float, targets: set[str]) -> NeuronCode:
    for name in ("tau_m", "tau_e", "tau_i"):
        check_tau(f"LIF {pop.name!r}", name, getattr(pop, name), dt)
    ref_steps = refractory_steps(pop.t_ref, dt)
    ns = {"v_inf": pop.v_rest + pop.r_m * pop.i_ext, "pm": math.exp(-dt / pop.tau_m),
          "pve": _coupling(pop.r_m, pop.tau_m, pop.tau_e, dt), "pvi": _coupling(pop.r_m, pop.tau_m, pop.tau_i, dt),
          "pe": math.exp(-dt / pop.tau_e), "pi_": math.exp(-dt / pop.tau_i)}
    new = "v_inf + (v - v_inf) * pm + pve * I_e + pvi * I_i"
    update = _hold(new, ["I_e = I_e * pe", "I_i = I_i * pi_"], ref_steps > 0)
    v0 = pop.v_rest if pop.v_init is None else pop.v_init
    return _spiking(["v : 1", "I_e : 1", "I_i : 1"], update, ref_steps > 0, ns, {"v": v0}, ref_steps,
                    pop.v_thresh, pop.v_reset)


@POPULATIONS.register(ConductanceLIF)
def _conductance_lif(pop: ConductanceLIF, dt: float, targets: set[str]) -> NeuronCode:
    euler = pop.method == "euler"
    for name in ("tau_m", "tau_e", "tau_i"):
        check_tau(f"ConductanceLIF {pop.name!r}", name, getattr(pop, name), dt, 2.0 if euler else 1.0)
    ref_steps = refractory_steps(pop.t_ref, dt)
    uses_gi = "g_i" in targets
    # the background current shifts the leak reversal: (E_l - v) + i_ext / g_l = (E_l + i_ext / g_l) - v
    ns = {"kk": dt / pop.tau_m, "E_l": pop.E_l + pop.i_ext / pop.g_l, "E_e": pop.E_e, "E_i": pop.E_i}
    if euler:
        ns.update(ce=1.0 - dt / pop.tau_e, ci=1.0 - dt / pop.tau_i)
        drive = "g_e * (E_e - v) + g_i * (E_i - v) + E_l - v" if uses_gi else "g_e * (E_e - v) + E_l - v"
        pre, new = [], f"v + kk * ({drive})"
    else:
        ns.update(ce=math.exp(-dt / pop.tau_e), ci=math.exp(-dt / pop.tau_i))
        pre = ["aa = 1.0 + g_e + g_i", "vi = (g_e * E_e + g_i * E_i + E_l) / aa"]
        new = "vi + (v - vi) * exp(-kk * aa)"
    decays = ["g_e = g_e * ce"] + (["g_i = g_i * ci"] if uses_gi else [])
    update = "\n".join(pre + [_hold(new, decays, ref_steps > 0)])
    v0 = pop.E_l if pop.v_init is None else pop.v_init
    return _spiking(["v : 1", "g_e : 1", "g_i : 1"], update, ref_steps > 0, ns, {"v": v0}, ref_steps,
                    pop.v_thresh, pop.v_reset)


@POPULATIONS.register(RateUnits)
def _rate_units(pop: RateUnits, dt: float, targets: set[str]) -> NeuronCode:
    check_tau(f"RateUnits {pop.name!r}", "tau", pop.tau, dt)
    model = "\n".join(f"{x} : 1" for x in pop.inputs) + "\nrate = " + " + ".join(pop.inputs) + " : 1"
    update = "\n".join(f"{x} = {x} * pp" for x in pop.inputs)
    # a spike of weight w adds w / tau: a constant rate r then gives <x> = w r
    return NeuronCode(model, update, namespace={"pp": math.exp(-dt / pop.tau)}, input_scale=1.0 / pop.tau)


@POPULATIONS.register(Izhikevich)
def _izhikevich(pop: Izhikevich, dt: float, targets: set[str]) -> NeuronCode:
    """Izhikevich (2003) in SI: ``dv/dt = 4e4 v^2 + 5e3 v + 140 - u + I`` (V/s), ``du/dt = a (b v - u)``.

    The step integrates with the input ``I`` gathered in the previous step (a spike of weight
    ``w`` adds ``w / dt``) and clears it; ``v >= v_peak`` spikes, the reset is ``v = c``, ``u += d``.
    """
    if pop.a * dt > 1.0:
        raise RangeError(f"Izhikevich {pop.name!r}", "a", pop.a,
                         f"the recovery rate a must be <= 1/dt = {1 / dt:g} Hz (dt={dt:g} s)")
    f = "((k2 * v + k1) * v + k0 - u + I)"
    if pop.method == "half_steps":      # Izhikevich's spnet.m / daspnet.m: two half steps for v, then u
        integrate = [f"v = v + HALF * {f}", f"v = v + HALF * {f}", "u = u + DT * (a * (b * v - u))"]
    else:                               # forward Euler: u from the old v
        integrate = [f"dvdt = {f}", "u = u + DT * (a * (b * v - u))", "v = v + DT * dvdt"]
    v0 = pop.c if pop.v_init is None else pop.v_init
    u0 = pop.b * v0 if pop.u_init is None else pop.u_init
    ns = {"k2": 4e4, "k1": 5e3, "k0": 140.0, "a": pop.a, "b": pop.b, "c": pop.c, "d": pop.d, "v_peak": pop.v_peak,
          "DT": dt, "HALF": 0.5 * dt}
    return NeuronCode("v : 1\nu : 1\nI : 1", "\n".join(integrate + ["I = 0.0"]), "v >= v_peak",
                      "v = c\nu = u + d", ns, {"v": v0, "u": u0}, input_scale=1.0 / dt)


@POPULATIONS.register(AdEx)
def _adex(pop: AdEx, dt: float, targets: set[str]) -> NeuronCode:
    """Brette & Gerstner (2005), forward Euler on ``(v, w, I_e, I_i)`` (Brian2's ``method='euler'``)."""
    for name, tau in (("tau_w", pop.tau_w), ("tau_e", pop.tau_e), ("tau_i", pop.tau_i), ("C / g_L", pop.C / pop.g_L)):
        check_tau(f"AdEx {pop.name!r}", name, tau, dt, 2.0)      # Euler on a linear decay: dt < 2 tau
    ref_steps = refractory_steps(pop.t_ref, dt)
    new = "v + k_v * (-g_L * (v - E_L) + g_L * Delta_T * exp((v - V_T) / Delta_T) - w + I_e + I_i + i_ext)"
    state = ["w = w + k_w * (a * (v_old - E_L) - w)", "I_e = I_e * ce", "I_i = I_i * ci"]
    update = "\n".join(["v_old = v", _hold(new, state, ref_steps > 0)])
    ns = {"k_v": dt / pop.C, "k_w": dt / pop.tau_w, "g_L": pop.g_L, "E_L": pop.E_L, "V_T": pop.V_T,
          "Delta_T": pop.Delta_T, "a": pop.a, "i_ext": pop.i_ext, "ce": 1.0 - dt / pop.tau_e,
          "ci": 1.0 - dt / pop.tau_i}
    code = _spiking(["v : 1", "w : 1", "I_e : 1", "I_i : 1", "v_old : 1"], update, ref_steps > 0, ns,
                    {"v": pop.E_L if pop.v_init is None else pop.v_init, "w": pop.w_init}, ref_steps,
                    pop.V_peak, pop.V_reset)
    return NeuronCode(code.model, code.update, code.threshold, code.reset + "\nw = w + b_adapt",
                      {**code.namespace, "b_adapt": pop.b}, code.init)
