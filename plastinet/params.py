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

import math
from typing import Any, Callable, ClassVar

from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.units import to_si

__all__ = ["Parameter", "Spec", "REQUIRED"]


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
    """

    def __init__(self, default: Any = REQUIRED, *, unit: str | None = "1",
                 low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False,
                 choices: tuple | None = None, integer: bool = False,
                 allow_none: bool = False, convert: Callable[[Any], Any] | None = None,
                 doc: str = "") -> None:
        self.default = default
        self.unit = None if (choices is not None or convert is not None) else unit
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.choices = tuple(choices) if choices is not None else None
        self.integer = integer
        self.allow_none = allow_none
        self.convert = convert
        self.doc = doc
        self.name = "?"
        self.owner = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner.__name__

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
            return self.convert(value)
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
        return number


class Spec:
    """Base class of specification objects: validated keyword parameters, no maths.

    Subclasses declare class attributes of type :class:`Parameter`. Construction takes those
    parameters as keyword arguments (positional arguments follow declaration order); unknown
    names raise :class:`~plastinet.errors.ValidationError` listing the known ones.
    """

    #: Registry key of the subclass (e.g. ``"delta"``); set by subclasses.
    key: ClassVar[str] = ""

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
        defaults = self.parameters()
        shown = [f"{k}={v!r}" for k, v in self.get_params().items()
                 if defaults[k].default is REQUIRED or not _same(v, defaults[k].validate(defaults[k].default))]
        return f"{type(self).__name__}({', '.join(shown)})"
