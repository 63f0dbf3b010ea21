"""Rule families for :func:`plastinet.analysis.fit_rule`: design matrices of candidate rules.

Every family writes the per-step weight change of synapse ``(i, j)`` (post ``i``, pre ``j``)
as a linear combination of *terms* built from the local variables, with coefficients shared
by all synapses::

    dW_ij(t) = sum_c theta_c X_c(i, j, t) + noise

Some families also have one nonlinear parameter, the per-step decay ``gamma`` of an
eligibility trace, which :func:`~plastinet.analysis.fit_rule` profiles on a grid. Notation:
``x = pre_j(t)``, ``y = post_i(t)``, ``w = W_ij(t)`` (before the change), ``e = error_i(t)``,
``m = modulator(t)``, ``<.>`` the mean over the run.

==========================  ====================================================  =============
family                      dW_ij(t)                                              needs
==========================  ====================================================  =============
``hebbian``                 ``eta y x``, ``eta >= 0``                             --
``anti_hebbian``            ``eta y x``, ``eta <= 0``                             --
``covariance``              ``eta (y - <y>)(x - <x>)`` (Sejnowski 1977)            --
``bcm``                     ``a y^2 x + b y x = eta y (y - theta) x``             --
``oja``                     ``eta (y x - y^2 w)`` (Oja 1982)                      W
``hebbian_decay``           ``eta y x - lam w``                                   W
``delta``                   ``eta e x`` (Widrow-Hoff)                             error
``modulated_hebbian``       ``eta m y x``                                         modulator
``modulated_delta``         ``eta m e x``                                         modulator, error
``three_factor``            ``eta m E``, ``E(t) = gamma E(t-1) + y x``            modulator
``btsp``                    ``m P (a + b w)``, ``P(t) = gamma P(t-1) + x``        modulator, W
``polynomial``              ``sum theta_abc x^a y^b w^c`` (``a, b <= 2``,          --
                            ``c <= 1``, ``a + b + c <= 3``; "ABCD" rule)
``polynomial_modulated``    ``m`` times the polynomial terms                      modulator
==========================  ====================================================  =============

The polynomial family uses the ``w`` terms only when ``W`` is known. ``eta`` of BCM is
``a`` and its threshold ``theta = -b / a`` is reported as a derived coefficient; the trace
decay ``gamma`` is also reported as a time constant ``tau = -1 / ln(gamma)`` (steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.signal import lfilter

__all__ = ["Family", "Variables", "FAMILIES", "polynomial_exponents"]


@dataclass
class Variables:
    """Local variables of the sampled synapses, each of shape ``(time, synapse)``.

    ``m`` (the modulator) has shape ``(time, 1)``; absent variables are ``None``. ``x_mean``
    and ``y_mean`` are the run means of each synapse's pre- and postsynaptic activity.
    """

    dW: np.ndarray
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray | None = None
    e: np.ndarray | None = None
    m: np.ndarray | None = None
    units: dict[str, str] = field(default_factory=dict)

    @property
    def x_mean(self) -> np.ndarray:
        return self.x.mean(axis=0, keepdims=True)

    @property
    def y_mean(self) -> np.ndarray:
        return self.y.mean(axis=0, keepdims=True)

    def without_modulator(self) -> "Variables":
        """The same variables with the modulator replaced by ones (for gate profiles)."""
        return Variables(self.dW, self.x, self.y, self.w, self.e,
                         None if self.m is None else np.ones_like(self.m), self.units)


Builder = Callable[[Variables, float], list[np.ndarray]]


@dataclass(frozen=True)
class Family:
    """A candidate rule family.

    Attributes
    ----------
    name : str
        Registry key.
    equation : str
        The update in plain text.
    requires : tuple of str
        Dataset variables it needs besides ``dW``, ``pre``, ``post`` (``"W"``, ``"error"``,
        ``"modulator"``).
    coefficients : tuple of str
        Names of the linear coefficients, one per term.
    terms : tuple of str
        The terms, as expressions of ``x, y, w, e, m, E, P``.
    build : callable
        ``build(variables, gamma) -> list of (time, synapse) arrays``, one per term.
    label : str
        Plain-language name used by the classification ("Hebbian-like").
    sign : int
        ``+1`` / ``-1`` constrains the single coefficient's sign; ``0`` leaves it free.
    has_gamma : bool
        Whether the family has the trace decay ``gamma`` (profiled on a grid).
    """

    name: str
    equation: str
    requires: tuple[str, ...]
    coefficients: tuple[str, ...]
    terms: tuple[str, ...]
    build: Builder
    label: str
    sign: int = 0
    has_gamma: bool = False

    @property
    def modulated(self) -> bool:
        """Whether the family multiplies its terms by the modulator."""
        return "modulator" in self.requires

    def n_params(self, n_terms: int) -> int:
        """Number of fitted parameters (terms plus ``gamma``)."""
        return n_terms + int(self.has_gamma)


def trace(signal: np.ndarray, gamma: float) -> np.ndarray:
    """Causal eligibility trace ``E(t) = gamma E(t-1) + signal(t)``, ``E(-1) = 0`` (axis 0)."""
    if gamma == 0.0:
        return signal
    return lfilter([1.0], [1.0, -gamma], signal, axis=0)


def polynomial_exponents(with_w: bool) -> list[tuple[int, int, int]]:
    """Exponents ``(a, b, c)`` of the polynomial terms ``x^a y^b w^c``."""
    out = []
    for c in (0, 1) if with_w else (0,):
        for b in range(3):
            for a in range(3):
                if a + b + c <= 3:
                    out.append((a, b, c))
    return sorted(out, key=lambda e: (sum(e), e[2], e[1], e[0]))


def _monomial_name(a: int, b: int, c: int) -> str:
    parts = [f"{s}^{p}" if p > 1 else s for s, p in (("y", b), ("x", a), ("w", c)) if p]
    return "*".join(parts) or "1"


def _poly(v: Variables, modulated: bool) -> list[np.ndarray]:
    out = []
    for a, b, c in polynomial_exponents(v.w is not None):
        term = np.ones_like(v.x) * v.x ** a * v.y ** b
        if c:
            term = term * v.w
        out.append(term * v.m if modulated else term)
    return out


def _families() -> dict[str, Family]:
    fams = [
        Family("hebbian", "dW = eta y x, eta >= 0", (), ("eta",), ("y*x",),
               lambda v, g: [v.y * v.x], "Hebbian-like", sign=+1),
        Family("anti_hebbian", "dW = eta y x, eta <= 0", (), ("eta",), ("y*x",),
               lambda v, g: [v.y * v.x], "anti-Hebbian", sign=-1),
        Family("covariance", "dW = eta (y - <y>)(x - <x>)", (), ("eta",), ("(y-<y>)*(x-<x>)",),
               lambda v, g: [(v.y - v.y_mean) * (v.x - v.x_mean)], "covariance-like"),
        Family("bcm", "dW = a y^2 x + b y x = eta y (y - theta) x", (), ("eta", "b"),
               ("y^2*x", "y*x"), lambda v, g: [v.y * v.y * v.x, v.y * v.x], "BCM-like"),
        Family("oja", "dW = eta (y x - y^2 w)", ("W",), ("eta",), ("y*x-y^2*w",),
               lambda v, g: [v.y * v.x - v.y * v.y * v.w], "Oja-like"),
        Family("hebbian_decay", "dW = eta y x - lam w", ("W",), ("eta", "lam"), ("y*x", "-w"),
               lambda v, g: [v.y * v.x, -v.w], "Hebbian-like with weight decay"),
        Family("delta", "dW = eta e x", ("error",), ("eta",), ("e*x",),
               lambda v, g: [v.e * v.x], "delta-like"),
        Family("modulated_hebbian", "dW = eta m y x", ("modulator",), ("eta",), ("m*y*x",),
               lambda v, g: [v.m * v.y * v.x], "Hebbian-like"),
        Family("modulated_delta", "dW = eta m e x", ("modulator", "error"), ("eta",), ("m*e*x",),
               lambda v, g: [v.m * v.e * v.x], "delta-like"),
        Family("three_factor", "dW = eta m E, E(t) = gamma E(t-1) + y x", ("modulator",), ("eta",),
               ("m*E",), lambda v, g: [v.m * trace(v.y * v.x, g)],
               "three-factor (Hebbian eligibility trace)", has_gamma=True),
        Family("btsp", "dW = m P (a + b w), P(t) = gamma P(t-1) + x", ("modulator", "W"),
               ("a", "b"), ("m*P", "m*P*w"),
               lambda v, g: (lambda mp: [mp, mp * v.w])(v.m * trace(v.x, g)),
               "BTSP-like (presynaptic eligibility times instructive signal, weight-dependent)",
               has_gamma=True),
    ]
    for modulated in (False, True):
        name = "polynomial_modulated" if modulated else "polynomial"
        names_w = tuple(_monomial_name(*e) for e in polynomial_exponents(True))
        fams.append(Family(name, ("dW = m " if modulated else "dW = ") + "sum theta_abc x^a y^b w^c",
                           ("modulator",) if modulated else (), names_w,
                           tuple(("m*" if modulated else "") + n for n in names_w),
                           (lambda mod: lambda v, g: _poly(v, mod))(modulated),
                           "polynomial (ABCD) rule"))
    return {f.name: f for f in fams}


#: All rule families by name, in the order of the table above.
FAMILIES: dict[str, Family] = _families()


def family_terms(family: Family, has_w: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Coefficient and term names actually used (the polynomial drops ``w`` terms without W)."""
    if family.name.startswith("polynomial") and not has_w:
        keep = [i for i, e in enumerate(polynomial_exponents(True)) if e[2] == 0]
        return (tuple(family.coefficients[i] for i in keep), tuple(family.terms[i] for i in keep))
    return family.coefficients, family.terms
