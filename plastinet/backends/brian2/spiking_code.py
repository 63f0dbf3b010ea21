"""Brian2 code strings of the spiking lowering (populations, rules, short-term plasticity).

Everything here is plain abstract code for Brian2; values are SI floats taken from the
namespace of each object (``DT`` is the time step in s as a float; ``t_in_timesteps`` is
the integer step counter of the object's clock). Traces keep their value at their last
jump and the integer step of that jump, and are evaluated exactly as the numpy engine
does: ``value * exp(-((t_in_timesteps - last) * DT) / tau)``. Selections without branches
use 0/1 factors (``h * a + (1 - h) * b`` is exactly ``a`` or ``b``).
"""

from __future__ import annotations

from typing import Any

from plastinet.spiking.network import LIF, ConductanceLIF, RateUnits
from plastinet.spiking.rules import PES, DopamineSTDP, ModulatedHebbian, PairSTDP, TripletSTDP

NEVER = -(2 ** 30)        #: "never spiked" step of traces (int32 safe)
BIG = 1.7976931348623157e308


def decay(var: str, last: str, tau: str) -> str:
    """Exact value of trace ``var`` now (the engine's ``Trace.at``)."""
    return f"{var} * exp(-((t_in_timesteps - {last}) * DT) / {tau})"


# --------------------------------------------------------------------------------------
# populations
# --------------------------------------------------------------------------------------

def _hold(update: str, state_lines: list[str], refractory: bool) -> str:
    """The groups-slot code: ``update`` of ``v`` (held while refractory), then ``state_lines``."""
    if not refractory:              # t_ref rounds to 0 steps: no counter (as the engine)
        return "\n".join([f"v = {update}"] + state_lines)
    return "\n".join(["hold = int(ref > 0)", f"v = hold * v + (1 - hold) * ({update})", "ref = ref - hold"]
                     + state_lines)


def population_code(pop: Any, uses_gi: bool, refractory: bool = True) -> dict[str, Any]:
    """Model, groups-slot update, threshold and reset of a dynamic population.

    Parameters
    ----------
    pop : LIF, ConductanceLIF or RateUnits
        The population's spec.
    uses_gi : bool
        Whether a projection targets ``g_i`` (ConductanceLIF with Euler).
    refractory : bool
        Whether the refractory period is at least one step; without it the refractory
        counter is left out of the code (fewer statements per step, same arithmetic).
    """
    if isinstance(pop, (LIF, ConductanceLIF)):
        if isinstance(pop, LIF):
            inputs = ["I_e", "I_i"]
            new = "v_inf + (v - v_inf) * pm + pve * I_e + pvi * I_i"
            decays = ["I_e = I_e * pe", "I_i = I_i * pi_"]
            pre = []
        else:
            inputs = ["g_e", "g_i"]
            decays = ["g_e = g_e * ce"] + (["g_i = g_i * ci"] if uses_gi else [])
            if pop.method == "euler":
                drive = "g_e * (E_e - v) + g_i * (E_i - v) + E_l - v" if uses_gi else "g_e * (E_e - v) + E_l - v"
                new, pre = f"v + kk * ({drive})", []
            else:
                pre = ["aa = 1.0 + g_e + g_i", "vi = (g_e * E_e + g_i * E_i + E_l) / aa"]
                new = "vi + (v - vi) * exp(-kk * aa)"
        model = ["v : 1"] + [f"{x} : 1" for x in inputs]
        if refractory:
            model += ["ref : integer", "hold : integer"]
            threshold, reset = "v > v_th and hold == 0", "v = v_reset\nref = ref_steps"
        else:
            threshold, reset = "v > v_th", "v = v_reset"
        update = "\n".join(pre + [_hold(new, decays, refractory)])
        return {"model": "\n".join(model), "update": update, "threshold": threshold, "reset": reset}
    if isinstance(pop, RateUnits):
        model = "\n".join(f"{x} : 1" for x in pop.inputs)
        model += "\nrate = " + " + ".join(pop.inputs) + " : 1"
        update = "\n".join(f"{x} = {x} * pp" for x in pop.inputs)
        return {"model": model, "update": update, "threshold": None, "reset": None}
    raise TypeError(type(pop).__name__)


