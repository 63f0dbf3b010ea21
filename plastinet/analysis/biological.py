"""A library of biological plasticity rules to compare fitted rules against.

Each rule carries its published parameters (SI units: s, Hz) and source, its spike-timing
window where it has one, and its *rate (mean-field) form*: the expected weight change per
step of length ``dt`` given presynaptic rates ``x`` (Hz), postsynaptic rates ``y`` (Hz),
the weight ``w`` and a modulator ``m``. :func:`synthetic_trace` runs a rule's rate form on
random rates and returns a plasticity Dataset for :func:`~plastinet.analysis.fit_rule`;
``expected_coefficients`` gives the coefficients the fit should recover, and ``family`` the
family it should select.

Rate forms of the spike rules use the mean-field drift of independent Poisson trains
(Kempter et al. 1999; Pfister & Gerstner 2006): pair STDP gives
``<dw/dt> = x y (A+ tau+ - A- tau-)``; minimal triplet STDP gives
``<dw/dt> = -A2- tau- x y + A3+ tau+ tau_y x y^2`` (BCM-like).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from plastinet.analysis.stdp_theory import mean_field_drift, pair_integral
from plastinet.errors import RangeError, ValidationError
from plastinet.seeds import check_seed

__all__ = ["LibraryRule", "PairSTDPRule", "TripletSTDPRule", "BCMRule", "OjaRule", "CovarianceRule",
           "PESRule", "DopamineSTDPRule", "BTSPRule", "BI_POO", "SONG_ABBOTT", "TRIPLET_VISUAL",
           "BCM", "OJA", "COVARIANCE", "PES", "DOPAMINE_STDP", "BTSP", "LIBRARY",
           "synthetic_trace", "BI_POO_PAIRINGS"]

#: Pairings (at 1 Hz) of Bi & Poo's protocol, whose total change their amplitude fit describes.
BI_POO_PAIRINGS: int = 60


@dataclass(frozen=True)
class LibraryRule(ABC):
    """Base class: a rule of the library.

    Attributes
    ----------
    name : str
        Short name.
    family : str
        The :func:`~plastinet.analysis.fit_rule` family of its rate form.
    source : str
        Reference for the form and parameters.
    """

    name: str = ""
    family: str = ""
    source: str = ""

    def init_state(self, x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> dict[str, Any]:
        """State carried across steps (traces), given the whole rate arrays."""
        return {}

    @abstractmethod
    def rate_update(self, state: dict[str, Any], x: np.ndarray, y: np.ndarray, w: np.ndarray,
                    m: float, dt: float) -> np.ndarray:
        """Expected weight change ``(post, pre)`` over one step of ``dt`` seconds."""

    @abstractmethod
    def expected_coefficients(self, dt: float, n_pre: int) -> dict[str, float]:
        """Coefficients :func:`fit_rule` should recover on this rule's rate form."""


def _window(delta_t: Any, values: np.ndarray, name: str) -> xr.DataArray:
    return xr.DataArray(values, dims="delta_t", name=name,
                        coords={"delta_t": ("delta_t", np.asarray(delta_t, float),
                                            {"units": "s", "long_name": "t_post - t_pre"})},
                        attrs={"units": "1", "long_name": "weight change per pairing"})


