"""Specification of spiking networks: populations, projections, modulators, probes.

Everything here is *data*: validated parameters in SI units and no maths. The numpy engine
(:mod:`plastinet.spiking.engine`) and the brian2 backend lower the same objects. Every
object has a ``name`` (a Python identifier) by which results and other objects refer to it.

Populations
    :class:`PoissonGroup` (constant, per-neuron or piecewise-constant rates),
    :class:`SpikeGenerator` (explicit spike times), :class:`LIF` (current-based),
    :class:`ConductanceLIF` (conductance-based, Song et al. 2000 form, with an optional
    background current), :class:`Izhikevich` (2003), :class:`AdEx` (Brette & Gerstner 2005)
    and :class:`RateUnits` (non-spiking linear units with low-pass filtered inputs).
Projections
    :class:`Projection`: all-to-all, fixed probability or explicit index lists; initial
    weights constant, per synapse, dense matrix or uniform random; weight bounds; a
    long-term plasticity rule (:mod:`plastinet.spiking.rules`) and optional short-term
    plasticity (:class:`~plastinet.spiking.rules.TsodyksMarkram`); synaptic delays.
Noise
    :class:`NoiseCurrent`: a fresh random input per neuron and time step.
Modulators
    :class:`ProgrammedSignal` (piecewise-constant m(t)), :class:`SpikeSignal` (a
    concentration driven by spikes and rewards, NEST's volume transmitter) and
    :class:`CoincidenceReward` (Izhikevich 2007's delayed reward).
Probes
    :class:`SpikeProbe`, :class:`StateProbe`, :class:`WeightProbe`,
    :class:`ModulatorProbe`.
"""

from __future__ import annotations

import keyword
from typing import Any, ClassVar, Iterable

import numpy as np

from plastinet.errors import RangeError, ShapeError, UnsupportedError, ValidationError
from plastinet.params import Parameter, Spec
from plastinet.spiking.rules import SpikeRule, TsodyksMarkram
from plastinet.units import to_si

__all__ = [
    "Population", "PoissonGroup", "SpikeGenerator", "LIF", "ConductanceLIF", "Izhikevich", "AdEx",
    "RateUnits", "Projection", "Modulator", "NoiseCurrent", "ProgrammedSignal", "SpikeSignal", "CoincidenceReward",
    "Probe", "SpikeProbe", "StateProbe", "WeightProbe", "ModulatorProbe", "Network",
]


# --------------------------------------------------------------------------------------
# converters used by array-valued parameters
# --------------------------------------------------------------------------------------

def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise ValidationError("spiking spec", "name", value,
                              "expected a Python identifier such as 'inputs' or 'post'")
    return value


def _name_parameter() -> Parameter:
    return Parameter(convert=_name, doc="name of the object (a Python identifier)")


def _float_array(value: Any, owner: str, name: str, unit: str = "1") -> np.ndarray:
    """``value`` (number, sequence, array, or array of quantities) as a read-only float64 array."""
    if isinstance(value, str) or hasattr(value, "dim") or hasattr(value, "magnitude"):
        value = to_si(value, unit, name=name, owner=owner)
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(owner, name, value, f"expected a number or an array of numbers in {unit}") from None
    if not np.all(np.isfinite(arr)):
        raise RangeError(owner, name, value, "all entries must be finite")
    arr.setflags(write=False)
    return arr


# --------------------------------------------------------------------------------------
# populations
# --------------------------------------------------------------------------------------

class Population(Spec):
    """Base class of populations: ``n`` neurons named ``name``.

    Class attributes describe the population for the engines: ``spiking`` (emits spikes),
    ``source`` (its spikes do not depend on the network: Poisson, generators),
    ``targets`` (the input variables projections can increment; sources have the single
    target ``"none"``, for plasticity-only projections that transmit nothing) and ``variables`` (the
    state variables a :class:`StateProbe` can record, with their units).
    """

    spiking: ClassVar[bool] = True
    source: ClassVar[bool] = False
    targets: ClassVar[tuple[str, ...]] = ()
    variables: ClassVar[dict[str, str]] = {}

    name = _name_parameter()
    n = Parameter(1, low=1, integer=True, doc="number of neurons")


def _rates(value: Any) -> np.ndarray:
    arr = _float_array(value, "PoissonGroup", "rate", "Hz")
    if arr.ndim > 2:
        raise ShapeError("PoissonGroup", "rate", arr,
                         "expected a scalar, an array (n,) or a schedule (n_segments, n)")
    if arr.size and arr.min() < 0:
        raise RangeError("PoissonGroup", "rate", value, f"rates must be >= 0 Hz; found {arr.min():g}")
    return arr


class PoissonGroup(Population):
    """Independent Poisson (Bernoulli-per-step) spike sources.

    In each time step of length ``dt`` neuron ``i`` spikes with probability
    ``rate_i(t) * dt`` (Brian2's ``PoissonGroup`` definition), so ``rate * dt <= 1`` is
    required.

    Parameters
    ----------
    name : str
        Population name.
    n : int
        Number of neurons.
    rate : float, array (n,) or array (n_segments, n)
        Firing rate(s) in Hz. A 2-D array is a piecewise-constant schedule: row ``s``
        holds during ``[s * rate_interval, (s + 1) * rate_interval)``; the last row holds
        afterwards.
    rate_interval : float
        Duration of one schedule row in s (must be a multiple of ``dt``).
    """

    source = True
    targets = ("none",)

    rate = Parameter(0.0, convert=_rates, doc="rate in Hz: scalar, (n,) or (n_segments, n)")
    rate_interval = Parameter(1.0, unit="s", low=0.0, low_open=True,
                              doc="duration of one row of a rate schedule (s)")

    def _check(self) -> None:
        r = self.rate
        if r.ndim >= 1 and r.shape[-1] != self.n:
            raise ShapeError("PoissonGroup", "rate", r,
                             f"last axis has {r.shape[-1]} entries but the population {self.name!r} "
                             f"has n={self.n} neurons")

    def rate_schedule(self) -> np.ndarray:
        """The rates as an array ``(n_segments, n)`` in Hz."""
        r = self.rate
        if r.ndim == 0:
            return np.full((1, self.n), float(r))
        return r.reshape(-1, self.n)


