"""Numpy-engine state of :class:`~plastinet.spiking.network.Izhikevich` neurons.

In SI (``v`` in V, ``u`` and ``I`` in V/s, ``a``, ``b`` in Hz):
``dv/dt = 4e4 v^2 + 5e3 v + 140 - u + I``, ``du/dt = a (b v - u)``. One engine step of
``dt`` (the ``groups`` slot) integrates with the input ``I`` collected in the previous
step, then clears it; neurons with ``v >= v_peak`` spike in that step (``thresholds``) and
are reset (``resets``: ``v = c``, ``u += d``). So a spike found in step ``n`` reaches its
targets' membranes in the update of step ``n + 1``, exactly as in Izhikevich's code
(``spnet.m``, ``daspnet.m``), whose loop detects, resets, delivers and then integrates.

Schemes: ``"euler"`` is forward Euler on ``(v, u)``; ``"half_steps"`` is Izhikevich's own:
two Euler half steps of ``dt / 2`` for ``v`` with ``u`` frozen, then one Euler step of
``dt`` for ``u`` using the new ``v``.
"""

from __future__ import annotations

import numpy as np

from plastinet.errors import RangeError
from plastinet.spiking.network import Izhikevich
from plastinet.spiking.registry import POPULATIONS

#: Coefficients of the quadratic membrane in SI: 0.04 /(mV ms) = 4e4 /(V s), 5 /ms = 5e3 /s, 140 mV/ms = 140 V/s.
K2, K1, K0 = 4e4, 5e3, 140.0


class IzhikevichState:
    """Izhikevich (2003) neurons, forward Euler or Izhikevich's half steps."""

    spiking = True
    #: Arrays saved in checkpoints and checked by the numerical guard.
    state_names = ("v", "u", "I")

    def __init__(self, pop: Izhikevich, dt: float) -> None:
        if pop.a * dt > 1.0:
            raise RangeError(f"Izhikevich {pop.name!r}", "a", pop.a,
                             f"the recovery rate a must be <= 1/dt = {1 / dt:g} Hz (dt={dt:g} s)")
        n = pop.n
        v0 = pop.c if pop.v_init is None else pop.v_init
        self.v = np.full(n, v0)
        self.u = np.full(n, pop.b * v0 if pop.u_init is None else pop.u_init)
        self.I = np.zeros(n)
        self.dt = dt
        self.a, self.b, self.c, self.d, self.v_peak = pop.a, pop.b, pop.c, pop.d, pop.v_peak
        self.half_steps = pop.method == "half_steps"

    def update(self) -> None:
        v, u, I, dt = self.v, self.u, self.I, self.dt
        if self.half_steps:
            h = 0.5 * dt
            v = v + h * ((K2 * v + K1) * v + K0 - u + I)
            v = v + h * ((K2 * v + K1) * v + K0 - u + I)
            u = u + dt * (self.a * (self.b * v - u))
        else:
            dv = (K2 * v + K1) * v + K0 - u + I
            u = u + dt * (self.a * (self.b * v - u))
            v = v + dt * dv
        self.v, self.u = v, u
        I.fill(0.0)

    def threshold(self) -> np.ndarray:
        return np.flatnonzero(self.v >= self.v_peak)

    def receive(self, target: str, values: np.ndarray) -> None:
        """A weight ``w`` (V) delivered in a step adds ``w / dt`` (V/s) to the next update's input."""
        self.I += values / self.dt

    def reset(self, idx: np.ndarray) -> None:
        self.v[idx] = self.c
        self.u[idx] += self.d

    def get(self, var: str) -> np.ndarray:
        return getattr(self, var)

    def state(self) -> dict[str, np.ndarray]:
        """The mutable arrays (checkpoints, numerical guard)."""
        return {name: getattr(self, name) for name in ("v", "u", "I")}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            setattr(self, name, arr)


@POPULATIONS.register(Izhikevich)
def _build(pop: Izhikevich, dt: float, seed_seq: np.random.SeedSequence) -> IzhikevichState:
    return IzhikevichState(pop, dt)