@dataclass(frozen=True)
class PairSTDPRule(LibraryRule):
    """Pair-based STDP with exponential window (all-to-all traces, additive).

    ``dw(dt) = A+ exp(-dt / tau+)`` for ``dt = t_post - t_pre > 0``,
    ``-A- exp(dt / tau-)`` for ``dt < 0``. Rate form (Kempter et al. 1999):
    ``<dw/dt> = x y (A+ tau+ - A- tau-)``: Hebbian if the integral is positive,
    anti-Hebbian if negative. The amplitudes are per pre/post pair, so the rate form is the
    pair sum over independent Poisson trains.

    Parameters
    ----------
    A_plus, A_minus : float
        Amplitudes per pairing (dimensionless, ``>= 0``).
    tau_plus, tau_minus : float
        Time constants (s).

    Notes
    -----
    :data:`BI_POO`: Bi & Poo 1998/2001 window, ``tau+ = 16.8 ms``, ``tau- = 33.7 ms`` (Bi & Poo
    2001 review, as used by Pfister & Gerstner 2006). The published amplitudes
    ``A+ = 0.777``, ``A- = 0.273`` (*unverified* transcription) are fits to the *total*
    relative change after :data:`BI_POO_PAIRINGS` ``= 60`` pairings at 1 Hz. The library
    carries them per pairing, ``A+ = 0.777 / 60``, ``A- = 0.273 / 60``, assuming that the
    60 pairings sum linearly (for the pair rule itself this is exact: 1 s apart, the traces
    of the previous pairing have decayed by ``exp(-1 s / 33.7 ms) < 1e-12``); the total
    change of the protocol is ``BI_POO_PAIRINGS * BI_POO.window(delta_t)``.
    :data:`SONG_ABBOTT`: Song, Miller & Abbott 2000 as in Brian2's
    ``examples/synapses/STDP.py``: ``tau+- = 20 ms``, ``A+ = 0.01 gmax``, ``A- = 1.05 A+``
    with ``gmax = 0.01`` (net depression).
    """

    A_plus: float = 0.777 / BI_POO_PAIRINGS
    A_minus: float = 0.273 / BI_POO_PAIRINGS
    tau_plus: float = 16.8e-3
    tau_minus: float = 33.7e-3

    @property
    def integral(self) -> float:
        """``A+ tau+ - A- tau-`` (s): the rate-form coefficient."""
        return pair_integral(self.A_plus, self.tau_plus, self.A_minus, self.tau_minus)

    def window(self, delta_t: Any) -> xr.DataArray:
        """Weight change per pre/post pair at lags ``delta_t = t_post - t_pre`` (s)."""
        d = np.asarray(delta_t, float)
        out = np.where(d > 0, self.A_plus * np.exp(-np.abs(d) / self.tau_plus),
                       np.where(d < 0, -self.A_minus * np.exp(-np.abs(d) / self.tau_minus), 0.0))
        return _window(d, out, f"{self.name}_window")

    def drift(self, r_pre: Any, r_post: Any) -> Any:
        """Mean drift ``<dw/dt>`` (1/s) for independent Poisson rates (Hz)."""
        return mean_field_drift(self, r_pre, r_post)

    def rate_update(self, state, x, y, w, m, dt):
        return dt * self.integral * np.outer(y, x)

    def expected_coefficients(self, dt, n_pre):
        return {"eta": dt * self.integral}


