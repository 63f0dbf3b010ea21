"""Declarative parameters for plastinet's specification objects.

A specification object (a rule, a feature map, a population...) is *data*: it stores the
keyword arguments it was given, validated on set, and computes nothing (the engines own the
maths). Each parameter is declared once with :class:`Parameter`, and that declaration drives
validation, the SI unit, error messages, ``repr`` and serialisation.

Examples
--------
>>> class Leak(Spec):
...     tau = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="time constant")
>>> Leak(tau="10 ms").tau
0.01
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any, Callable, ClassVar

from plastinet.errors import ImplausibleValueWarning, RangeError, UnsupportedError, ValidationError
from plastinet.units import format_si, to_si

__all__ = ["Parameter", "Spec", "REQUIRED", "PLAUSIBLE", "UNIT_PLAUSIBLE"]

#: Plausible ranges (SI units) of common neuroscience quantities, for ``Parameter(plausible=...)``.
#: A value outside them is legal but warns once (:class:`~plastinet.errors.ImplausibleValueWarning`):
#: most often a number meant in ms, mV, nA... given as a bare float, which plastinet reads in SI units.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "tau_membrane": (1e-4, 1.0),       # membrane time constants: 0.1 ms .. 1 s
    "tau_synapse": (1e-5, 1.0),        # synaptic current / conductance time constants
    "tau_plasticity": (1e-4, 1.0),     # STDP / triplet traces (Pfister & Gerstner's longest: 946 ms)
    "tau_slow": (1e-3, 1e3),           # eligibility, modulator and recovery time constants
    "tau_facilitation": (0.0, 1e2),    # short-term facilitation (0: none)
    "time_constant": (1e-5, 10.0),     # any other time constant (a parameter named tau...)
    "refractory": (0.0, 0.1),          # refractory periods: 0 .. 100 ms
    "potential": (-0.2, 0.1),          # membrane and reversal potentials: -200 mV .. 100 mV
    "rate": (0.0, 1e3),                # firing rates: 0 .. 1 kHz
    "current": (-1e-6, 1e-6),          # injected currents: |I| <= 1 uA
    "resistance": (1e6, 1e10),         # membrane resistances: 1 Mohm .. 10 Gohm
}

#: The plausible range a parameter gets from its unit when it declares none: any potential,
#: current, resistance or rate of any spec class (time parameters declare theirs: a time
#: constant and a duration differ).
UNIT_PLAUSIBLE: dict[str, tuple[float, float]] = {"V": PLAUSIBLE["potential"], "A": PLAUSIBLE["current"],
                                                  "ohm": PLAUSIBLE["resistance"], "Hz": PLAUSIBLE["rate"]}

#: ``(owner class, parameter)`` pairs that have already warned about an implausible value.
_WARNED: set[tuple[str, str]] = set()

#: Prefixed units tried, per SI unit, when suggesting what a bare number probably meant.
_MEANT = {"s": (("m", 1e-3), ("u", 1e-6)), "V": (("m", 1e-3),), "A": (("n", 1e-9), ("p", 1e-12)),
          "S": (("n", 1e-9),), "F": (("p", 1e-12),), "ohm": (("M", 1e6),)}


def _same(a: Any, b: Any) -> bool:
    """Equality that also works for numpy arrays (array parameters of spiking specs)."""
    if hasattr(a, "shape") or hasattr(b, "shape"):
        import numpy as np
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except Exception:
            return False
    return bool(a == b)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Spec):
        return value.to_dict()
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        return value.tolist()
    return value


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Sentinel default for parameters that have no default.
REQUIRED: Any = _Required()

#: Integer parameters lie in ``[-2**63, 2**63)``: what a numpy size or a 64-bit seed can hold.
INT64_LIMIT = 2**63


class Parameter:
    """A validated, unit-aware parameter of a :class:`Spec`.

    Parameters
    ----------
    default : object
        Default value, or :data:`REQUIRED`.
    unit : str or None
        SI unit of a numeric parameter (``"s"``, ``"V"``, ``"Hz"``, ``"1"``...). ``None`` for
        non-numeric parameters.
    low, high : float or None
        Bounds of a numeric parameter (in SI units).
    low_open, high_open : bool
        Whether the bounds are excluded.
    choices : sequence or None
        Allowed values of a categorical parameter.
    integer : bool
        Require an integer.
    allow_none : bool
        Accept ``None``.
    convert : callable or None
        Converter for non-numeric parameters (e.g. a string to a feature-map object); it may
        raise :class:`~plastinet.errors.ValidationError`.
    doc : str
        One-line description (used in docs and errors).
    plausible : (float, float) or None
        The range (SI units) in which the value is physiologically plausible (e.g.
        ``PLAUSIBLE["tau_plasticity"]``). A value outside it is accepted but warns once per
        parameter (:class:`~plastinet.errors.ImplausibleValueWarning`), suggesting the unit
        that was probably meant (a bare ``20`` is 20 s, not 20 ms). Default: the range of the
        unit in :data:`UNIT_PLAUSIBLE` (potentials, currents, resistances, rates); for a time
        parameter named ``tau...``, ``PLAUSIBLE["time_constant"]`` (10 us to 10 s); else none.
    quantity : str or None
        SI unit of a parameter with a ``convert`` function whose values are quantities
        (e.g. an array of rates in Hz); model files then require unit strings for it.

    Notes
    -----
    Floats are SI units (s, V, A, S, F, Hz, ohm); strings such as ``"20 ms"`` and brian2 or
    pint quantities are converted. Model files (:mod:`plastinet.io.model_files`) require unit
    strings for every dimensional parameter.
    """

    def __init__(self, default: Any = REQUIRED, *, unit: str | None = "1",
                 low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False,
                 choices: tuple | None = None, integer: bool = False,
                 allow_none: bool = False, convert: Callable[[Any], Any] | None = None,
                 doc: str = "", plausible: tuple[float, float] | None = None,
                 quantity: str | None = None) -> None:
        self.default = default
        self.unit = None if (choices is not None or convert is not None) else unit
        self.quantity = quantity if convert is not None else self.unit
        if plausible is None and self.unit is not None:
            plausible = UNIT_PLAUSIBLE.get(self.unit)
        self.plausible = None if plausible is None else (float(plausible[0]), float(plausible[1]))
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.choices = tuple(choices) if choices is not None else None
        self.integer = integer
        self.allow_none = allow_none
        self.convert = convert
        self.doc = doc
        self.__doc__ = self.describe()
        self.name = "?"
        self.owner = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner.__name__
        if self.plausible is None and self.unit == "s" and name.startswith("tau"):
            self.plausible = PLAUSIBLE["time_constant"]         # undeclared time constants
            self.__doc__ = self.describe()

    def dimensional(self) -> bool:
        """Whether values carry a physical unit (model files then require a unit string)."""
        return self.quantity not in (None, "1")

    def format_default(self) -> str:
        """The default as a user would write it (``"20 ms"``, ``0.01``, ``'all'``, ``REQUIRED``)."""
        d = self.default
        if d is REQUIRED or d is None or isinstance(d, (bool, str)) or self.unit in (None, "1"):
            return repr(d)
        return repr(_format_quantity(d, self.unit)) if isinstance(d, (int, float)) else repr(d)

    def describe(self) -> str:
        """One line for ``help()``: default (with unit), what is allowed, and the description."""
        head = f"default {self.format_default()}"
        if self.unit not in (None, "1"):
            head += f" (SI unit {self.unit})"
        elif self.quantity not in (None, "1"):
            head += f" (values in {self.quantity})"
        unit = self.unit or self.quantity
        if self.plausible is not None and unit is not None:
            head += (f"; plausible {_format_quantity(self.plausible[0], unit)} to "
                     f"{_format_quantity(self.plausible[1], unit)}")
        return f"{self.doc}; {head}" if self.doc else head

    def __repr__(self) -> str:
        return f"<Parameter {self.owner}.{self.name}: {self.describe()}>"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance.__dict__["_params"][self.name]

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__["_params"][self.name] = self.validate(value, type(instance).__name__)

    def allowed(self) -> str:
        """Describe the accepted values in words."""
        if self.choices is not None:
            return "allowed: " + ", ".join(repr(c) for c in self.choices)
        if self.convert is not None:
            return self.doc or "see the documentation"
        parts = ["an integer" if self.integer else "a finite number"]
        if self.unit not in (None, "1"):
            parts.append(f"in {self.unit}")
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        if self.low is not None or self.high is not None:
            parts.append(f"in {lo}{'-inf' if self.low is None else self.low}, "
                         f"{'inf' if self.high is None else self.high}{hi}")
        if self.allow_none:
            parts.append("or None")
        return "expected " + " ".join(parts)

    def validate(self, value: Any, owner: str | None = None) -> Any:
        """Return ``value`` converted and checked, or raise a ValidationError."""
        owner = owner or self.owner
        if value is REQUIRED:
            raise ValidationError(owner, self.name, "<missing>", "this parameter is required; "
                                  + self.allowed())
        if value is None:
            if self.allow_none or (self.choices is not None and None in self.choices):
                return None
            raise ValidationError(owner, self.name, value, self.allowed())
        if self.choices is not None:
            if value not in self.choices:
                raise UnsupportedError(owner, self.name, value, self.allowed())
            return value
        if self.convert is not None:
            converted = self.convert(value)
            if self.plausible is not None and getattr(converted, "size", 0) and getattr(converted, "dtype", None) is not None \
                    and converted.dtype.kind == "f":
                lo, hi = float(converted.min()), float(converted.max())
                if lo < self.plausible[0] or hi > self.plausible[1]:
                    self._warn_implausible(lo if lo < self.plausible[0] else hi, owner)
            return converted
        number = to_si(value, self.unit or "1", name=self.name, owner=owner)
        if not math.isfinite(number):
            raise RangeError(owner, self.name, value, self.allowed())
        if self.integer:
            if number != int(number):
                raise RangeError(owner, self.name, value, self.allowed())
            number = int(number)
            if not -INT64_LIMIT <= number < INT64_LIMIT:      # what numpy sizes and seeds can hold
                raise RangeError(owner, self.name, value, self.allowed() + f" of magnitude below 2**63 = {INT64_LIMIT}")
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            raise RangeError(owner, self.name, value, self.allowed())
        if self.high is not None and (number > self.high or (self.high_open and number == self.high)):
            raise RangeError(owner, self.name, value, self.allowed())
        if self.plausible is not None and not self.plausible[0] <= number <= self.plausible[1]:
            self._warn_implausible(number, owner)
        return number

    def _warn_implausible(self, number: float, owner: str) -> None:
        """Warn once per (owner, parameter) that ``number`` lies outside :attr:`plausible`."""
        key = (owner.split(".")[0], self.name)
        if key in _WARNED:
            return
        _WARNED.add(key)
        unit = self.unit or self.quantity or "1"
        lo, hi = self.plausible  # type: ignore[misc]
        hint = ""
        for prefix, factor in _MEANT.get(unit, ()):
            if lo <= number * factor <= hi and number != 0:
                hint = f"; did you mean '{number:.12g} {prefix}{unit}'?"
                break
        warnings.warn(f"{owner}: {self.name}={_format_quantity(number, unit)} is outside the plausible range "
                      f"{_format_quantity(lo, unit)} to {_format_quantity(hi, unit)}; floats are SI units "
                      f"({unit}){hint} (warned once per parameter)", ImplausibleValueWarning, stacklevel=6)


def _format_quantity(value: float, unit: str) -> str:
    """``value`` (SI) with a readable prefix and up to 12 significant digits: ``"16.8 ms"``."""
    if unit in (None, "1") or value == 0 or not math.isfinite(value):
        return f"{value:.12g}" + ("" if unit in (None, "1") else f" {unit}")
    symbol = format_si(value, unit).split(" ", 1)[1]      # picks the prefix; re-format at full precision
    factor = _SCALE.get(symbol[: -len(unit)], 1.0)
    return f"{value / factor:.12g} {symbol}"


_SCALE = {"": 1.0, "G": 1e9, "M": 1e6, "k": 1e3, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}


class Spec:
    """Base class of specification objects: validated keyword parameters, no maths.

    Subclasses declare class attributes of type :class:`Parameter`. Construction takes those
    parameters as keyword arguments (positional arguments follow declaration order); unknown
    names raise :class:`~plastinet.errors.ValidationError` listing the known ones.
    """

    #: Registry key of the subclass (e.g. ``"delta"``); set by subclasses.
    key: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = cls.signature()      # what help(), IDEs and inspect.signature show

    @classmethod
    def signature(cls) -> inspect.Signature:
        """The constructor's signature, generated from the declared parameters.

        Every parameter is positional-or-keyword (declaration order) with its declared
        default; parameters without a default come first only if they are declared first
        (a later one without a default is shown keyword-only, as Python requires).
        """
        params, keyword_only = [], False
        for name, param in cls.parameters().items():
            default = (inspect.Parameter.empty if param.default is REQUIRED else
                       _format_quantity(param.default, param.unit) if _dimensional_number(param.default, param)
                       else param.default)
            keyword_only = keyword_only or (default is inspect.Parameter.empty and any(
                p.default is not inspect.Parameter.empty for p in params))
            kind = inspect.Parameter.KEYWORD_ONLY if keyword_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
            params.append(inspect.Parameter(name, kind, default=default))
        return inspect.Signature(params)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_params"] = {}
        names = list(self.parameters())
        if len(args) > len(names):
            raise ValidationError(type(self).__name__, "arguments", args,
                                  f"at most {len(names)} positional arguments: {names}")
        for name, value in zip(names, args):
            if name in kwargs:
                raise ValidationError(type(self).__name__, name, value, "given twice")
            kwargs[name] = value
        unknown = set(kwargs) - set(names)
        if unknown:
            bad = sorted(unknown)[0]
            raise ValidationError(type(self).__name__, bad, kwargs[bad],
                                  f"unknown parameter; known parameters: {', '.join(names) or 'none'}")
        for name, param in self.parameters().items():
            setattr(self, name, kwargs.get(name, param.default))
        self._check()

    def _check(self) -> None:
        """Cross-parameter validation; subclasses override to add constraints."""

    @classmethod
    def parameters(cls) -> dict[str, Parameter]:
        """The declared parameters, in declaration order (base classes first)."""
        out: dict[str, Parameter] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                if isinstance(attr, Parameter):
                    out[name] = attr
        return out

    def get_params(self) -> dict[str, Any]:
        """The stored parameter values (SI units), as a new dict."""
        return dict(self.__dict__["_params"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description: ``{"type": key, **params}`` (nested specs as dicts)."""
        params = {k: _jsonable(v) for k, v in self.get_params().items()}
        return {"type": self.key or type(self).__name__, **params}

    def replace(self, **changes: Any) -> "Spec":
        """A copy with some parameters changed (validated again)."""
        return type(self)(**{**self.get_params(), **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.parameters():
            raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        mine, theirs = self.get_params(), other.get_params()  # type: ignore[union-attr]
        return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))

    def __repr__(self) -> str:
        """The class and the parameters that differ from their defaults, with units (``"30 ms"``)."""
        declared = self.parameters()
        shown = [f"{k}={_readable(v, declared[k])}" for k, v in self.get_params().items()
                 if declared[k].default is REQUIRED or not _same(v, declared[k].validate(declared[k].default))]
        return f"{type(self).__name__}({', '.join(shown)})"


def _dimensional_number(value: Any, param: Parameter) -> bool:
    """Whether ``value`` is a plain number of a parameter with a physical unit."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and param.unit not in (None, "1")


def _readable(value: Any, param: Parameter) -> str:
    """``repr`` of a stored value; a dimensional number as a unit string (``'30 ms'``)."""
    if isinstance(value, Spec) and hasattr(value, "name") and not isinstance(value.name, Parameter):
        return f"<{type(value).__name__} {value.name!r}>"
    if _dimensional_number(value, param) and math.isfinite(value):
        return repr(_format_quantity(value, param.unit))
    return repr(value)