class SpikeGenerator(Population):
    """Neurons that spike at given times.

    Parameters
    ----------
    name : str
        Population name.
    n : int
        Number of neurons.
    indices : array of int
        Neuron index of each spike.
    times : array of float
        Spike times in s (same length as ``indices``). Two spikes of one neuron must not
        fall in the same time step.
    """

    source = True
    targets = ("none",)

    indices = Parameter((), convert=lambda v: _int_array(v, "SpikeGenerator", "indices"),
                        doc="neuron index of each spike")
    times = Parameter((), convert=lambda v: _float_array(v, "SpikeGenerator", "times", "s"),
                      doc="spike times (s)")

    def _check(self) -> None:
        if self.indices.shape != self.times.reshape(-1).shape:
            raise ShapeError("SpikeGenerator", "times", self.times,
                             f"got {self.times.size} times for {self.indices.size} indices")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self.n):
            raise RangeError("SpikeGenerator", "indices", self.indices,
                             f"indices must lie in [0, {self.n - 1}] for {self.name!r}")
        if self.times.size and self.times.min() < 0:
            raise RangeError("SpikeGenerator", "times", self.times, "spike times must be >= 0 s")


def _int_array(value: Any, owner: str, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValidationError(owner, name, value, "expected an array of integers")
    arr = arr.astype(np.int64).reshape(-1)
    arr.setflags(write=False)
    return arr


class LIF(Population):
    """Current-based leaky integrate-and-fire neurons with exponential synaptic currents.

    ``tau_m dv/dt = (v_rest - v) + r_m (I_e + I_i + i_ext)``,
    ``dI_e/dt = -I_e / tau_e``, ``dI_i/dt = -I_i / tau_i``; a spike when ``v > v_thresh``
    (not refractory), then ``v = v_reset`` and ``v`` is clamped during ``t_ref``.
    Sub-threshold dynamics are linear and integrated exactly (Rotter & Diesmann 1999).
    Projections onto target ``"I_e"`` or ``"I_i"`` add their weight (A) on a spike.

    Parameters
    ----------
    name : str
    n : int
    tau_m : float
        Membrane time constant (s).
    v_rest, v_thresh, v_reset : float
        Resting, threshold and reset potentials (V).
    r_m : float
        Membrane resistance (ohm).
    tau_e, tau_i : float
        Synaptic current time constants (s).
    t_ref : float
        Refractory period (s).
    i_ext : float
        Constant external current (A).
    v_init : float or None
        Initial potential (V); ``None`` means ``v_rest``.
    """

    targets = ("I_e", "I_i")
    variables = {"v": "V", "I_e": "A", "I_i": "A"}

    tau_m = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="membrane time constant (s)")
    v_rest = Parameter(-0.070, unit="V", doc="resting potential (V)")
    v_thresh = Parameter(-0.050, unit="V", doc="threshold (V)")
    v_reset = Parameter(-0.060, unit="V", doc="reset potential (V)")
    r_m = Parameter(1e8, unit="ohm", low=0.0, low_open=True, doc="membrane resistance (ohm)")
    tau_e = Parameter(0.005, unit="s", low=0.0, low_open=True, doc="excitatory current time constant (s)")
    tau_i = Parameter(0.010, unit="s", low=0.0, low_open=True, doc="inhibitory current time constant (s)")
    t_ref = Parameter(0.002, unit="s", low=0.0, doc="refractory period (s)")
    i_ext = Parameter(0.0, unit="A", doc="constant external current (A)")
    v_init = Parameter(None, unit="V", allow_none=True, doc="initial potential (V); None: v_rest")

    def _check(self) -> None:
        if self.v_reset >= self.v_thresh:
            raise RangeError("LIF", "v_reset", self.v_reset,
                             f"must be below v_thresh={self.v_thresh:g} V")


class ConductanceLIF(Population):
    """Conductance-based LIF neurons (Song, Miller & Abbott 2000; Brian2's STDP example).

    ``tau_m dv/dt = g_e (E_e - v) + g_i (E_i - v) + (E_l - v) + i_ext / g_l``,
    ``dg_e/dt = -g_e/tau_e``, ``dg_i/dt = -g_i/tau_i``; conductances in units of the leak
    conductance ``g_l`` (dimensionless); targets ``"g_e"`` and ``"g_i"``. The membrane
    capacitance is ``C = g_l tau_m``; ``g_l`` matters only for the constant background
    current ``i_ext`` (Vogels et al. 2011: ``g_l = 10 nS``, ``tau_m = 20 ms``,
    ``i_ext = 200 pA``, ``E_i = -80 mV``; a conductance of ``3 nS`` is ``0.3`` here).
    ``method="euler"`` is forward Euler on ``(v, g_e, g_i)`` exactly as Brian2's
    ``method='euler'``; ``"exponential_euler"`` integrates the conductances exactly and ``v``
    with the conductances (and ``i_ext``) frozen over a step.

    Parameters
    ----------
    name : str
    n : int
    tau_m : float
        Membrane time constant (s).
    E_l, v_thresh, v_reset, E_e, E_i : float
        Leak reversal, threshold, reset, excitatory and inhibitory reversal potentials (V).
    tau_e, tau_i : float
        Conductance time constants (s).
    t_ref : float
        Refractory period (s).
    method : {"euler", "exponential_euler"}
    v_init : float or None
        Initial potential (V); ``None`` means ``E_l``.
    g_l : float
        Leak conductance (S), the unit of ``g_e`` and ``g_i``.
    i_ext : float
        Constant background current (A); 0 (the default) leaves the equation as above
        without the term.
    """

    targets = ("g_e", "g_i")
    variables = {"v": "V", "g_e": "1", "g_i": "1"}

    tau_m = Parameter(0.010, unit="s", low=0.0, low_open=True, doc="membrane time constant (s)")
    E_l = Parameter(-0.074, unit="V", doc="leak reversal potential (V)")
    v_thresh = Parameter(-0.054, unit="V", doc="threshold (V)")
    v_reset = Parameter(-0.060, unit="V", doc="reset potential (V)")
    E_e = Parameter(0.0, unit="V", doc="excitatory reversal potential (V)")
    E_i = Parameter(-0.080, unit="V", doc="inhibitory reversal potential (V)")
    tau_e = Parameter(0.005, unit="s", low=0.0, low_open=True, doc="excitatory conductance time constant (s)")
    tau_i = Parameter(0.010, unit="s", low=0.0, low_open=True, doc="inhibitory conductance time constant (s)")
    t_ref = Parameter(0.0, unit="s", low=0.0, doc="refractory period (s)")
    method = Parameter("exponential_euler", choices=("euler", "exponential_euler"),
                       doc="integration method")
    v_init = Parameter(None, unit="V", allow_none=True, doc="initial potential (V); None: E_l")
    g_l = Parameter(1e-8, unit="S", low=0.0, low_open=True, doc="leak conductance (S), unit of g_e and g_i")
    i_ext = Parameter(0.0, unit="A", doc="constant background current (A)")

    def _check(self) -> None:
        if self.v_reset >= self.v_thresh:
            raise RangeError("ConductanceLIF", "v_reset", self.v_reset,
                             f"must be below v_thresh={self.v_thresh:g} V")