@dataclass(frozen=True)
class TripletSTDPRule(LibraryRule):
    """Triplet STDP (Pfister & Gerstner 2006), all-to-all.

    Pre traces ``r1 (tau+)``, ``r2 (tau_x)``; post traces ``o1 (tau-)``, ``o2 (tau_y)``. On a
    pre spike ``w -= o1 (A2- + A3- r2)``; on a post spike ``w += r1 (A2+ + A3+ o2)``. Rate
    form for independent Poisson trains:
    ``<dw/dt> = x y (A2+ tau+ - A2- tau-) + A3+ tau+ tau_y x y^2 - A3- tau- tau_x x^2 y``.
    The default is the minimal visual-cortex all-to-all model of the paper's Table 3:
    ``A2+ = 0``, ``A3+ = 6.5e-3``, ``A2- = 7.1e-3``, ``A3- = 0``, ``tau_y = 114 ms``,
    ``tau+ = 16.8 ms``, ``tau- = 33.7 ms``: a BCM rule with threshold
    ``y* = A2- tau- / (A3+ tau+ tau_y)``.
    """

    A2_plus: float = 0.0
    A3_plus: float = 6.5e-3
    A2_minus: float = 7.1e-3
    A3_minus: float = 0.0
    tau_plus: float = 16.8e-3
    tau_minus: float = 33.7e-3
    tau_x: float = 0.101
    tau_y: float = 0.114

    def window(self, delta_t: Any) -> xr.DataArray:
        """Pair window at low pairing frequency (triplet terms vanish): ``A2+ e^{-dt/tau+}``
        for ``dt > 0``, ``-A2- e^{dt/tau-}`` for ``dt < 0``."""
        return PairSTDPRule(A_plus=self.A2_plus, A_minus=self.A2_minus, tau_plus=self.tau_plus,
                        tau_minus=self.tau_minus, name=self.name).window(delta_t)

    def drift(self, r_pre: Any, r_post: Any) -> Any:
        """Mean drift ``<dw/dt>`` (1/s) for independent Poisson rates (Hz)."""
        return mean_field_drift(self, r_pre, r_post)

    @property
    def threshold(self) -> float:
        """BCM threshold ``y*`` (Hz) of the minimal model."""
        return (self.A2_minus * self.tau_minus - self.A2_plus * self.tau_plus) / (
            self.A3_plus * self.tau_plus * self.tau_y)

    def rate_update(self, state, x, y, w, m, dt):
        return dt * self.drift(x[None, :], y[:, None])

    def expected_coefficients(self, dt, n_pre):
        a = dt * self.A3_plus * self.tau_plus * self.tau_y
        return {"eta": a, "b": -a * self.threshold, "theta": self.threshold}


@dataclass(frozen=True)
class BCMRule(LibraryRule):
    """BCM rule (Bienenstock, Cooper & Munro 1982): ``dw/dt = kappa y (y - theta) x``.

    Nengo 4.1's ``BCM`` uses ``kappa = 1e-9`` per (Hz^3 s) with ``theta`` a 1-s low-pass of
    ``y``; here ``theta`` (Hz) is held fixed over the analysed window (a window short
    against the threshold's time constant). Default ``kappa = 1e-4`` for visible changes.
    """

    kappa: float = 1e-4
    theta: float = 12.0

    def rate_update(self, state, x, y, w, m, dt):
        return self.kappa * dt * np.outer(y * (y - self.theta), x)

    def expected_coefficients(self, dt, n_pre):
        return {"eta": self.kappa * dt, "b": -self.kappa * dt * self.theta, "theta": self.theta}


@dataclass(frozen=True)
class OjaRule(LibraryRule):
    """Oja's rule (Oja 1982): ``dw/dt = kappa (y x - beta y^2 w)``.

    Nengo 4.1 defaults ``kappa = 1e-6``, ``beta = 1``; default ``kappa = 1e-4`` here for
    visible changes.
    """

    kappa: float = 1e-4
    beta: float = 1.0

    def rate_update(self, state, x, y, w, m, dt):
        return self.kappa * dt * (np.outer(y, x) - self.beta * (y ** 2)[:, None] * w)

    def expected_coefficients(self, dt, n_pre):
        return {"eta": self.kappa * dt}


@dataclass(frozen=True)
class CovarianceRule(LibraryRule):
    """Covariance rule (Sejnowski 1977): ``dw/dt = kappa (y - <y>)(x - <x>)``, with the means
    taken over the run."""

    kappa: float = 1e-4

    def init_state(self, x, y, shape):
        return {"x_mean": x.mean(axis=0), "y_mean": y.mean(axis=0)}

    def rate_update(self, state, x, y, w, m, dt):
        return self.kappa * dt * np.outer(y - state["y_mean"], x - state["x_mean"])

    def expected_coefficients(self, dt, n_pre):
        return {"eta": self.kappa * dt}


