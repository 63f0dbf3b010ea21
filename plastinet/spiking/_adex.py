"""Numpy-engine state of :class:`~plastinet.spiking.network.AdEx` neurons (Brette & Gerstner 2005).

``C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T) / Delta_T) - w + I_e + I_i + i_ext``,
``tau_w dw/dt = a (v - E_L) - w``, exponential synaptic currents ``I_e``, ``I_i``. Every
variable advances by forward Euler from the values at the start of the step (Brian2's
``method='euler'``); ``v`` is held at ``V_reset`` during the refractory period while ``w``
and the currents keep evolving. A spike is ``v > V_peak`` after the update.
"""

from __future__ import annotations

import numpy as np

from plastinet.spiking._neurons import check_tau, crossed, hold_refractory
from plastinet.spiking.network import AdEx
from plastinet.spiking.registry import POPULATIONS


class AdExState:
    """Adaptive exponential integrate-and-fire neurons, forward Euler."""

    spiking = True
    #: Arrays saved in checkpoints and checked by the numerical guard.
    state_names = ("v", "w", "I_e", "I_i", "ref")

    def __init__(self, pop: AdEx, dt: float) -> None:
        owner = f"AdEx {pop.name!r}"
        # forward Euler on a linear decay is stable for dt < 2 tau
        for name, tau in (("tau_w", pop.tau_w), ("tau_e", pop.tau_e), ("tau_i", pop.tau_i),
                          ("C / g_L", pop.C / pop.g_L)):
            check_tau(owner, name, tau, dt, 2.0)
        n = pop.n
        self.v = np.full(n, pop.E_L if pop.v_init is None else pop.v_init)
        self.w = np.full(n, pop.w_init)
        self.I_e, self.I_i = np.zeros(n), np.zeros(n)
        self.ref = np.zeros(n, dtype=np.int64)
        self.ref_steps = int(round(pop.t_ref / dt))
        self.k_v, self.k_w = dt / pop.C, dt / pop.tau_w
        self.g_L, self.E_L, self.V_T, self.Delta_T = pop.g_L, pop.E_L, pop.V_T, pop.Delta_T
        self.a, self.b, self.i_ext = pop.a, pop.b, pop.i_ext
        self.V_reset, self.V_peak = pop.V_reset, pop.V_peak
        self.ce, self.ci = 1.0 - dt / pop.tau_e, 1.0 - dt / pop.tau_i
        self._hold: np.ndarray | None = None

    def update(self) -> None:
        v, w = self.v, self.w
        spike_current = self.g_L * self.Delta_T * np.exp((v - self.V_T) / self.Delta_T)
        dv = -self.g_L * (v - self.E_L) + spike_current - w + self.I_e + self.I_i + self.i_ext
        v_new = v + self.k_v * dv
        self.w = w + self.k_w * (self.a * (v - self.E_L) - w)
        hold_refractory(self, v, v_new)
        self.v = v_new
        self.I_e *= self.ce
        self.I_i *= self.ci

    def threshold(self) -> np.ndarray:
        return crossed(self, self.V_peak)

    def receive(self, target: str, values: np.ndarray) -> None:
        getattr(self, target).__iadd__(values)

    def reset(self, idx: np.ndarray) -> None:
        self.v[idx] = self.V_reset
        self.w[idx] += self.b
        if self.ref_steps:
            self.ref[idx] = self.ref_steps

    def get(self, var: str) -> np.ndarray:
        return getattr(self, var)

    def state(self) -> dict[str, np.ndarray]:
        """The mutable arrays (checkpoints, numerical guard)."""
        return {name: getattr(self, name) for name in ("v", "w", "I_e", "I_i", "ref")}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            setattr(self, name, arr)


@POPULATIONS.register(AdEx)
def _build(pop: AdEx, dt: float, seed_seq: np.random.SeedSequence) -> AdExState:
    return AdExState(pop, dt)