def population_namespace(pop: Any, state: Any) -> dict[str, float]:
    """Constants of a dynamic population, taken from the numpy engine's state object."""
    if isinstance(pop, LIF):
        return {"v_inf": state.v_inf, "pm": state.pm, "pve": state.pve, "pvi": state.pvi,
                "pe": state.pe, "pi_": state.pi, "v_th": state.v_th, "v_reset": state.v_reset,
                "ref_steps": state.ref_steps}
    if isinstance(pop, ConductanceLIF):
        return {"kk": state.k, "E_l": state.E_l, "E_e": state.E_e, "E_i": state.E_i,
                "ce": state.ce, "ci": state.ci, "v_th": state.v_th, "v_reset": state.v_reset,
                "ref_steps": state.ref_steps}
    if isinstance(pop, RateUnits):
        return {"pp": state.p}
    raise TypeError(type(pop).__name__)


# --------------------------------------------------------------------------------------
# projections
# --------------------------------------------------------------------------------------

def _clip(expr: str, bounded: bool) -> str:
    return f"clip({expr}, w_lo, w_hi)" if bounded else expr


def projection_code(p: Any) -> dict[str, Any]:
    """Synapse model, on_pre, on_post, per-step code and namespace of a projection.

    ``p`` is the numpy engine's ProjectionState (connectivity and constants).
    """
    proj, rule = p.proj, p.rule
    bounded = p.bounded
    ns: dict[str, float] = {"w_lo": p.w_min if p.w_min > -BIG else -BIG,
                            "w_hi": p.w_max if p.w_max < BIG else BIG}
    model = ["w : 1"]
    pre: list[str] = []
    post: list[str] = []
    cont = ""
    # short-term plasticity first: the delivered factor
    fac = None
    if p.stp is not None:
        stp = p.stp
        model += ["u_s : 1", "R_s : 1", "l_s : integer"]
        ns.update(U=stp.U, tau_rec=stp.tau_rec)
        pre.append("gap = (t_in_timesteps - l_s) * DT")
        if stp.tau_facil > 0:
            ns["tau_facil"] = stp.tau_facil
            pre += ["u_s = u_s * exp(-gap / tau_facil)", "u_s = u_s + U * (1.0 - u_s)"]
        else:
            pre.append("u_s = U")
        pre += ["R_s = 1.0 + (R_s - 1.0) * exp(-gap / tau_rec)", "fac = u_s * R_s",
                "R_s = R_s - u_s * R_s", "l_s = t_in_timesteps"]
        fac = "fac"
    delivered = "w"
    if fac:
        delivered = f"{delivered} * {fac}"
    if p.scale != 1.0:
        ns["scale"] = p.scale
        delivered = f"{delivered} * scale"
    deliver = [f"{proj.target}_post += {delivered}"] if p.transmits else []
    rule_name = p.rule_name
    if rule_name is None:
        pre += deliver
    elif isinstance(rule, PairSTDP):
        # Brian2's event-driven traces: both are brought to the event's time (from the
        # synapse's lastupdate) before the statements run, as the engine's Trace.at
        model += ["dx/dt = -x / (tau_plus * second) : 1 (event-driven)",
                  "dy/dt = -y / (tau_minus * second) : 1 (event-driven)"]
        ns.update(A_plus=rule.A_plus, A_minus=rule.A_minus, tau_plus=rule.tau_plus, tau_minus=rule.tau_minus)
        near = rule.pairing == "nearest"
        pre += deliver
        pre.append("x = 1.0" if near else "x += 1.0")
        post.append("y = 1.0" if near else "y += 1.0")
        if rule.bound == "additive":
            pre.append("w = " + _clip("w - A_minus * y", bounded))
            post.append("w = " + _clip("w + A_plus * x", bounded))
        else:
            ns.update(w_min=p.w_min, w_max=p.w_max)
            pre.append("w = " + _clip("w - A_minus * (w - w_min) * y", bounded))
            post.append("w = " + _clip("w + A_plus * (w_max - w) * x", bounded))
    elif isinstance(rule, TripletSTDP):
        model += ["r1 : 1", "r2 : 1", "o1 : 1", "o2 : 1", "lr : integer", "lo : integer"]
        ns.update(A2_plus=rule.A2_plus, A3_plus=rule.A3_plus, A2_minus=rule.A2_minus,
                  A3_minus=rule.A3_minus, tau_plus=rule.tau_plus, tau_minus=rule.tau_minus,
                  tau_x=rule.tau_x, tau_y=rule.tau_y)
        near = rule.pairing == "nearest"
        pre += deliver
        pre += [f"r2o = {decay('r2', 'lr', 'tau_x')}",
                "r1 = 1.0" if near else f"r1 = {decay('r1', 'lr', 'tau_plus')} + 1.0",
                "r2 = 1.0" if near else "r2 = r2o + 1.0", "lr = t_in_timesteps",
                f"o1v = {decay('o1', 'lo', 'tau_minus')}",
                "w = " + _clip("w - o1v * (A2_minus + A3_minus * r2o)", bounded)]
        post += [f"o2o = {decay('o2', 'lo', 'tau_y')}",
                 "o1 = 1.0" if near else f"o1 = {decay('o1', 'lo', 'tau_minus')} + 1.0",
                 "o2 = 1.0" if near else "o2 = o2o + 1.0", "lo = t_in_timesteps",
                 f"r1v = {decay('r1', 'lr', 'tau_plus')}",
                 "w = " + _clip("w + r1v * (A2_plus + A3_plus * o2o)", bounded)]
    elif isinstance(rule, DopamineSTDP):
        model += ["c : 1", "tl : integer", "Kp : 1", "Km : 1", "lkp : integer", "lkm : integer",
                  "midx : integer (constant)", "mval : 1 (linked)", "mlast : integer (linked)",
                  "mnev : 1 (linked)", "w_now : 1"]
        ns.update(A_plus=rule.A_plus, A_minus=rule.A_minus, tau_plus=rule.tau_plus,
                  tau_minus=rule.tau_minus, tau_c=rule.tau_c, b=rule.b, tau_n=p.mod.tau, tau_s=p.tau_s)
        integ = ["dl = (t_in_timesteps - tl) * DT",
                 "n0 = mval * exp(-((tl - mlast) * DT) / tau_n)",
                 "wn = " + _clip("w + c * (n0 * tau_s * -em1(-dl / tau_s) - b * tau_c * -em1(-dl / tau_c))",
                                 bounded),
                 "cn = c * exp(-dl / tau_c)"]
        commit = ["w = wn", "c = cn", "tl = t_in_timesteps"]
        pre += integ + commit + deliver + [f"kmv = {decay('Km', 'lkm', 'tau_minus')}", "c = c - A_minus * kmv",
                                           f"Kp = {decay('Kp', 'lkp', 'tau_plus')} + 1.0", "lkp = t_in_timesteps"]
        post += integ + commit + [f"kpv = {decay('Kp', 'lkp', 'tau_plus')}", "c = c + A_plus * kpv",
                                  f"Km = {decay('Km', 'lkm', 'tau_minus')} + 1.0", "lkm = t_in_timesteps"]
        # integrate every synapse up to now when the modulator jumps in this step
        cont = "\n".join(["ev = int(mnev > 0)"] + integ +
                         ["w = ev * wn + (1 - ev) * w", "c = ev * cn + (1 - ev) * c",
                          "tl = ev * t_in_timesteps + (1 - ev) * tl"])
    elif isinstance(rule, (ModulatedHebbian, PES)):
        model += ["x : 1", "lx : integer", "midx : integer (constant)", "m : 1 (linked)"]
        ns.update(eta=rule.eta, tau_pre=rule.tau_pre, AMP=1.0 / rule.tau_pre)
        pre += deliver + [f"x = {decay('x', 'lx', 'tau_pre')} + AMP", "lx = t_in_timesteps"]
        if isinstance(rule, PES):
            a = f"({rule.target_variable}_post - {rule.prediction_variable}_post)"
        elif p.post_trace is not None:
            model += ["y : 1", "ly : integer"]
            post += [f"y = {decay('y', 'ly', 'tau_pre')} + AMP", "ly = t_in_timesteps"]
            a = "yv"
        else:
            a = f"{rule.post_variable}_post"
        lines = [f"xv = {decay('x', 'lx', 'tau_pre')}", "g = eta * m * DT"]
        if a == "yv":
            lines.insert(0, f"yv = {decay('y', 'ly', 'tau_pre')}")
        dw = f"xv * g * {a}" if p.dense else f"g * {a} * xv"
        lines.append("w = " + _clip(f"w + {dw}", bounded))
        cont = "\n".join(lines)
    else:  # pragma: no cover - every rule of the engine is handled above
        raise TypeError(rule_name)
    now = ""
    if isinstance(rule, DopamineSTDP):   # weights integrated to now without committing (probes)
        now = "\n".join(integ + ["w_now = wn"])
    return {"model": "\n".join(model), "on_pre": "\n".join(pre), "on_post": "\n".join(post),
            "continuous": cont, "namespace": ns, "w_now": now}
