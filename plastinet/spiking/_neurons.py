"""State and integrators of the dynamic populations of the numpy engine.

Each class advances its population by one step (``update``: Brian2's ``groups`` slot),
finds spiking neurons (``threshold``), takes synaptic input (``receive``: ``synapses``
slot) and resets (``reset``: ``resets`` slot). Linear sub-threshold dynamics use exact
propagators; the conductance LIF uses Euler (as Brian2's ``method='euler'``) or
exponential Euler. ``state``/``load_state`` give the arrays a checkpoint holds. Each state
class is registered for its population type in :data:`plastinet.spiking.registry.POPULATIONS`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.signal import lfilter

from plastinet.spiking.guards import check_tau
from plastinet.spiking.network import LIF, ConductanceLIF, RateUnits
from plastinet.spiking.registry import POPULATIONS


def hold_refractory(state: Any, v_old: np.ndarray, v_new: np.ndarray) -> None:
    """Keep refractory neurons at ``v_old`` in the freshly integrated ``v_new`` and count their
    refractory steps down (``state.ref``; ``state._hold`` remembers who was held this step)."""
    if state.ref_steps:
        hold = state.ref > 0
        state._hold = hold
        if hold.any():
            v_new[hold] = v_old[hold]
            state.ref[hold] -= 1


def crossed(state: Any, level: float | np.ndarray) -> np.ndarray:
    """Indices of the neurons whose ``v`` is above ``level`` after the update, held ones excepted."""
    above = state.v > level
    if state._hold is not None:
        above &= ~state._hold
    return np.flatnonzero(above)


class LIFState:
    """Current-based LIF with exact integration."""

    spiking = True

    def __init__(self, pop: LIF, dt: float) -> None:
        for name in ("tau_m", "tau_e", "tau_i"):
            check_tau(f"LIF {pop.name!r}", name, getattr(pop, name), dt)
        n = pop.n
        self.v = np.full(n, pop.v_rest if pop.v_init is None else pop.v_init)
        self.I_e, self.I_i = np.zeros(n), np.zeros(n)
        self.ref = np.zeros(n, dtype=np.int64)
        self.ref_steps = int(round(pop.t_ref / dt))
        self.pm = math.exp(-dt / pop.tau_m)
        self.v_inf = pop.v_rest + pop.r_m * pop.i_ext
        self.v_th, self.v_reset = pop.v_thresh, pop.v_reset
        self.pe, self.pi = math.exp(-dt / pop.tau_e), math.exp(-dt / pop.tau_i)
        self.pve = self._coupling(pop.r_m, pop.tau_m, pop.tau_e, self.pe, dt)
        self.pvi = self._coupling(pop.r_m, pop.tau_m, pop.tau_i, self.pi, dt)
        self._hold: np.ndarray | None = None

    def _coupling(self, r: float, tm: float, ts: float, ps: float, dt: float) -> float:
        if abs(ts - tm) < 1e-12 * tm:
            return r * dt / tm * self.pm
        return r * ts / (ts - tm) * (ps - self.pm)

    def update(self) -> None:
        v_new = self.v_inf + (self.v - self.v_inf) * self.pm + self.pve * self.I_e + self.pvi * self.I_i
        hold_refractory(self, self.v, v_new)
        self.v = v_new
        self.I_e *= self.pe
        self.I_i *= self.pi

    def threshold(self) -> np.ndarray:
        return crossed(self, self.v_th)

    def receive(self, target: str, values: np.ndarray) -> None:
        getattr(self, target).__iadd__(values)

    def reset(self, idx: np.ndarray) -> None:
        self.v[idx] = self.v_reset
        if self.ref_steps:
            self.ref[idx] = self.ref_steps

    def get(self, var: str) -> np.ndarray:
        return getattr(self, var)

    def state(self) -> dict[str, np.ndarray]:
        """The mutable arrays (checkpoints)."""
        return {"v": self.v, "I_e": self.I_e, "I_i": self.I_i, "ref": self.ref}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            setattr(self, name, arr)

    def fast_chunk(self, K: int, incs: dict[str, np.ndarray]) -> int:
        """Single-neuron chunk in Python floats (same arithmetic as ``update``); returns k*."""
        ie_b = _before(self.I_e[0], self.pe, incs.get("I_e"), K)
        ii_b = _before(self.I_i[0], self.pi, incs.get("I_i"), K)
        v, v_inf, pm, pve, pvi, vth = float(self.v[0]), self.v_inf, self.pm, self.pve, self.pvi, self.v_th
        ref = int(self.ref[0])
        hold = False
        k = 0
        for k in range(K):
            hold = ref > 0
            if hold:
                ref -= 1
            else:
                v = v_inf + (v - v_inf) * pm + pve * ie_b[k] + pvi * ii_b[k]
                if v > vth:
                    break
        self.v[0], self.ref[0] = v, ref
        self.I_e[0], self.I_i[0] = ie_b[k] * self.pe, ii_b[k] * self.pi
        if self.ref_steps:
            self._hold = np.array([hold])
        return k


def _before(x0: float, c: float, inc: np.ndarray | None, K: int) -> list[float]:
    """Values of ``x`` entering the update of each of K steps: x_k = c x_{k-1} + inc_k."""
    if inc is None:
        out = [float(x0)]
        for _ in range(K - 1):
            out.append(out[-1] * c)
        return out
    after = lfilter([1.0], [1.0, -c], inc[:, 0], zi=[c * float(x0)])[0]
    return [float(x0)] + after[:-1].tolist()


class ConductanceLIFState:
    """Conductance-based LIF (Euler or exponential Euler)."""

    spiking = True

    def __init__(self, pop: ConductanceLIF, dt: float) -> None:
        factor = 2.0 if pop.method == "euler" else 1.0
        for name in ("tau_m", "tau_e", "tau_i"):
            check_tau(f"ConductanceLIF {pop.name!r}", name, getattr(pop, name), dt, factor)
        n = pop.n
        self.euler = pop.method == "euler"
        self.v = np.full(n, pop.E_l if pop.v_init is None else pop.v_init)
        self.g_e, self.g_i = np.zeros(n), np.zeros(n)
        self.ref = np.zeros(n, dtype=np.int64)
        self.ref_steps = int(round(pop.t_ref / dt))
        self.dt, self.tau_m = dt, pop.tau_m
        # the background current shifts the leak reversal: (E_l - v) + i_ext / g_l = (E_l + i_ext / g_l) - v
        # (exactly E_l when i_ext = 0)
        self.E_l, self.E_e, self.E_i = pop.E_l + pop.i_ext / pop.g_l, pop.E_e, pop.E_i
        self.v_th, self.v_reset = pop.v_thresh, pop.v_reset
        if self.euler:
            self.ce, self.ci = 1.0 - dt / pop.tau_e, 1.0 - dt / pop.tau_i
        else:
            self.ce, self.ci = math.exp(-dt / pop.tau_e), math.exp(-dt / pop.tau_i)
        self.k = dt / pop.tau_m
        self._hold: np.ndarray | None = None
        self._use_gi = False

    def update(self) -> None:
        v, ge = self.v, self.g_e
        if self.euler:
            if self._use_gi:
                gi = self.g_i
                v_new = v + self.k * (ge * (self.E_e - v) + gi * (self.E_i - v) + self.E_l - v)
            else:
                v_new = v + self.k * (ge * (self.E_e - v) + self.E_l - v)
        else:
            gi = self.g_i
            a = 1.0 + ge + gi
            v_inf = (ge * self.E_e + gi * self.E_i + self.E_l) / a
            v_new = v_inf + (v - v_inf) * np.exp(-self.k * a)
        hold_refractory(self, v, v_new)
        self.v = v_new
        ge *= self.ce
        if self._use_gi:
            self.g_i *= self.ci

    def threshold(self) -> np.ndarray:
        return crossed(self, self.v_th)

    def receive(self, target: str, values: np.ndarray) -> None:
        if target == "g_i":
            self._use_gi = True
        getattr(self, target).__iadd__(values)

    def reset(self, idx: np.ndarray) -> None:
        self.v[idx] = self.v_reset
        if self.ref_steps:
            self.ref[idx] = self.ref_steps

    def get(self, var: str) -> np.ndarray:
        return getattr(self, var)

    def state(self) -> dict[str, np.ndarray]:
        """The mutable arrays (checkpoints; ``use_gi``: whether ``g_i`` has received input)."""
        return {"v": self.v, "g_e": self.g_e, "g_i": self.g_i, "ref": self.ref,
                "use_gi": np.array(self._use_gi)}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            if name == "use_gi":
                self._use_gi = bool(arr)
            else:
                setattr(self, name, arr)

    def fast_chunk(self, K: int, incs: dict[str, np.ndarray]) -> int:
        """Single-neuron chunk in Python floats (same arithmetic as ``update``); returns k*."""
        gi_inc = incs.get("g_i")
        if gi_inc is not None:
            self._use_gi = True
        ge_b = _before(self.g_e[0], self.ce, incs.get("g_e"), K)
        use_gi = self._use_gi or not self.euler
        gi_b = _before(self.g_i[0], self.ci, gi_inc, K) if use_gi else None
        v, kk, El, Ee, Ei, vth = float(self.v[0]), self.k, self.E_l, self.E_e, self.E_i, self.v_th
        ref = int(self.ref[0])
        hold = False
        euler = self.euler
        k = 0
        for k in range(K):
            hold = ref > 0
            if hold:
                ref -= 1
                continue
            ge = ge_b[k]
            if euler:
                if use_gi:
                    gi = gi_b[k]
                    v = v + kk * (ge * (Ee - v) + gi * (Ei - v) + El - v)
                else:
                    v = v + kk * (ge * (Ee - v) + El - v)
            else:
                gi = gi_b[k]
                a = 1.0 + ge + gi
                vi = (ge * Ee + gi * Ei + El) / a
                v = vi + (v - vi) * float(np.exp(-kk * a))
            if v > vth:
                break
        self.v[0], self.ref[0] = v, ref
        self.g_e[0] = ge_b[k] * self.ce
        if use_gi:
            self.g_i[0] = gi_b[k] * self.ci
        if self.ref_steps:
            self._hold = np.array([hold])
        return k


class RateUnitsState:
    """Linear units: each input decays exactly with ``tau``; activity is their sum."""

    spiking = False

    def __init__(self, pop: RateUnits, dt: float) -> None:
        check_tau(f"RateUnits {pop.name!r}", "tau", pop.tau, dt)
        self.x = {t: np.zeros(pop.n) for t in pop.inputs}
        self.p = math.exp(-dt / pop.tau)
        self.tau = pop.tau

    def update(self) -> None:
        for arr in self.x.values():
            arr *= self.p

    def threshold(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    def receive(self, target: str, values: np.ndarray) -> None:
        self.x[target] += values

    def reset(self, idx: np.ndarray) -> None:
        pass

    def get(self, var: str) -> np.ndarray:
        if var == "rate":
            return sum(self.x.values())  # type: ignore[return-value]
        return self.x[var]

    def state(self) -> dict[str, np.ndarray]:
        """The mutable arrays (checkpoints)."""
        return {f"x.{target}": arr for target, arr in self.x.items()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            self.x[name[2:]] = arr


@POPULATIONS.register(LIF)
def _build_lif(pop: LIF, dt: float, seed_seq: np.random.SeedSequence) -> LIFState:
    return LIFState(pop, dt)


@POPULATIONS.register(ConductanceLIF)
def _build_conductance_lif(pop: ConductanceLIF, dt: float, seed_seq: np.random.SeedSequence) -> ConductanceLIFState:
    return ConductanceLIFState(pop, dt)


@POPULATIONS.register(RateUnits)
def _build_rate_units(pop: RateUnits, dt: float, seed_seq: np.random.SeedSequence) -> RateUnitsState:
    return RateUnitsState(pop, dt)