class Izhikevich(Population):
    """Izhikevich (2003) neurons: a quadratic membrane with a recovery variable.

    In Izhikevich's units (mV, ms) ``dv/dt = 0.04 v^2 + 5 v + 140 - u + I`` and
    ``du/dt = a (b v - u)``; when ``v >= v_peak`` (30 mV): ``v = c``, ``u += d``. Here in SI:
    ``v`` in V, ``u`` and ``I`` in V/s (mV/ms = V/s), ``a`` and ``b`` in Hz (1/ms = 1000 Hz),
    ``c`` in V and ``d`` in V/s, so ``dv/dt = 4e4 v^2 + 5e3 v + 140 - u + I`` (V/s). The
    published values can be given as unit strings: ``a="0.02/ms"``, ``b="0.2/ms"``,
    ``c="-65 mV"``, ``d="8 mV/ms"`` (regular spiking; fast spiking: ``a="0.1/ms"``,
    ``d="2 mV/ms"``).

    A step of length ``dt`` integrates with the input ``I`` collected in the previous step
    (then clears it); the neurons with ``v >= v_peak`` spike in that step and are reset
    (``v = c``, ``u += d``), in the engines' usual order (update, threshold, synapses,
    reset). A spike found in step ``n`` therefore moves its targets' ``v`` in the update of
    step ``n + 1``: Izhikevich's loop (detect, reset, deliver, integrate) is the same
    sequence, and his code dates that spike one step later (at ``n + 1``). Schemes:

    ``method="euler"``
        Forward Euler: ``v' = v + dt f(v, u, I)``, ``u' = u + dt a (b v - u)`` (old ``v``).
    ``method="half_steps"``
        Izhikevich's own scheme (``spnet.m``, ``daspnet.m``): two Euler half steps of
        ``dt / 2`` for ``v`` (the second from the first's result), then one Euler step of
        ``dt`` for ``u`` with the new ``v``. At ``dt = 1 ms`` this reproduces his code.

    Input: target ``"I"``. ``I`` is the input of one update (V/s), cleared after it. A
    spike of weight ``w`` (V) delivered in a step adds ``w / dt`` to the ``I`` of the next
    update (so it moves ``v`` by ``w`` to first order); a :class:`NoiseCurrent` draw ``x``
    (V) does the same. At ``dt = 1 ms`` a weight of 6 mV is Izhikevich's synaptic weight
    ``s = 6`` and a draw of ``13 (rand - 0.5)`` mV is his thalamic input.

    Parameters
    ----------
    name : str
    n : int
    a : float
        Recovery rate (Hz).
    b : float
        Sensitivity of ``u`` to ``v`` (Hz).
    c : float
        Reset potential (V).
    d : float
        Jump of ``u`` at a spike (V/s).
    v_peak : float
        Spike cut-off (V).
    v_init : float or None
        Initial potential (V); ``None`` means ``c`` (Izhikevich's code starts at -65 mV,
        the reset of both of his cell types).
    u_init : float or None
        Initial recovery variable (V/s); ``None`` means ``b * v_init``.
    method : {"euler", "half_steps"}
        Integration scheme (see above).
    """

    targets = ("I",)
    variables = {"v": "V", "u": "V/s"}

    a = Parameter(20.0, unit="Hz", low=0.0, low_open=True, doc="recovery rate (Hz)")
    b = Parameter(200.0, unit="Hz", doc="sensitivity of u to v (Hz)")
    c = Parameter(-0.065, unit="V", doc="reset potential (V)")
    d = Parameter(8.0, unit="V/s", doc="jump of u at a spike (V/s)")
    v_peak = Parameter(0.030, unit="V", doc="spike cut-off (V)")
    v_init = Parameter(None, unit="V", allow_none=True, doc="initial potential (V); None: c")
    u_init = Parameter(None, unit="V/s", allow_none=True, doc="initial recovery variable (V/s); None: b v_init")
    method = Parameter("euler", choices=("euler", "half_steps"), doc="integration scheme")

    def _check(self) -> None:
        if self.c >= self.v_peak:
            raise RangeError("Izhikevich", "c", self.c, f"the reset must lie below v_peak={self.v_peak:g} V")
        if self.v_init is not None and self.v_init >= self.v_peak:
            raise RangeError("Izhikevich", "v_init", self.v_init, f"must lie below v_peak={self.v_peak:g} V")


