"""The exception and warning hierarchy of plastinet.

Every error raised by plastinet's public API derives from :class:`PlastinetError`. Input
problems are :class:`ValidationError` (also a :class:`ValueError`, so generic handlers keep
working); their messages name the object, the parameter, the value given and what is
allowed. Problems that arise *during* a computation (a state that becomes non-finite, a
runaway firing rate) are :class:`NumericalError`; engines take a policy argument
``on_numerical`` (:data:`NUMERICAL_POLICIES`: ``"raise"``, the default, or ``"warn"``, which
issues a :class:`NumericalWarning` with the same message and continues).
A checkpoint that cannot be used (another network, a corrupted file) is a
:class:`CheckpointError`; a result, checkpoint or figure that cannot be written (disk full,
read-only directory) is a :class:`WriteError`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

__all__ = [
    "PlastinetError",
    "ValidationError",
    "ShapeError",
    "DTypeError",
    "NonFiniteError",
    "RangeError",
    "SizeError",
    "UnsupportedError",
    "UnitError",
    "ModelFileError",
    "CheckpointError",
    "NumericalError",
    "BackendError",
    "WriteError",
    "PlastinetWarning",
    "UnstableUpdateWarning",
    "ImplausibleValueWarning",
    "NumericalWarning",
    "RunawayFiringWarning",
    "IndistinguishableWarning",
    "NUMERICAL_POLICIES",
    "check_numerical_policy",
    "report_numerical",
]

#: Values of the ``on_numerical`` argument of every engine and backend.
NUMERICAL_POLICIES = ("raise", "warn")


def _short(value: Any, limit: int = 80) -> str:
    """A compact, one-line ``repr`` of ``value`` for error messages."""
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "size", 1) > 4:
        return f"<array shape={tuple(shape)} dtype={getattr(value, 'dtype', '?')}>"
    if isinstance(value, os.PathLike):            # a path keeps its end: the file's name
        text = os.fspath(value)
        return repr(text) if len(text) <= limit - 2 else repr("..." + text[-(limit - 5):])
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PlastinetError(Exception):
    """Base class of every error plastinet raises on purpose."""


class ValidationError(PlastinetError, ValueError):
    """An input (argument, parameter, model-file entry) is not acceptable.

    Parameters
    ----------
    obj : str
        The object or function that rejected the input, e.g. ``"Delta"`` or ``"fwp.apply"``.
    parameter : str
        The name of the offending parameter or argument.
    value : object
        The value that was given (summarised for arrays).
    allowed : str
        What would have been accepted.
    """

    def __init__(self, obj: str, parameter: str, value: Any, allowed: str) -> None:
        self.obj = obj
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        super().__init__(f"{obj}: invalid {parameter}={_short(value)}; {allowed}")


class ShapeError(ValidationError):
    """An array has the wrong number of dimensions or a mismatched size."""


class DTypeError(ValidationError, TypeError):
    """An array has an unsupported dtype, or arrays that must agree in dtype do not."""


class NonFiniteError(ValidationError):
    """An input contains NaN or infinity."""


class RangeError(ValidationError):
    """A value lies outside the range its parameter allows."""


class SizeError(RangeError):
    """Sizes that make a run need more memory than the machine has available.

    Raised before anything is allocated; the message names the parameter, the memory the run
    needs at least (bytes) and the memory available.

    Parameters
    ----------
    obj, parameter, value, allowed
        As in :class:`ValidationError`.
    need : str, optional
        The sentence on the memory needed and available (kept separately, so that a caller
        can name the parameter differently); default ``allowed``.
    """

    def __init__(self, obj: str, parameter: str, value: Any, allowed: str, need: str | None = None) -> None:
        self.need = allowed if need is None else need
        super().__init__(obj, parameter, value, allowed)


class UnsupportedError(ValidationError):
    """A valid option that this object cannot use (e.g. a form a rule does not have)."""


class UnitError(ValidationError):
    """A quantity has the wrong physical dimension or an unknown unit."""


class ModelFileError(ValidationError):
    """A model file cannot be read or does not describe a valid model.

    The message names the file and the line (syntax errors) or the dotted key (content
    errors) and says what is allowed. Nothing from the file runs before it is validated.

    Parameters
    ----------
    path : str
        The model file.
    key : str
        Dotted key (``"rule.type"``) or ``"line N, column M"``.
    value : object
        The offending value.
    allowed : str
        What would have been accepted.
    """

    def __init__(self, path: str, key: str, value: Any, allowed: str) -> None:
        self.path = path
        self.key = key
        super().__init__(str(path), key, value, allowed)


class CheckpointError(ValidationError):
    """A checkpoint cannot be used: another model or network wrote it, or it is corrupted.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file (or directory).
    what : str
        The entry that does not match (``"network"``, ``"seed"``, ``"format"``, ...).
    value : object
        The offending value.
    allowed : str
        What would have been accepted, or how to proceed.
    """

    def __init__(self, path: Any, what: str, value: Any, allowed: str) -> None:
        self.path = str(path)
        super().__init__(f"checkpoint {path}", what, value, allowed)


class NumericalError(PlastinetError, FloatingPointError):
    """A computation produced a non-finite or runaway state.

    Parameters
    ----------
    message : str
        What went wrong.
    step : int or None
        The (0-based) time step at which it was first detected.
    where : str or None
        Which head / population / projection / variable was affected.
    time : float or None
        Biological time (s) of ``step``, for engines with a time step.
    """

    def __init__(self, message: str, *, step: int | None = None, where: str | None = None,
                 time: float | None = None) -> None:
        self.step = step
        self.where = where
        self.time = time
        super().__init__(message)


class BackendError(PlastinetError, RuntimeError):
    """A backend failed for a reason outside plastinet (e.g. Brian2 could not compile).

    The message says what failed and how to fix or avoid it (e.g. ``target="numpy"``).
    """


class WriteError(PlastinetError, OSError):
    """A file (result, checkpoint, figure) could not be written, e.g. the disk is full.

    No partial file is left at ``path``. When the contents could be kept elsewhere (a
    finished result that failed to save), ``saved_to`` says where.

    Parameters
    ----------
    path : str or os.PathLike
        The file that could not be written.
    reason : str
        Why (the operating system's message).
    saved_to : str or os.PathLike, optional
        Where the contents were saved instead.
    """

    def __init__(self, path: Any, reason: str, saved_to: Any = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.saved_to = None if saved_to is None else str(saved_to)
        where = f"; the result was saved to {self.saved_to} instead" if saved_to is not None else \
            "; nothing was written there"
        super().__init__(f"could not write {self.path} ({reason}){where}")


class PlastinetWarning(UserWarning):
    """Base class of plastinet's warnings."""


class UnstableUpdateWarning(PlastinetWarning):
    """A parameter combination makes an update expanding (e.g. ``beta * ||k||^2 > 2``)."""


class ImplausibleValueWarning(PlastinetWarning):
    """A parameter value is legal but outside the plausible range its declaration states.

    Most often a number meant in ms, mV or nA given as a bare float, which plastinet reads
    in SI units (``tau_plus=20`` is 20 s). Issued once per parameter of each class.
    """


class NumericalWarning(PlastinetWarning):
    """A :class:`NumericalError` reported as a warning (policy ``on_numerical="warn"``)."""


class RunawayFiringWarning(NumericalWarning):
    """Neurons fire faster than is physiologically plausible (above the default ``max_rate``).

    Issued by default (no ``max_rate`` given) once per population; an explicit ``max_rate``
    makes the limit an error or warning under the run's ``on_numerical`` policy.
    """


class IndistinguishableWarning(PlastinetWarning):
    """The data cannot tell several candidate models apart (e.g. rule families of equal fit)."""


def check_numerical_policy(owner: str, value: Any) -> str:
    """Validate an ``on_numerical`` argument.

    Parameters
    ----------
    owner : str
        The function or object that takes the argument (named in the error).
    value : object
        The value given.

    Returns
    -------
    str
        ``value`` (one of :data:`NUMERICAL_POLICIES`).

    Raises
    ------
    UnsupportedError
        For any other value.
    """
    if not isinstance(value, str) or value not in NUMERICAL_POLICIES:
        raise UnsupportedError(owner, "on_numerical", value, "allowed: " + ", ".join(map(repr, NUMERICAL_POLICIES)))
    return value


def report_numerical(policy: str, message: str, *, step: int | None = None, where: str | None = None,
                     time: float | None = None, stacklevel: int = 3) -> None:
    """Raise a :class:`NumericalError` (``policy="raise"``) or warn a :class:`NumericalWarning`.

    Parameters
    ----------
    policy : {"raise", "warn"}
        The caller's validated ``on_numerical``.
    message : str
        What went wrong, where and when, and what to try.
    step, where, time
        As in :class:`NumericalError`.
    stacklevel : int
        Passed to :func:`warnings.warn`.
    """
    if policy == "raise":
        raise NumericalError(message, step=step, where=where, time=time)
    warnings.warn(message, NumericalWarning, stacklevel=stacklevel)
