"""Independent references for the neuron models and rules of the numpy engine.

Everything here is written from the published equations (or the authors' code) in plain
Python floats, in the authors' own units (mV, ms, pA, nS, pF), without importing
plastinet's engine: a test compares the engine's result with one of these.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np


# --------------------------------------------------------------------------------------
# Izhikevich (2003): dv/dt = 0.04 v^2 + 5 v + 140 - u + I, du/dt = a (b v - u), v >= 30 -> v = c, u += d
# (v in mV, t in ms, u and I in mV/ms)
# --------------------------------------------------------------------------------------

def izhikevich_loop(a: float, b: float, c: float, d: float, current: Sequence[float], dt: float,
                    v0: float = -65.0, u0: float | None = None, v_peak: float = 30.0,
                    scheme: str = "izhikevich") -> tuple[list[int], list[float], list[float]]:
    """Izhikevich's own loop (``spnet.m`` / ``daspnet.m``) or forward Euler, one step of ``dt`` ms.

    Step ``n`` integrates from ``n dt`` to ``(n + 1) dt`` with the input ``current[n]``,
    then a neuron with ``v >= v_peak`` spikes (it is recorded at step ``n``) and is reset
    (``v = c``, ``u += d``). ``scheme="izhikevich"``: ``v`` in two half-steps of ``dt / 2``
    with ``u`` frozen, then ``u += dt a (b v - u)`` with the new ``v``. ``scheme="euler"``:
    forward Euler on ``(v, u)`` together.

    Returns
    -------
    spikes : list of int
        Steps at which the neuron spiked.
    v, u : list of float
        ``v`` and ``u`` after each step (after the reset of a spiking step).
    """
    v = v0
    u = b * v0 if u0 is None else u0
    spikes, vs, us = [], [], []
    for n, i_n in enumerate(current):
        if scheme == "izhikevich":
            h = 0.5 * dt
            v = v + h * (0.04 * v * v + 5.0 * v + 140.0 - u + i_n)
            v = v + h * (0.04 * v * v + 5.0 * v + 140.0 - u + i_n)
            u = u + dt * a * (b * v - u)
        else:
            dv = 0.04 * v * v + 5.0 * v + 140.0 - u + i_n
            du = a * (b * v - u)
            v, u = v + dt * dv, u + dt * du
        if v >= v_peak:
            spikes.append(n)
            v = c
            u = u + d
        vs.append(v)
        us.append(u)
    return spikes, vs, us


def izhikevich_fine(a: float, b: float, c: float, d: float, i_const: float, t_end: float,
                    v0: float = -65.0, u0: float | None = None, v_peak: float = 30.0,
                    h: float = 1e-4) -> list[float]:
    """Spike times (ms) of the Izhikevich neuron under a constant input, by RK4 with step ``h`` ms.

    A spike is the time at which ``v`` crosses ``v_peak`` (linear interpolation inside the step).
    """
    def f(v: float, u: float) -> tuple[float, float]:
        return 0.04 * v * v + 5.0 * v + 140.0 - u + i_const, a * (b * v - u)

    v = v0
    u = b * v0 if u0 is None else u0
    t, times = 0.0, []
    while t < t_end:
        k1 = f(v, u)
        k2 = f(v + 0.5 * h * k1[0], u + 0.5 * h * k1[1])
        k3 = f(v + 0.5 * h * k2[0], u + 0.5 * h * k2[1])
        k4 = f(v + h * k3[0], u + h * k3[1])
        v_new = v + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        u_new = u + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if v_new >= v_peak:
            times.append(t + h * (v_peak - v) / (v_new - v))
            v_new, u_new = c, u_new + d
        v, u = v_new, u_new
        t += h
    return times


# --------------------------------------------------------------------------------------
# AdEx (Brette & Gerstner 2005):
#   C dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T) - w + I
#   tau_w dw/dt = a (V - E_L) - w;   V > V_peak -> V = V_reset, w += b
# (V in mV, t in ms, C in pF, g_L and a in nS, w and I in pA: pA / pF = mV / ms)
# --------------------------------------------------------------------------------------

def adex_rhs(C: float, g_L: float, E_L: float, V_T: float, Delta_T: float, tau_w: float, a: float,
             i_const: float) -> Callable[[float, float], tuple[float, float]]:
    """The AdEx right-hand side ``(dV/dt, dw/dt)`` in mV/ms and pA/ms."""
    def f(V: float, w: float) -> tuple[float, float]:
        # the exponent is capped only for RK4's trial stages far beyond the cut-off (no effect below it)
        expo = g_L * Delta_T * math.exp(min((V - V_T) / Delta_T, 100.0))
        return (-g_L * (V - E_L) + expo - w + i_const) / C, (a * (V - E_L) - w) / tau_w
    return f


def adex_euler(params: dict, i_const: float, dt: float, n_steps: int) -> tuple[list[int], list[float], list[float]]:
    """Forward Euler (Brian2's ``method='euler'``) with step ``dt`` ms; spikes at ``V > V_peak``.

    Refractoriness: for ``t_ref`` ms after a spike ``V`` is held at ``V_reset`` while ``w``
    keeps integrating. Returns the spike steps and ``V``, ``w`` after each step.
    """
    f = adex_rhs(params["C"], params["g_L"], params["E_L"], params["V_T"], params["Delta_T"],
                 params["tau_w"], params["a"], i_const)
    V, w = params.get("V0", params["E_L"]), params.get("w0", 0.0)
    ref_steps = int(round(params.get("t_ref", 0.0) / dt))
    ref = 0
    spikes, Vs, ws = [], [], []
    for n in range(n_steps):
        dV, dw = f(V, w)
        if ref > 0:
            ref -= 1
            w = w + dt * dw
        else:
            V, w = V + dt * dV, w + dt * dw
            if V > params["V_peak"]:
                spikes.append(n)
                V, w = params["V_reset"], w + params["b"]
                ref = ref_steps
        Vs.append(V)
        ws.append(w)
    return spikes, Vs, ws


def adex_fine(params: dict, i_const: float, t_end: float, h: float = 1e-4) -> list[float]:
    """AdEx spike times (ms) by RK4 with step ``h`` ms (no refractory period)."""
    f = adex_rhs(params["C"], params["g_L"], params["E_L"], params["V_T"], params["Delta_T"],
                 params["tau_w"], params["a"], i_const)
    V, w = params.get("V0", params["E_L"]), params.get("w0", 0.0)
    t, times = 0.0, []
    peak = params["V_peak"]
    while t < t_end:
        k1 = f(V, w)
        V2 = V + 0.5 * h * k1[0]
        k2 = f(V2, w + 0.5 * h * k1[1])
        V3 = V + 0.5 * h * k2[0]
        k3 = f(V3, w + 0.5 * h * k2[1])
        V4 = V + h * k3[0]
        k4 = f(V4, w + h * k3[1])
        V_new = V + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        w_new = w + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if max(V2, V3, V4, V_new) > peak:      # the upswing crosses the cut-off within this step
            times.append(t + h)
            V_new, w_new = params["V_reset"], w + params["b"]
        V, w = V_new, w_new
        t += h
    return times


# --------------------------------------------------------------------------------------
# conductance LIF with a constant background current, no synaptic input:
#   C dv/dt = g_L (E_L - v) + I_bg  ->  v(t) = v_inf + (v0 - v_inf) exp(-t / tau),
#   v_inf = E_L + I_bg / g_L, tau = C / g_L
# --------------------------------------------------------------------------------------

def background_lif_spike_steps(E_L: float, v_th: float, v_reset: float, g_L: float, C: float, i_bg: float,
                               t_ref: float, dt: float, n_steps: int, scheme: str) -> list[int]:
    """Spike steps of the closed-form discrete solution of one scheme (SI units).

    Between spikes ``v_k - v_inf = (v_start - v_inf) q^k`` with ``q = 1 - dt/tau`` (Euler)
    or ``exp(-dt/tau)`` (exponential Euler); the first ``k`` with ``v_k > v_th`` is a
    spike, after which ``v`` is held at ``v_reset`` for ``round(t_ref/dt)`` steps.
    """
    tau = C / g_L
    v_inf = E_L + i_bg / g_L
    q = 1.0 - dt / tau if scheme == "euler" else math.exp(-dt / tau)
    ratio = (v_inf - v_th) / (v_inf - E_L)              # first interval starts at E_L
    k = math.floor(math.log(ratio) / math.log(q)) + 1    # smallest k with q^k < ratio
    out, step = [], k - 1
    ref = int(round(t_ref / dt))
    k_next = math.floor(math.log((v_inf - v_th) / (v_inf - v_reset)) / math.log(q)) + 1
    while step < n_steps:
        out.append(step)
        step += ref + k_next
    return out


# --------------------------------------------------------------------------------------
# plasticity: hand loops over the spike events of one synapse
# --------------------------------------------------------------------------------------

def istdp_loop(pre: Sequence[float], post: Sequence[float], w0: float, eta: float, tau: float, rho0: float,
               w_min: float, w_max: float) -> tuple[float, list[float]]:
    """Vogels et al. (2011) inhibitory STDP of one synapse (times in s).

    Traces ``x`` (pre) and ``y`` (post) jump by 1 and decay with ``tau``; a pre spike gives
    ``w += eta (y - alpha)``, ``alpha = 2 rho0 tau``, a post spike ``w += eta x``, clipped to
    ``[w_min, w_max]``. A pre and a post spike at the same time: pre first, with ``y``
    before the post jump; then the post update sees ``x`` after the pre jump.
    Returns the final weight and the weight delivered by each pre spike (after its update).
    """
    alpha = 2.0 * rho0 * tau
    events = sorted([(t, 0) for t in pre] + [(t, 1) for t in post])
    x = y = 0.0
    tx = ty = -1e9
    w, delivered = w0, []
    for t, kind in events:
        if kind == 0:
            y_now = y * math.exp(-(t - ty) / tau)
            w = min(max(w + eta * (y_now - alpha), w_min), w_max)
            delivered.append(w)
            x = x * math.exp(-(t - tx) / tau) + 1.0
            tx = t
        else:
            y = y * math.exp(-(t - ty) / tau) + 1.0
            ty = t
            x_now = x * math.exp(-(t - tx) / tau)
            w = min(max(w + eta * x_now, w_min), w_max)
    return w, delivered


def dopamine_eligibility_loop(pre: Sequence[float], post: Sequence[float], A_plus: float, A_minus: float,
                              tau_plus: float, tau_minus: float, tau_c: float, b: float, t_end: float,
                              w0: float, nearest: bool) -> float:
    """Final weight of one dopamine-STDP synapse with no dopamine events (times in s).

    ``dw/dt = c (n - b)`` with ``n = 0``: ``w`` grows by ``-b c0 tau_c (1 - exp(-D/tau_c))``
    over a gap ``D`` after eligibility ``c0``. Eligibility: ``c -= A_minus K_minus`` at a pre
    spike, ``c += A_plus K_plus`` at a post spike; the traces jump by 1 (all-to-all) or are
    set to 1 (``nearest=True``: Izhikevich's ``daspnet.m``, where a neuron's STDP trace is
    set to its amplitude at each spike). Same-time pre and post: pre first.
    """
    events = sorted([(t, 0) for t in pre] + [(t, 1) for t in post])
    kp = km = 0.0
    tp = tm = -1e9
    c, w, t_last = 0.0, w0, 0.0
    for t, kind in events + [(t_end, 2)]:
        gap = t - t_last
        w += -b * c * tau_c * (1.0 - math.exp(-gap / tau_c))
        c *= math.exp(-gap / tau_c)
        t_last = t
        if kind == 0:
            c -= A_minus * km * math.exp(-(t - tm) / tau_minus)
            kp = (1.0 if nearest else kp * math.exp(-(t - tp) / tau_plus) + 1.0)
            tp = t
        elif kind == 1:
            c += A_plus * kp * math.exp(-(t - tp) / tau_plus)
            km = (1.0 if nearest else km * math.exp(-(t - tm) / tau_minus) + 1.0)
            tm = t
    return w


def uniform_noise_moments(amplitude: float) -> tuple[float, float]:
    """Mean and variance of ``amplitude * (U - 0.5)``, ``U ~ U[0, 1)`` (Izhikevich's thalamic input)."""
    return 0.0, amplitude ** 2 / 12.0


def spike_steps(ds, population: str, dt: float, neuron: int = 0) -> np.ndarray:
    """Steps of the spikes of ``neuron`` of ``population`` in a result Dataset."""
    sel = (ds["spike_population"].values == population) & (ds["spike_neuron"].values == neuron)
    return np.rint(ds["spike_time"].values[sel] / dt).astype(np.int64)


def daspnet_rates(duration_ms: int, seed: int, n_exc: int = 800, n_inh: int = 200, fan_out: int = 100
                  ) -> tuple[float, float]:
    """Mean excitatory and inhibitory rates (Hz) of Izhikevich's ``daspnet.m`` network with frozen weights.

    His loop at 1 ms steps, vectorised: thalamic input ``13 (rand - 0.5)``; neurons with
    ``v >= 30`` are reset (``v = -65``, ``u += d``) and their synapses (weight 1 from
    excitatory, -1 from inhibitory neurons; targets as in his code) add to this step's
    input; then ``v`` advances in two 0.5 ms half steps and ``u`` in one 1 ms step.
    """
    rng = np.random.default_rng(seed)
    n = n_exc + n_inh
    targets = np.vstack([rng.integers(0, n, size=(n_exc, fan_out)), rng.integers(0, n_exc, size=(n_inh, fan_out))])
    s = np.r_[np.ones(n_exc), -np.ones(n_inh)]
    a = np.r_[np.full(n_exc, 0.02), np.full(n_inh, 0.1)]
    d = np.r_[np.full(n_exc, 8.0), np.full(n_inh, 2.0)]
    v = np.full(n, -65.0)
    u = 0.2 * v
    counts = np.zeros(n)
    for _ in range(duration_ms):
        current = 13.0 * (rng.random(n) - 0.5)
        fired = np.flatnonzero(v >= 30.0)
        v[fired] = -65.0
        u[fired] += d[fired]
        counts[fired] += 1
        current += np.bincount(targets[fired].ravel(), weights=np.repeat(s[fired], fan_out), minlength=n)
        v += 0.5 * ((0.04 * v + 5.0) * v + 140.0 - u + current)
        v += 0.5 * ((0.04 * v + 5.0) * v + 140.0 - u + current)
        u += a * (0.2 * v - u)
    rates = counts / (duration_ms * 1e-3)
    return float(rates[:n_exc].mean()), float(rates[n_exc:].mean())