@dataclass(frozen=True)
class PESRule(LibraryRule):
    """Prescribed error sensitivity (Nengo PES; MacNeil & Eliasmith 2011): the spiking
    delta rule, ``dw_ij/dt = (kappa / n_pre) e_i x_j`` with ``e = target - actual`` (Nengo
    writes ``-kappa/n (actual - target)``); Nengo 4.1 default ``kappa = 1e-4``."""

    kappa: float = 1e-4

    def rate_update(self, state, x, y, w, m, dt):
        err = y - w @ x
        return self.kappa / x.size * dt * np.outer(err, x)

    def expected_coefficients(self, dt, n_pre):
        return {"eta": self.kappa * dt / n_pre}


@dataclass(frozen=True)
class DopamineSTDPRule(LibraryRule):
    """Dopamine-modulated STDP (Izhikevich 2007; NEST ``stdp_dopamine_synapse``).

    ``dc/dt = -c / tau_c + STDP``, ``dw/dt = c (n - b)``, dopamine ``n`` the modulator.
    NEST 3.10 defaults: ``A+ = 1``, ``A- = 1.5``, ``tau+ = 20 ms`` (``tau-`` of the post
    neuron, 20 ms), ``tau_c = 1 s``, ``tau_n = 0.2 s``, ``b = 0``. Rate form: the STDP
    drift ``x y (A+ tau+ - A- tau-)`` feeds the eligibility ``c``:
    ``c_t = gamma c_{t-1} + dt x y (A+ tau+ - A- tau-)``, ``gamma = exp(-dt / tau_c)``,
    ``dw_t = dt c_t (m_t - b)``.
    """

    A_plus: float = 1.0
    A_minus: float = 1.5
    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    tau_c: float = 1.0
    tau_n: float = 0.2
    b: float = 0.0

    def init_state(self, x, y, shape):
        return {"c": np.zeros(shape)}

    def rate_update(self, state, x, y, w, m, dt):
        integral = pair_integral(self.A_plus, self.tau_plus, self.A_minus, self.tau_minus)
        state["c"] = np.exp(-dt / self.tau_c) * state["c"] + dt * integral * np.outer(y, x)
        return dt * state["c"] * (m - self.b)

    def expected_coefficients(self, dt, n_pre):
        integral = pair_integral(self.A_plus, self.tau_plus, self.A_minus, self.tau_minus)
        return {"eta": dt * dt * integral, "gamma": float(np.exp(-dt / self.tau_c))}


@dataclass(frozen=True)
class BTSPRule(LibraryRule):
    """Behavioural-timescale synaptic plasticity (Bittner et al. 2017; Milstein et al. 2021).

    A presynaptic eligibility trace ``ET`` (decay ``tau_et``) and a global instructive signal
    ``IS`` (a dendritic plateau low-passed with ``tau_is``; here the modulator) drive
    ``dw/dt = (w_max - w) k+ ET IS - w k- ET IS`` (the model's sigmoids ``q+-`` linearised).
    It is independent of postsynaptic firing and weight-dependent: weak inputs potentiate,
    strong ones depress. Discretised: ``ET_t = gamma ET_{t-1} + (1 - gamma) x_t``.

    Time constants ``tau_et = 872 ms``, ``tau_is = 662 ms``: the starting point of the
    authors' model "D" (fitted decays lie in 100-1750 ms). ``k+ = 1.1``, ``k- = 0.4``,
    ``w_max = 1`` are illustrative, not published values.
    """

    tau_et: float = 0.872
    tau_is: float = 0.662
    k_plus: float = 1.1
    k_minus: float = 0.4
    w_max: float = 1.0

    def init_state(self, x, y, shape):
        return {"et": np.zeros(shape[1])}

    def window(self, delta_t: Any) -> xr.DataArray:
        """Weight change (at ``w = 0``, per unit signals) for a brief input at lag ``delta_t =
        t_plateau - t_input`` (s): the overlap of the two exponential signals,
        ``k+ w_max tau_et tau_is / (tau_et + tau_is) exp(-|dt| / tau)`` with ``tau = tau_et``
        for inputs before the plateau and ``tau_is`` after (seconds-long, asymmetric)."""
        d = np.asarray(delta_t, float)
        amp = self.k_plus * self.w_max * self.tau_et * self.tau_is / (self.tau_et + self.tau_is)
        return _window(d, amp * np.exp(-np.abs(d) / np.where(d >= 0, self.tau_et, self.tau_is)),
                       f"{self.name}_window")

    def rate_update(self, state, x, y, w, m, dt):
        g = np.exp(-dt / self.tau_et)
        state["et"] = g * state["et"] + (1 - g) * x
        return dt * m * state["et"][None, :] * (self.k_plus * self.w_max - (self.k_plus + self.k_minus) * w)

    def expected_coefficients(self, dt, n_pre):
        g = float(np.exp(-dt / self.tau_et))
        return {"a": dt * (1 - g) * self.k_plus * self.w_max,
                "b": -dt * (1 - g) * (self.k_plus + self.k_minus), "gamma": g}


