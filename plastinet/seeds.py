"""Seeds: what plastinet accepts as a seed, and how it draws one.

A seed is any integer ``>= 0``, of any size (what :class:`numpy.random.SeedSequence`
accepts); it is used exactly as given (never through a float, which would round seeds above
``2**53``) and stored exactly in results (:func:`plastinet.io.save_result` keeps integers
beyond 32 bits as decimal strings). ``seed=None`` draws a fresh seed (below ``2**63``) that is
recorded, so passing it back reproduces the run.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from plastinet.errors import RangeError, ValidationError
from plastinet.params import Parameter

__all__ = ["check_seed", "new_seed", "seed_parameter"]

_ALLOWED = "expected an integer >= 0 (any size)"


def check_seed(owner: str, seed: Any, *, allow_none: bool = True) -> int | None:
    """Validate a seed argument.

    Parameters
    ----------
    owner : str
        The function or object that takes the seed (named in the error).
    seed : object
        The value given.
    allow_none : bool
        Accept ``None`` (returned as is: the caller draws a seed).

    Returns
    -------
    int or None
        ``seed`` as a Python int.

    Raises
    ------
    ValidationError
        For anything but an integer (bools, floats, strings...).
    RangeError
        For a negative integer.
    """
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValidationError(owner, "seed", seed, _ALLOWED + (" or None" if allow_none else ""))
    if seed < 0:
        raise RangeError(owner, "seed", seed, _ALLOWED)
    return int(seed)


def new_seed() -> int:
    """A seed drawn from fresh operating-system entropy, in ``[0, 2**63)``."""
    return int(np.random.SeedSequence().entropy % (2 ** 63))


class _SeedParameter(Parameter):
    """A seed parameter: validated by :func:`check_seed`, never converted through a float."""

    def validate(self, value: Any, owner: str | None = None) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)      # a float seed is what it is (no rounding added here)
        return check_seed(owner or self.owner, value, allow_none=False)


def seed_parameter(default: int = 0, doc: str = "random seed") -> Parameter:
    """A :class:`~plastinet.params.Parameter` for a seed of a spec or model file.

    Accepts what :func:`check_seed` accepts (and integral floats), used exactly: unlike a
    numeric parameter it never passes through a float.
    """
    return _SeedParameter(default, low=0, integer=True, doc=doc)
