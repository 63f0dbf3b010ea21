"""Physical units at plastinet's boundary.

Inside plastinet every quantity is a plain float in SI units (s, V, A, S, F, Hz, ohm).
At the API boundary users may give a number (taken as SI), a string such as ``"20 ms"`` or
``"-54 mV"``, a brian2 ``Quantity`` or a pint ``Quantity``; :func:`to_si` converts each of
these exactly once. brian2 is never imported here: its quantities are recognised by duck
typing.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from plastinet.errors import RangeError, UnitError

__all__ = ["to_si", "parse_quantity", "BASE_UNITS", "format_si"]

#: Base units plastinet knows, mapped to their dimension signature
#: (exponents of s, m, kg, A) and their UDUNITS spelling.
BASE_UNITS: dict[str, tuple[tuple[int, int, int, int], str]] = {
    "1": ((0, 0, 0, 0), "1"),
    "s": ((1, 0, 0, 0), "s"),
    "Hz": ((-1, 0, 0, 0), "Hz"),
    "V": ((-3, 2, 1, -1), "V"),
    "A": ((0, 0, 0, 1), "A"),
    "S": ((3, -2, -1, 2), "S"),
    "F": ((4, -2, -1, 2), "F"),
    "ohm": ((-3, 2, 1, -2), "ohm"),
    "m": ((0, 1, 0, 0), "m"),
    "V/s": ((-4, 2, 1, -1), "V/s"),
}

_PREFIXES = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3, "u": 1e-6, "µ": 1e-6,
             "μ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_ALIASES = {"sec": "s", "second": "s", "seconds": "s", "Ohm": "ohm", "Ω": "ohm",
            "siemens": "S", "volt": "V", "amp": "A", "hertz": "Hz", "farad": "F"}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY_RE = re.compile(rf"^\s*({_NUMBER})\s*\*?\s*([A-Za-zµμΩ]*)\s*(?:/\s*([A-Za-zµμΩ]+))?\s*$")


#: An example unit string per base unit, for error messages.
_EXAMPLES = {"s": "20 ms", "Hz": "15 Hz", "V": "-70 mV", "A": "0.5 nA", "S": "10 nS", "F": "200 pF",
             "ohm": "100 Mohm", "m": "1 mm", "V/s": "8 mV/ms"}


def _unit_factor(symbol: str) -> tuple[float, str]:
    """Return ``(factor to SI, base unit)`` for a unit symbol such as ``"ms"``."""
    symbol = _ALIASES.get(symbol, symbol)
    if symbol in ("", "1"):
        return 1.0, "1"
    if symbol in BASE_UNITS:
        return 1.0, symbol
    for prefix, factor in _PREFIXES.items():
        if prefix and symbol.startswith(prefix):
            base = _ALIASES.get(symbol[len(prefix):], symbol[len(prefix):])
            if base in BASE_UNITS and base != "1":
                return factor, base
    raise KeyError(symbol)


def parse_quantity(text: str) -> tuple[float, str]:
    """Parse ``"20 ms"`` into ``(0.02, "s")``: the SI value and its base unit.

    Parameters
    ----------
    text : str
        A number followed by an optional unit symbol with an optional SI prefix
        (``"20 ms"``, ``"-54mV"``, ``"15 Hz"``, ``"1e-3"``), or a quotient of two such symbols
        (``"8 mV/ms"`` is 8 V/s, ``"0.02 /ms"`` is 20 Hz).

    Returns
    -------
    value : float
        The value in SI units.
    unit : str
        The base unit (``"1"`` for a bare number).

    Raises
    ------
    UnitError
        If the text is not a number with a known unit.
    """
    match = _QUANTITY_RE.match(text)
    if match is None:
        raise UnitError("units", "quantity", text, "expected a number and a unit such as '20 ms' or '8 mV/ms'")
    try:
        factor, base = _unit_factor(match.group(2))
        divisor, over = _unit_factor(match.group(3)) if match.group(3) else (1.0, "1")
    except KeyError as err:
        raise UnitError("units", "quantity", text,
                        f"unknown unit {err.args[0]!r}; known base units: "
                        + ", ".join(u for u in BASE_UNITS if u != "1")
                        + " with prefixes k, M, G, m, u, n, p, f, and quotients such as 'mV/ms' or '1/ms'") from None
    if over != "1":
        dims = tuple(a - b for a, b in zip(BASE_UNITS[base][0], BASE_UNITS[over][0]))
        base = next((u for u, (d, _) in BASE_UNITS.items() if d == dims), "")
        if not base:
            raise UnitError("units", "quantity", text,
                            "this quotient of units has no SI base unit plastinet knows; known: "
                            + ", ".join(u for u in BASE_UNITS if u != "1"))
    # scale in decimal, round once: "5 us" gives exactly 5e-06 (5 * 1e-6 would not)
    return float(Decimal(match.group(1)) * Decimal(repr(factor)) / Decimal(repr(divisor))), base


def _digits(value: int) -> str:
    """A short stand-in for a huge integer in messages (its ``repr`` may be thousands of digits)."""
    return f"<an integer of {len(str(abs(value))) if value.bit_length() < 10_000 else 'over 3000'} digits>"


def to_si(value: Any, unit: str, *, name: str = "value", owner: str = "plastinet") -> float:
    """Convert ``value`` to a float in the SI unit ``unit``.

    Parameters
    ----------
    value : float, int, str, brian2 Quantity or pint Quantity
        A bare number is taken to be in SI units already.
    unit : str
        The SI base unit the value must have (a key of :data:`BASE_UNITS`).
    name, owner : str
        Parameter and object names used in error messages.

    Returns
    -------
    float
        The value in SI units.

    Raises
    ------
    UnitError
        If the value carries a unit of another dimension, or cannot be read.
    RangeError
        If the value is an integer too large for a float.
    """
    expected = BASE_UNITS[unit][0]
    wanted = ("expected a dimensionless number (no unit)" if unit == "1" else
              f"expected a quantity in {unit}: a number (SI) or a string such as '{_EXAMPLES.get(unit, '1 ' + unit)}'")
    if isinstance(value, bool):
        raise UnitError(owner, name, value, f"{wanted}, not a bool")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:            # an integer beyond the float range (|x| > 1.8e308)
            raise RangeError(owner, name, _digits(value), "expected a number of magnitude below 1.8e308") from None
    if isinstance(value, str):
        try:
            number, base = parse_quantity(value)
        except UnitError as err:
            raise UnitError(owner, name, value, err.allowed) from None
        if base != "1" and BASE_UNITS[base][0] != expected:
            raise UnitError(owner, name, value, wanted)
        return number  # a bare number in a string is taken as SI, like a bare float
    dim = getattr(value, "dim", None)
    if dim is not None and hasattr(value, "dimensions"):  # brian2 Quantity
        dims = getattr(dim, "_dims", None)  # brian2 order: m, kg, s, A, K, mol, cd
        exps = None if dims is None else (dims[2], dims[0], dims[1], dims[3])
        if exps is None or tuple(int(e) for e in exps) != expected or any(dims[i] for i in (4, 5, 6)):
            raise UnitError(owner, name, value, wanted)
        return float(value.__array__())  # brian2 stores SI values
    if hasattr(value, "magnitude") and hasattr(value, "to"):  # pint Quantity
        target = {"1": "dimensionless", "ohm": "ohm"}.get(unit, unit)
        try:
            return float(value.to(target).magnitude)
        except Exception:
            raise UnitError(owner, name, value, wanted) from None
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise UnitError(owner, name, value, f"expected a number or a quantity in {unit}") from None
    return result


def format_si(value: float, unit: str) -> str:
    """Format an SI value with a readable prefix, e.g. ``format_si(0.02, "s") -> "20 ms"``."""
    if unit == "1" or value == 0 or not math.isfinite(value):
        return f"{value:g}" + ("" if unit == "1" else f" {unit}")
    for prefix, factor in (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3),
                           ("u", 1e-6), ("n", 1e-9), ("p", 1e-12), ("f", 1e-15)):
        if abs(value) >= factor * 0.9999999:
            return f"{value / factor:g} {prefix}{unit}"
    return f"{value:g} {unit}"