BI_POO = PairSTDPRule(name="bi_poo", family="hebbian",
                  source="Bi & Poo 1998; 2001 review (amplitudes per pairing: 60-pairing fit / 60)")
SONG_ABBOTT = PairSTDPRule(name="song_abbott", family="anti_hebbian",
                       source="Song, Miller & Abbott 2000 (Brian2 examples/synapses/STDP.py)",
                       A_plus=1e-4, A_minus=1.05e-4, tau_plus=20e-3, tau_minus=20e-3)
TRIPLET_VISUAL = TripletSTDPRule(name="triplet_visual_minimal", family="bcm",
                             source="Pfister & Gerstner 2006, Table 3: visual cortex, all-to-all, minimal")
BCM = BCMRule(name="bcm", family="bcm", source="Bienenstock, Cooper & Munro 1982; Nengo 4.1 BCM")
OJA = OjaRule(name="oja", family="oja", source="Oja 1982; Nengo 4.1 Oja")
COVARIANCE = CovarianceRule(name="covariance", family="covariance", source="Sejnowski 1977")
PES = PESRule(name="pes", family="delta", source="MacNeil & Eliasmith 2011; Nengo 4.1 PES")
DOPAMINE_STDP = DopamineSTDPRule(name="dopamine_stdp", family="three_factor",
                             source="Izhikevich 2007; NEST 3.10 stdp_dopamine_synapse")
BTSP = BTSPRule(name="btsp", family="btsp", source="Bittner et al. 2017; Milstein et al. 2021")

#: The library by name.
LIBRARY: dict[str, LibraryRule] = {r.name: r for r in (BI_POO, SONG_ABBOTT, TRIPLET_VISUAL, BCM, OJA,
                                                       COVARIANCE, PES, DOPAMINE_STDP, BTSP)}


@dataclass
class _Drive:
    x: np.ndarray
    y: np.ndarray
    m: np.ndarray
    W0: np.ndarray


def _drive(rng: np.random.Generator, T: int, n_pre: int, n_post: int, dt: float, rate: float) -> _Drive:
    """Random positive rates (gamma-distributed, mean ``rate`` Hz, i.i.d. per step) and a
    sparse-pulse modulator low-passed with a 200 ms time constant (dopamine-like)."""
    x = rate * rng.gamma(2.0, 0.5, size=(T, n_pre))
    y = rate * rng.gamma(2.0, 0.5, size=(T, n_post))
    pulses = rng.random(T) < min(0.5, 5.0 * dt)
    decay = np.exp(-dt / 0.2)
    m = np.zeros(T)
    level = 0.0
    for t in range(T):
        level = decay * level + pulses[t]
        m[t] = level
    W0 = rng.uniform(0.0, 2.0 / n_pre, size=(n_post, n_pre))
    return _Drive(x, y, m, W0)