class AdEx(Population):
    """Adaptive exponential integrate-and-fire neurons (Brette & Gerstner 2005).

    ``C dv/dt = -g_L (v - E_L) + g_L Delta_T exp((v - V_T) / Delta_T) - w + I_e + I_i + i_ext``,
    ``tau_w dw/dt = a (v - E_L) - w``, ``dI_e/dt = -I_e / tau_e``, ``dI_i/dt = -I_i / tau_i``;
    when ``v > V_peak`` (not refractory): a spike, ``v = V_reset``, ``w += b``, and ``v`` is
    held at ``V_reset`` during ``t_ref`` (``w`` keeps evolving). Input is current-based, as in
    :class:`LIF`: projections onto target ``"I_e"`` or ``"I_i"`` add their weight (A) on a
    spike. All variables are integrated by forward Euler (Brian2's ``method='euler'``). The
    defaults are the paper's (Table 1: a regular-spiking pyramidal cell); Brian2's example
    cuts spikes at ``V_peak = V_T + 5 Delta_T`` instead of 20 mV.

    Parameters
    ----------
    name : str
    n : int
    C : float
        Membrane capacitance (F).
    g_L : float
        Leak conductance (S).
    E_L : float
        Leak reversal potential (V).
    V_T : float
        Threshold slope factor's centre: the rheobase threshold (V).
    Delta_T : float
        Slope factor (V).
    tau_w : float
        Adaptation time constant (s).
    a : float
        Sub-threshold adaptation (S).
    b : float
        Spike-triggered adaptation (A).
    V_reset : float
        Reset potential (V).
    V_peak : float
        Spike cut-off (V).
    t_ref : float
        Refractory period (s).
    tau_e, tau_i : float
        Synaptic current time constants (s).
    i_ext : float
        Constant external current (A).
    v_init : float or None
        Initial potential (V); ``None`` means ``E_L``.
    w_init : float
        Initial adaptation current (A).
    """

    targets = ("I_e", "I_i")
    variables = {"v": "V", "w": "A", "I_e": "A", "I_i": "A"}

    C = Parameter(281e-12, unit="F", low=0.0, low_open=True, doc="membrane capacitance (F)")
    g_L = Parameter(30e-9, unit="S", low=0.0, low_open=True, doc="leak conductance (S)")
    E_L = Parameter(-0.0706, unit="V", doc="leak reversal potential (V)")
    V_T = Parameter(-0.0504, unit="V", doc="rheobase threshold (V)")
    Delta_T = Parameter(0.002, unit="V", low=0.0, low_open=True, doc="slope factor (V)")
    tau_w = Parameter(0.144, unit="s", low=0.0, low_open=True, doc="adaptation time constant (s)")
    a = Parameter(4e-9, unit="S", doc="sub-threshold adaptation (S)")
    b = Parameter(0.0805e-9, unit="A", doc="spike-triggered adaptation (A)")
    V_reset = Parameter(-0.0706, unit="V", doc="reset potential (V)")
    V_peak = Parameter(0.020, unit="V", doc="spike cut-off (V)")
    t_ref = Parameter(0.0, unit="s", low=0.0, doc="refractory period (s)")
    tau_e = Parameter(0.005, unit="s", low=0.0, low_open=True, doc="excitatory current time constant (s)")
    tau_i = Parameter(0.010, unit="s", low=0.0, low_open=True, doc="inhibitory current time constant (s)")
    i_ext = Parameter(0.0, unit="A", doc="constant external current (A)")
    v_init = Parameter(None, unit="V", allow_none=True, doc="initial potential (V); None: E_L")
    w_init = Parameter(0.0, unit="A", doc="initial adaptation current (A)")

    def _check(self) -> None:
        if self.V_reset >= self.V_peak:
            raise RangeError("AdEx", "V_reset", self.V_reset, f"must lie below V_peak={self.V_peak:g} V")
        if self.V_T >= self.V_peak:
            raise RangeError("AdEx", "V_T", self.V_T, f"must lie below V_peak={self.V_peak:g} V")
        if self.v_init is not None and self.v_init >= self.V_peak:
            raise RangeError("AdEx", "v_init", self.v_init, f"must lie below V_peak={self.V_peak:g} V")


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out = tuple(_name(v) for v in value)
    if not out or len(set(out)) != len(out):
        raise ValidationError("RateUnits", "targets", value, "expected distinct identifiers")
    return out


