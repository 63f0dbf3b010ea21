"""The registry of experiment kinds, and the backend a kind runs on."""

from __future__ import annotations

from typing import Any, Protocol

from plastinet.backends import backend_class, backend_targets, backends_with, get_backend
from plastinet.errors import UnsupportedError

__all__ = ["Kind", "KINDS", "get_kind", "register_kind", "check_backend", "kind_backends", "resolve_backend",
           "plot_result"]


class Kind(Protocol):
    """What an experiment kind provides."""

    #: The backend capability the kind needs (see :class:`plastinet.backends.Backend`).
    capability: str

    def validate(self, section: Any) -> Any:
        """Validate the model file's tables (a :class:`plastinet.io.Section`) into a spec."""

    def run(self, model: Any, *, backend: Any, progress: bool, **options: Any) -> Any:
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


def kind_backends(kind: Kind) -> list[str]:
    """Names of the registered backends a kind runs on (those with its capability)."""
    return backends_with(kind.capability)


def check_backend(kind_name: str, kind: Kind, backend: Any) -> None:
    """Reject a backend the kind cannot run on, naming those it can.

    Parameters
    ----------
    kind_name : str
        Name used in the message (the model's name).
    kind : Kind
        The experiment kind.
    backend : str, Backend or None
        The requested backend (``None``: the default backend).
    """
    cls = type(get_backend(backend)) if backend is None or not isinstance(backend, str) else backend_class(backend)
    if kind.capability not in cls.capabilities:
        kinds = [k for k, v in KINDS.items() if v.capability in cls.capabilities]
        where = (f"; the {cls.name} backend runs models of kind " + ", ".join(repr(k) for k in kinds)) if kinds else ""
        raise UnsupportedError(kind_name, "backend", cls.name,
                               "this model runs on: " + ", ".join(kind_backends(kind)) + where)


def resolve_backend(model_name: str, kind: Kind, backend: Any = None,
                    target: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The backend object a model runs on, and the result attributes that describe it.

    Parameters
    ----------
    model_name : str
        The model (for error messages).
    kind : Kind
        Its experiment kind (declares the capability it needs).
    backend : str, Backend or None
        A registered backend name, a configured :class:`~plastinet.backends.Backend`, or
        ``None`` (the default backend).
    target : str, optional
        Code-generation target, for backends that have them (:attr:`Backend.targets`;
        brian2: ``"numpy"``, ``"cython"``, ``"cpp_standalone"``).

    Returns
    -------
    backend : Backend
        The instantiated backend.
    attrs : dict
        ``backend``, ``backend_version`` and, for backends with targets, ``brian2_target``.

    Raises
    ------
    UnsupportedError
        If the kind cannot run on the backend, or ``target`` is given for a backend
        without code-generation targets.
    """
    check_backend(model_name, kind, backend)
    cls = backend_class(backend) if isinstance(backend, str) else type(get_backend(backend))
    if target is not None and not cls.targets:
        raise UnsupportedError(model_name, "target", target,
                               "code-generation targets belong to the backends "
                               + ", ".join(repr(n) for n in backend_targets())
                               + "; use one of them or drop the target")
    be = get_backend(backend, **({"target": target} if target is not None else {}))
    attrs: dict[str, Any] = {"backend": be.name, "backend_version": be.version}
    if getattr(be, "target", None) is not None:
        attrs["brian2_target"] = be.target
    return be, attrs


def plot_result(result: Any, fig: Any = None) -> Any:
    """The standard figure of a saved result of any kind; a sweep is drawn one panel per grid point.

    Parameters
    ----------
    result : xarray.Dataset
        A model's result (its ``model_kind`` attribute names the kind), a sweep's combined
        result (:func:`plastinet.sweep.sweep`; :func:`plastinet.plotting.plot_sweep` draws it)
        or any spiking run (:func:`plastinet.simulate`; drawn by
        :func:`plastinet.plotting.plot_spiking_overview`).
    fig : matplotlib.figure.Figure, optional
        Figure to draw into.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValidationError
        If the result is neither a model's result nor a spiking run.
    UnsupportedError
        If it names an unknown kind.
    """
    from plastinet.errors import ValidationError
    from plastinet.plotting.spiking import is_spiking_result, plot_spiking_overview
    from plastinet.plotting.sweeps import plot_sweep, sweep_dims

    kind = result.attrs.get("model_kind")
    if kind:
        draw = get_kind(str(kind)).plot
    elif is_spiking_result(result):
        draw = plot_spiking_overview
    else:
        raise ValidationError("plot_result", "result", result.attrs.get("model_name", "dataset"),
                              "not a plastinet model result (no 'model_kind' attribute) nor a spiking run "
                              "(no spike table, probes or final weights)")
    return plot_sweep(result, draw, fig) if sweep_dims(result) else draw(result, fig)