def _run(rule: LibraryRule, d: _Drive, dt: float, sigma: float,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weights before each step and the (noisy) changes, ``(T, post, pre)`` each."""
    T, (n_post, n_pre) = d.x.shape[0], d.W0.shape
    state = rule.init_state(d.x, d.y, (n_post, n_pre))
    W = d.W0.copy()
    Ws = np.empty((T, n_post, n_pre))
    dWs = np.empty((T, n_post, n_pre))
    for t in range(T):
        Ws[t] = W
        dWs[t] = rule.rate_update(state, d.x[t], d.y[t], W, d.m[t], dt)
        if sigma > 0:
            dWs[t] += sigma * rng.standard_normal((n_post, n_pre))
        W = W + dWs[t]
    return Ws, dWs


def synthetic_trace(rule: LibraryRule, *, T: int = 400, n_pre: int = 8, n_post: int = 6,
                    dt: float = 0.01, rate: float = 10.0, noise: float = 0.2, seed: int = 0) -> xr.Dataset:
    """Run a library rule's rate form on random rates: a plasticity Dataset with known truth.

    Parameters
    ----------
    rule : LibraryRule
        A rule of :data:`LIBRARY`.
    T : int
        Time steps.
    n_pre, n_post : int
        Pre- and postsynaptic neurons.
    dt : float
        Step length (s).
    rate : float
        Mean rate of pre and post neurons (Hz); rates are i.i.d. gamma(2) per step.
    noise : float
        Standard deviation of additive white Gaussian noise on ``dW``, relative to the RMS
        of the noise-free updates of the run.
    seed : int
        Seed.

    Returns
    -------
    xarray.Dataset
        ``dW, W (time, post, pre)``, ``pre (time, pre)``, ``post (time, post)`` (the target),
        ``error = post - W pre (time, post)``, ``modulator (time)``; attrs ``rule``,
        ``family`` (the family a fit should select), ``expected`` (JSON of the true
        coefficients), ``dt``.
    """
    if not isinstance(rule, LibraryRule):
        raise ValidationError("synthetic_trace", "rule", rule, "expected a rule of plastinet.analysis.LIBRARY")
    for name, value in (("T", T), ("n_pre", n_pre), ("n_post", n_post)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise RangeError("synthetic_trace", name, value, "expected a positive integer")
    if not (dt > 0 and rate > 0 and noise >= 0):
        raise RangeError("synthetic_trace", "dt/rate/noise", (dt, rate, noise),
                         "expected dt > 0 (s), rate > 0 (Hz), noise >= 0")
    rng = np.random.default_rng(check_seed("synthetic_trace", seed, allow_none=False))
    d = _drive(rng, T, n_pre, n_post, dt, rate)
    clean_rms = float(np.sqrt(np.mean(_run(rule, d, dt, 0.0, rng)[1] ** 2)))
    Ws, dWs = _run(rule, d, dt, noise * clean_rms, rng)
    err = d.y - np.einsum("tij,tj->ti", Ws, d.x)
    return xr.Dataset(
        {"dW": (("time", "post", "pre"), dWs, {"units": "1", "long_name": "weight change per step"}),
         "W": (("time", "post", "pre"), Ws, {"units": "1", "long_name": "weight before the change"}),
         "pre": (("time", "pre"), d.x, {"units": "Hz", "long_name": "presynaptic rate"}),
         "post": (("time", "post"), d.y, {"units": "Hz", "long_name": "postsynaptic rate (target)"}),
         "error": (("time", "post"), err, {"units": "Hz", "long_name": "target minus W pre"}),
         "modulator": (("time",), d.m, {"units": "1", "long_name": "modulator (dopamine / plateau)"})},
        coords={"time": ("time", np.arange(T) * dt, {"units": "s", "long_name": "time"})},
        attrs={"rule": rule.name, "family": rule.family, "source": rule.source, "dt": dt,
               "expected": json.dumps(rule.expected_coefficients(dt, n_pre))})