class RateUnits(Population):
    """Non-spiking linear units: one low-pass filtered input per target.

    Each target ``x`` obeys ``dx/dt = -x / tau`` and a presynaptic spike adds ``w / tau``,
    so a constant presynaptic rate ``r`` gives ``<x> = w r``. The activity of unit ``i``
    is ``r_i = sum over targets of x_i``. State variables are named after the targets.

    Parameters
    ----------
    name : str
    n : int
    tau : float
        Filter time constant (s).
    targets : tuple of str
        Names of the input variables (default ``("soma", "dend")``).
    """

    spiking = False
    tau = Parameter(0.01, unit="s", low=0.0, low_open=True, doc="input filter time constant (s)")
    inputs = Parameter(("soma", "dend"), convert=_names, doc="names of the filtered inputs")

    @property
    def targets(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inputs

    @property
    def variables(self) -> dict[str, str]:  # type: ignore[override]
        return {**{t: "1" for t in self.inputs}, "rate": "1"}


# --------------------------------------------------------------------------------------
# projections
# --------------------------------------------------------------------------------------

def _population(value: Any) -> Population:
    if not isinstance(value, Population):
        raise ValidationError("Projection", "pre/post", value, "expected a Population object")
    return value


def _connectivity(value: Any) -> Any:
    if isinstance(value, str):
        if value != "all":
            raise UnsupportedError("Projection", "connectivity", value,
                                   "expected 'all', a probability in (0, 1], or (pre_indices, post_indices)")
        return "all"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        p = float(value)
        if not 0.0 < p <= 1.0:
            raise RangeError("Projection", "connectivity", value, "a connection probability must lie in (0, 1]")
        return p
    if isinstance(value, (tuple, list)) and len(value) == 2:
        i = _int_array(value[0], "Projection", "connectivity")
        j = _int_array(value[1], "Projection", "connectivity")
        if i.shape != j.shape:
            raise ShapeError("Projection", "connectivity", value,
                             f"pre and post index lists differ in length ({i.size} vs {j.size})")
        return (i, j)
    raise ValidationError("Projection", "connectivity", value,
                          "expected 'all', a probability in (0, 1], or (pre_indices, post_indices)")


def _weight(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "uniform":
        lo, hi = float(value[1]), float(value[2])
        if not lo <= hi:
            raise RangeError("Projection", "weight", value, "uniform bounds need low <= high")
        return ("uniform", lo, hi)
    return _float_array(value, "Projection", "weight")


def _delay(value: Any) -> Any:
    if isinstance(value, (tuple, list)) and len(value) == 3 and isinstance(value[0], str):
        if value[0] != "uniform":
            raise UnsupportedError("Projection", "delay", value,
                                   "expected seconds: a number, a per-synapse array or ('uniform', low, high)")
        lo, hi = (to_si(v, "s", name="delay", owner="Projection") for v in value[1:])
        if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 <= lo <= hi):
            raise RangeError("Projection", "delay", value, "uniform delays need 0 s <= low <= high (finite)")
        return ("uniform", lo, hi)
    arr = _float_array(value, "Projection", "delay", "s")
    if arr.size and arr.min() < 0:
        raise RangeError("Projection", "delay", value, f"delays must be >= 0 s; found {arr.min():g}")
    return float(arr) if arr.ndim == 0 else arr


def _rule(value: Any) -> Any:
    if value is None or isinstance(value, SpikeRule):
        return value
    raise ValidationError("Projection", "rule", value, "expected a spike rule object or None")


def _stp(value: Any) -> Any:
    if value is None or isinstance(value, TsodyksMarkram):
        return value
    raise ValidationError("Projection", "stp", value, "expected a TsodyksMarkram object or None")


class Projection(Spec):
    """Synapses from ``pre`` to ``post``.

    A presynaptic spike adds ``w`` (times the short-term plasticity factor, if any) to
    the post population's input variable ``target``. Synapses are stored sparsely in every
    case (``connectivity="all"`` is the dense special case); work per spike is the fan-out.

    Parameters
    ----------
    name : str
    pre, post : Population
    target : str
        Input variable of ``post`` (``"g_e"``, ``"I_e"``, ``"dend"``...).
    weight : float, array (n_syn,), array (post.n, pre.n) or ("uniform", low, high)
        Initial weights, in the unit of ``target`` (dense matrices only with
        ``connectivity="all"``; rows post, columns pre).
    connectivity : "all", float or (pre_indices, post_indices)
        All-to-all, fixed connection probability, or explicit index lists.
    w_min, w_max : float
        Weight bounds (initial weights must lie inside; plastic rules clip to them).
    rule : SpikeRule or None
        Long-term plasticity rule.
    stp : TsodyksMarkram or None
        Short-term plasticity of the transmitted efficacy.
    delay : float, array (n_syn,), array (post.n, pre.n) or ("uniform", low, high)
        Synaptic delay in s: one for all synapses, one per synapse (shapes as for
        ``weight``), or drawn per synapse uniformly from ``[low, high]``. Engines round it
        to whole time steps (``round(delay / dt)``, halves up; never below 0 steps). A pre
        spike at step ``n`` reaches the post population, and the synapse's presynaptic
        side of plasticity (and short-term plasticity), at step ``n + d`` (Brian2's
        ``Synapses(..., delay=...)`` on the pre pathway); postsynaptic updates are not
        delayed. 0 (the default) delivers in the spike's own step.
    """

    name = _name_parameter()
    pre = Parameter(convert=_population, doc="presynaptic population")
    post = Parameter(convert=_population, doc="postsynaptic population")
    target = Parameter(convert=_name, doc="input variable of the post population")
    weight = Parameter(0.0, convert=_weight, doc="initial weights")
    connectivity = Parameter("all", convert=_connectivity, doc="connectivity")
    w_min = Parameter(-np.inf, unit=None, convert=lambda v: float(v), doc="lower weight bound")
    w_max = Parameter(np.inf, unit=None, convert=lambda v: float(v), doc="upper weight bound")
    rule = Parameter(None, convert=_rule, allow_none=True, doc="plasticity rule")
    stp = Parameter(None, convert=_stp, allow_none=True, doc="short-term plasticity")
    delay = Parameter(0.0, convert=_delay,
                      doc="synaptic delay in s: scalar, (n_syn,), (post.n, pre.n) or ('uniform', low, high)")

    def _check(self) -> None:
        name = f"Projection {self.name!r}"
        if self.target not in self.post.targets:
            raise ValidationError(name, "target", self.target,
                                  f"population {self.post.name!r} ({type(self.post).__name__}) has targets "
                                  f"{list(self.post.targets)}")
        if not self.pre.spiking:
            raise UnsupportedError(name, "pre", self.pre.name,
                                   "the presynaptic population must spike (RateUnits cannot be pre)")
        if np.isnan(self.w_min) or np.isnan(self.w_max) or self.w_min > self.w_max:
            raise RangeError(name, "w_min", self.w_min, f"need w_min <= w_max (w_max={self.w_max})")
        conn = self.connectivity
        if isinstance(conn, tuple):
            i, j = conn
            if i.size and (i.min() < 0 or i.max() >= self.pre.n):
                raise RangeError(name, "connectivity", i,
                                 f"pre indices must lie in [0, {self.pre.n - 1}] (pre population "
                                 f"{self.pre.name!r} has n={self.pre.n})")
            if j.size and (j.min() < 0 or j.max() >= self.post.n):
                raise RangeError(name, "connectivity", j,
                                 f"post indices must lie in [0, {self.post.n - 1}] (post population "
                                 f"{self.post.name!r} has n={self.post.n})")
        w = self.weight
        if isinstance(w, tuple):
            lo, hi = w[1], w[2]
            if lo < self.w_min or hi > self.w_max:
                raise RangeError(name, "weight", w, f"initial weights must lie in [w_min, w_max] = "
                                                    f"[{self.w_min:g}, {self.w_max:g}]")
        else:
            if w.ndim == 2:
                if conn != "all":
                    raise ShapeError(name, "weight", w, "a dense weight matrix needs connectivity='all'")
                if w.shape != (self.post.n, self.pre.n):
                    raise ShapeError(name, "weight", w,
                                     f"got shape {w.shape}, expected (post.n, pre.n) = "
                                     f"({self.post.n}, {self.pre.n})")
            elif w.ndim == 1 and isinstance(conn, tuple) and w.size != conn[0].size:
                raise ShapeError(name, "weight", w, f"got {w.size} weights for {conn[0].size} synapses")
            elif w.ndim == 1 and conn == "all" and w.size != self.pre.n * self.post.n:
                raise ShapeError(name, "weight", w, f"got {w.size} weights for "
                                                    f"{self.pre.n * self.post.n} synapses (pre-major order)")
            elif w.ndim == 1 and isinstance(conn, float):
                raise ShapeError(name, "weight", w, "per-synapse weights need explicit connectivity")
            elif w.ndim > 2:
                raise ShapeError(name, "weight", w, "expected a scalar, (n_syn,) or (post.n, pre.n)")
            if w.size and (w.min() < self.w_min or w.max() > self.w_max):
                bad = w.min() if w.min() < self.w_min else w.max()
                raise RangeError(name, "weight", w, f"initial weights must lie in [w_min, w_max] = "
                                                    f"[{self.w_min:g}, {self.w_max:g}]; found {bad:g}")
        self._check_delay(name)
        if self.rule is not None:
            self.rule.check_projection(self)

    def _check_delay(self, name: str) -> None:
        d, conn = self.delay, self.connectivity
        if not isinstance(d, np.ndarray):
            return
        if d.ndim == 2 and (conn != "all" or d.shape != (self.post.n, self.pre.n)):
            raise ShapeError(name, "delay", d, "a delay matrix needs connectivity='all' and shape (post.n, pre.n) = "
                                               f"({self.post.n}, {self.pre.n})")
        if d.ndim == 1:
            n_syn = conn[0].size if isinstance(conn, tuple) else self.pre.n * self.post.n if conn == "all" else None
            if n_syn is None:
                raise ShapeError(name, "delay", d, "per-synapse delays need explicit connectivity "
                                                   "(or use ('uniform', low, high))")
            if d.size != n_syn:
                raise ShapeError(name, "delay", d, f"got {d.size} delays for {n_syn} synapses")
        if d.ndim > 2:
            raise ShapeError(name, "delay", d, "expected a scalar, (n_syn,), (post.n, pre.n) or ('uniform', low, high)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (populations by name)."""
        d = super().to_dict()
        d["pre"], d["post"] = self.pre.name, self.post.name
        return d


# --------------------------------------------------------------------------------------
# modulators
# --------------------------------------------------------------------------------------

class Modulator(Spec):
    """Base class of neuromodulator signals (global scalars ``m(t)``)."""

    name = _name_parameter()


class ProgrammedSignal(Modulator):
    """A piecewise-constant signal: ``m(t) = values[floor(t / interval)]``, 0 after the end.

    Parameters
    ----------
    name : str
    values : array (n_segments,)
        Values of the segments (dimensionless, e.g. a programmed learning rate beta_t).
    interval : float
        Duration of one segment (s), a multiple of ``dt``.
    """

    values = Parameter((0.0,), convert=lambda v: _float_array(v, "ProgrammedSignal", "values").reshape(-1),
                       doc="segment values")
    interval = Parameter(1.0, unit="s", low=0.0, low_open=True, doc="segment duration (s)")


class SpikeSignal(Modulator):
    """A concentration driven by spikes (NEST's volume transmitter, Izhikevich's dopamine).

    ``n(t) = baseline + sum over events k of increment * exp(-(t - t_k) / tau)`` where
    events are the spikes of the ``sources`` populations and rewards delivered by a
    :class:`CoincidenceReward`. NEST's ``stdp_dopamine_synapse`` uses
    ``increment = 1 / tau`` (``n`` in 1/s).

    Parameters
    ----------
    name : str
    tau : float
        Decay time constant (s).
    increment : float
        Jump per event (units of ``n``).
    sources : tuple of str
        Names of the populations whose spikes are events.
    """

    tau = Parameter(0.2, unit="s", low=0.0, low_open=True, doc="decay time constant (s)")
    increment = Parameter(1.0, doc="jump per event")
    sources = Parameter((), convert=lambda v: () if not v else _names(v), doc="source populations")


class CoincidenceReward(Spec):
    """Delayed reward when ``post_neuron`` fires within ``window`` after ``pre_neuron``.

    Izhikevich (2007): if neuron n2 fires at most ``window`` after neuron n1 (``0 < t2 -
    t1 <= window``), a reward of size ``amount`` is added to the :class:`SpikeSignal`
    ``modulator`` after a delay drawn uniformly from ``[delay_min, delay_max]``.

    Parameters
    ----------
    name : str
    modulator : str
        Name of the SpikeSignal that receives the rewards (as events of size ``amount``).
    pre, post : str
        Population names of n1 and n2.
    pre_neuron, post_neuron : int
        Indices of n1 and n2.
    window : float
        Coincidence window (s).
    delay_min, delay_max : float
        Reward delay range (s).
    amount : float
        Reward size in units of the signal's ``n`` (replaces the signal's increment).
    """

    name = _name_parameter()
    modulator = Parameter(convert=_name, doc="receiving SpikeSignal")
    pre = Parameter(convert=_name, doc="population of n1")
    post = Parameter(convert=_name, doc="population of n2")
    pre_neuron = Parameter(0, low=0, integer=True, doc="index of n1")
    post_neuron = Parameter(0, low=0, integer=True, doc="index of n2")
    window = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="coincidence window (s)")
    delay_min = Parameter(1.0, unit="s", low=0.0, doc="minimum delay (s)")
    delay_max = Parameter(3.0, unit="s", low=0.0, doc="maximum delay (s)")
    amount = Parameter(0.5, doc="reward size")

    def _check(self) -> None:
        if self.delay_max < self.delay_min:
            raise RangeError("CoincidenceReward", "delay_max", self.delay_max, "must be >= delay_min")


# --------------------------------------------------------------------------------------
# noise inputs
# --------------------------------------------------------------------------------------

class NoiseCurrent(Spec):
    """A fresh random input to every neuron of ``population`` in every time step.

    In each step each neuron draws ``x`` independently (uniform on ``[low, high]`` or
    normal with ``mean`` and ``std``) from the engine's seeded noise stream, and ``x`` is
    added to its input variable ``target`` exactly as a spike of weight ``x`` delivered in
    that step would be; values are therefore in the unit of that target's weights (A for
    :class:`LIF` ``"I_e"``, V for :class:`Izhikevich` ``"I"``, ...). The statistics are per
    step, so they depend on ``dt``. Izhikevich's (2007) thalamic input at ``dt = 1 ms`` is
    ``NoiseCurrent(population=..., target="I", distribution="uniform", low=-6.5e-3,
    high=6.5e-3)`` (his ``I = 13 (rand - 0.5)`` in mV/ms).

    Parameters
    ----------
    name : str
    population : str
        Name of the receiving (non-source) population.
    target : str
        One of the population's targets.
    distribution : {"uniform", "normal"}
    low, high : float
        Bounds of the uniform distribution (target units).
    mean, std : float
        Mean and standard deviation of the normal distribution (target units).
    """

    name = _name_parameter()
    population = Parameter(convert=_name, doc="receiving population")
    target = Parameter(convert=_name, doc="input variable of the population")
    distribution = Parameter("uniform", choices=("uniform", "normal"), doc="distribution of a draw")
    low = Parameter(0.0, doc="lower bound of a uniform draw (target units)")
    high = Parameter(0.0, doc="upper bound of a uniform draw (target units)")
    mean = Parameter(0.0, doc="mean of a normal draw (target units)")
    std = Parameter(0.0, low=0.0, doc="standard deviation of a normal draw (target units)")

    def _check(self) -> None:
        if self.low > self.high:
            raise RangeError("NoiseCurrent", "low", self.low, f"must be <= high={self.high:g}")
        given = ("mean", "std") if self.distribution == "uniform" else ("low", "high")
        for key in given:
            if getattr(self, key) != 0.0:
                raise ValidationError("NoiseCurrent", key, getattr(self, key),
                                      f"not a parameter of distribution={self.distribution!r} (uses "
                                      + ("low, high" if self.distribution == "uniform" else "mean, std") + ")")


# --------------------------------------------------------------------------------------
# probes
# --------------------------------------------------------------------------------------

class Probe(Spec):
    """Base class of probes."""

    name = _name_parameter()


class SpikeProbe(Probe):
    """Record every spike of ``population`` into the event table (``spike`` dimension)."""

    population = Parameter(convert=_name, doc="population name")


def _indices(value: Any) -> Any:
    return None if value is None else _int_array(value, "StateProbe", "indices")


class StateProbe(Probe):
    """Sample ``variable`` of ``population`` every ``sample_every`` seconds.

    Parameters
    ----------
    name : str
    population : str
    variable : str
        One of the population's ``variables``.
    indices : array of int or None
        Neurons to record (all by default).
    sample_every : float
        Sampling period (s), a multiple of ``dt``; all sampled probes of a network share it.
    """

    population = Parameter(convert=_name, doc="population name")
    variable = Parameter(convert=_name, doc="state variable")
    indices = Parameter(None, convert=_indices, allow_none=True, doc="recorded neurons")
    sample_every = Parameter(1e-3, unit="s", low=0.0, low_open=True, doc="sampling period (s)")


class WeightProbe(Probe):
    """Sample the weights of ``projection`` every ``sample_every`` seconds."""

    projection = Parameter(convert=_name, doc="projection name")
    sample_every = Parameter(1.0, unit="s", low=0.0, low_open=True, doc="sampling period (s)")


class ModulatorProbe(Probe):
    """Sample the modulator ``modulator`` every ``sample_every`` seconds."""

    modulator = Parameter(convert=_name, doc="modulator name")
    sample_every = Parameter(1e-3, unit="s", low=0.0, low_open=True, doc="sampling period (s)")


# --------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------

class Network:
    """A spiking network: a validated collection of spec objects (pure data).

    Parameters
    ----------
    *objects : Population, Projection, Modulator, CoincidenceReward, NoiseCurrent or Probe
        Objects to add (also possible later with :meth:`add`).

    Examples
    --------
    >>> net = Network()
    >>> inp = net.add(PoissonGroup(name="inp", n=10, rate=15.0))
    """

    def __init__(self, *objects: Any) -> None:
        self.populations: dict[str, Population] = {}
        self.projections: dict[str, Projection] = {}
        self.modulators: dict[str, Modulator] = {}
        self.rewards: dict[str, CoincidenceReward] = {}
        self.noises: dict[str, NoiseCurrent] = {}
        self.probes: dict[str, Probe] = {}
        for obj in objects:
            self.add(obj)

    def _names(self) -> set[str]:
        return (set(self.populations) | set(self.projections) | set(self.modulators)
                | set(self.rewards) | set(self.noises) | set(self.probes))

    def add(self, obj: Any) -> Any:
        """Add a spec object (its name must be new); returns it."""
        if isinstance(obj, (list, tuple)):
            for o in obj:
                self.add(o)
            return obj
        name = getattr(obj, "name", None)
        if name in self._names():
            raise ValidationError("Network", "name", name, "names must be unique within a network")
        if isinstance(obj, Population):
            self.populations[name] = obj
        elif isinstance(obj, Projection):
            for side in ("pre", "post"):
                pop = getattr(obj, side)
                if self.populations.get(pop.name) is not pop:
                    raise ValidationError("Network", f"{name}.{side}", pop.name,
                                          "add the population to the network before the projection")
            self.projections[name] = obj
        elif isinstance(obj, Modulator):
            self.modulators[name] = obj
        elif isinstance(obj, CoincidenceReward):
            self.rewards[name] = obj
        elif isinstance(obj, NoiseCurrent):
            self.noises[name] = obj
        elif isinstance(obj, Probe):
            self.probes[name] = obj
        else:
            raise ValidationError("Network", "object", obj,
                                  "expected a Population, Projection, Modulator, CoincidenceReward, NoiseCurrent "
                                  "or Probe")
        return obj

    def validate(self) -> None:
        """Check cross references (populations, modulators, variables, sampling periods).

        Raises
        ------
        ValidationError
            Naming the object and parameter that refers to something missing or invalid.
        """
        for proj in self.projections.values():
            if proj.rule is not None:
                mod = getattr(proj.rule, "modulator", None)
                if mod is not None and mod not in self.modulators:
                    raise ValidationError(type(proj.rule).__name__, "modulator", mod,
                                          f"projection {proj.name!r}: known modulators: {sorted(self.modulators)}")
                if (mod is not None and getattr(proj.rule, "needs_spike_signal", False)
                        and not isinstance(self.modulators[mod], SpikeSignal)):
                    raise ValidationError(type(proj.rule).__name__, "modulator", mod,
                                          f"projection {proj.name!r}: {type(proj.rule).__name__} needs a "
                                          f"SpikeSignal (a dopamine concentration with a decay time "
                                          f"constant), got a {type(self.modulators[mod]).__name__}")
        for mod in self.modulators.values():
            if isinstance(mod, SpikeSignal):
                for src in mod.sources:
                    if src not in self.populations:
                        raise ValidationError("SpikeSignal", "sources", src,
                                              f"{mod.name!r}: unknown population; known: {sorted(self.populations)}")
        for rew in self.rewards.values():
            if not isinstance(self.modulators.get(rew.modulator), SpikeSignal):
                raise ValidationError("CoincidenceReward", "modulator", rew.modulator,
                                      "expected the name of a SpikeSignal in the network")
            for side, idx in (("pre", rew.pre_neuron), ("post", rew.post_neuron)):
                pop = self.populations.get(getattr(rew, side))
                if pop is None or not pop.spiking:
                    raise ValidationError("CoincidenceReward", side, getattr(rew, side),
                                          "expected the name of a spiking population in the network")
                if idx >= pop.n:
                    raise RangeError("CoincidenceReward", f"{side}_neuron", idx,
                                     f"population {pop.name!r} has n={pop.n}")
        for noise in self.noises.values():
            pop = self.populations.get(noise.population)
            if pop is None or pop.source:
                raise ValidationError("NoiseCurrent", "population", noise.population,
                                      f"{noise.name!r}: expected a non-source population of the network; "
                                      f"known: {sorted(p for p, q in self.populations.items() if not q.source)}")
            if noise.target not in pop.targets:
                raise ValidationError("NoiseCurrent", "target", noise.target,
                                      f"{noise.name!r}: {type(pop).__name__} {pop.name!r} has targets "
                                      f"{list(pop.targets)}")
        periods = set()
        for probe in self.probes.values():
            if isinstance(probe, (SpikeProbe, StateProbe)):
                pop = self.populations.get(probe.population)
                if pop is None:
                    raise ValidationError(type(probe).__name__, "population", probe.population,
                                          f"known populations: {sorted(self.populations)}")
                if isinstance(probe, SpikeProbe) and not pop.spiking:
                    raise UnsupportedError("SpikeProbe", "population", probe.population, "RateUnits do not spike")
                if isinstance(probe, StateProbe):
                    if probe.variable not in pop.variables:
                        raise ValidationError("StateProbe", "variable", probe.variable,
                                              f"{type(pop).__name__} {pop.name!r} has variables "
                                              f"{list(pop.variables)}")
                    if probe.indices is not None and probe.indices.size and \
                            (probe.indices.min() < 0 or probe.indices.max() >= pop.n):
                        raise RangeError("StateProbe", "indices", probe.indices,
                                         f"population {pop.name!r} has n={pop.n}")
            if isinstance(probe, WeightProbe) and probe.projection not in self.projections:
                raise ValidationError("WeightProbe", "projection", probe.projection,
                                      f"known projections: {sorted(self.projections)}")
            if isinstance(probe, ModulatorProbe) and probe.modulator not in self.modulators:
                raise ValidationError("ModulatorProbe", "modulator", probe.modulator,
                                      f"known modulators: {sorted(self.modulators)}")
            if hasattr(probe, "sample_every"):
                periods.add(probe.sample_every)
        if len(periods) > 1:
            raise ValidationError("Network", "sample_every", sorted(periods),
                                  "all sampled probes of a network share one sample_every (one time axis)")

    def objects(self) -> Iterable[Spec]:
        """All spec objects, in insertion order per kind."""
        yield from self.populations.values()
        yield from self.projections.values()
        yield from self.modulators.values()
        yield from self.rewards.values()
        yield from self.noises.values()
        yield from self.probes.values()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description of the whole network."""
        return {"populations": [p.to_dict() for p in self.populations.values()],
                "projections": [p.to_dict() for p in self.projections.values()],
                "modulators": [m.to_dict() for m in self.modulators.values()],
                "rewards": [r.to_dict() for r in self.rewards.values()],
                "noises": [n.to_dict() for n in self.noises.values()],
                "probes": [p.to_dict() for p in self.probes.values()]}

    def __repr__(self) -> str:
        return (f"Network(populations={list(self.populations)}, projections={list(self.projections)}, "
                f"modulators={list(self.modulators)}, noises={list(self.noises)}, probes={list(self.probes)})")
