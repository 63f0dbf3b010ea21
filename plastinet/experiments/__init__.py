"""Experiment kinds: how a validated model file runs and how its result is plotted.

Each model file names a ``kind``; the kind validates the file's tables into a spec
(:meth:`Kind.validate`), runs it on a backend (:meth:`Kind.run`) and draws the standard
figure of its result (:meth:`Kind.plot`). Results record the kind in the ``model_kind``
attribute, so ``plastinet plot`` can draw any saved result.
"""

from __future__ import annotations

from typing import Any, Protocol

from plastinet.errors import UnsupportedError

__all__ = ["Kind", "KINDS", "get_kind", "register_kind"]


class Kind(Protocol):
    """What an experiment kind provides."""

    backends: tuple[str, ...]

    def validate(self, section: Any) -> Any:
        """Validate the model file's tables (a :class:`plastinet.io.Section`) into a spec."""

    def run(self, model: Any, *, backend: str, progress: bool, **options: Any) -> Any:
        """Run a validated :class:`plastinet.io.Model`; return an ``xarray.Dataset``."""

    def plot(self, result: Any, fig: Any = None) -> Any:
        """Draw the standard figure of a result; return the matplotlib Figure."""


KINDS: dict[str, Kind] = {}


def register_kind(name: str, kind: Kind) -> None:
    """Make ``kind`` available to model files as ``kind = "<name>"``."""
    KINDS[name] = kind


def get_kind(name: str) -> Kind:
    """The registered kind ``name``."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnsupportedError("plastinet", "kind", name, "known kinds: " + ", ".join(KINDS)) from None


def check_backend(kind_name: str, kind: Kind, backend: Any) -> None:
    """Reject a backend the kind cannot run on, naming those it can.

    Parameters
    ----------
    kind_name : str
        Name used in the message (the model's name).
    kind : Kind
        The experiment kind.
    backend : str or Backend
        The requested backend.
    """
    name = backend if isinstance(backend, str) else getattr(backend, "name", str(backend))
    if name not in kind.backends:
        kinds = [k for k, v in KINDS.items() if name in v.backends]
        where = (f"; the {name} backend runs models of kind " + ", ".join(repr(k) for k in kinds)) if kinds else ""
        raise UnsupportedError(kind_name, "backend", name,
                               "this model runs on: " + ", ".join(kind.backends) + where)


def resolve_backend(model_name: str, kind: Kind, backend: Any = "numpy",
                    target: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The backend object a model runs on, and the result attributes that describe it.

    Parameters
    ----------
    model_name : str
        The model (for error messages).
    kind : Kind
        Its experiment kind (declares the backends it supports).
    backend : str or Backend
        ``"numpy"``, ``"brian2"`` or a configured :class:`~plastinet.backends.Backend`.
    target : str, optional
        Brian2 code-generation target (``"numpy"``, ``"cython"``, ``"cpp_standalone"``);
        only meaningful with ``backend="brian2"``.

    Returns
    -------
    backend : Backend
        The instantiated backend.
    attrs : dict
        ``backend``, ``backend_version`` and, for brian2, ``brian2_target``.

    Raises
    ------
    UnsupportedError
        If the kind cannot run on the backend, or ``target`` is given for a backend
        without code-generation targets.
    """
    from plastinet.backends import get_backend

    check_backend(model_name, kind, backend)
    name = backend if isinstance(backend, str) else backend.name
    if target is not None and name != "brian2":
        raise UnsupportedError(model_name, "target", target,
                               "code-generation targets belong to the brian2 backend; use backend 'brian2' or drop the target")
    be = get_backend(backend, **({"target": target} if target is not None else {}))
    attrs: dict[str, Any] = {"backend": be.name, "backend_version": be.version}
    if getattr(be, "target", None) is not None:
        attrs["brian2_target"] = be.target
    return be, attrs


from plastinet.experiments import rate_memory as _rate_memory  # noqa: E402  (kinds register themselves)
from plastinet.experiments import rule_inference_kind as _rule_inference  # noqa: E402
from plastinet.experiments import spiking_protocols as _spiking_protocols  # noqa: E402
from plastinet.experiments import training_kind as _training_kind  # noqa: E402

__all__ += ["check_backend", "resolve_backend"]
del _rate_memory, _rule_inference, _spiking_protocols, _training_kind
