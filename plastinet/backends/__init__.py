"""Backends: the engines that run plastinet models, found by name.

A backend is an object with a ``name``, a ``version``, a set of ``capabilities`` and the
methods those capabilities promise (see :class:`Backend`). ``"numpy"`` (the reference),
``"brian2"`` and ``"nest"`` (with the ``nest`` extra) ship with plastinet; third-party packages add their own through the
``plastinet.backends`` entry-point group, as Nengo and xarray do::

    [project.entry-points."plastinet.backends"]
    mybackend = "mypackage.backend:MyBackend"

The backend-compliance suite (:mod:`plastinet.testing`) runs the same checks against any
backend and reports missing capabilities as skips with a reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, ClassVar

from plastinet.errors import UnsupportedError

__all__ = ["Backend", "get_backend", "available_backends", "backend_class", "backend_targets", "backends_with", "BUILTIN", "DEFAULT_BACKEND"]

#: Backends shipped with plastinet (also registered as entry points).
BUILTIN = {
    "numpy": "plastinet.backends.numpy_backend:NumpyBackend",
    "brian2": "plastinet.backends.brian2:Brian2Backend",
    "nest": "plastinet.backends.nest:NestBackend",
}
#: The backend used when none is named: the reference engine.
DEFAULT_BACKEND = "numpy"


class Backend(ABC):
    """Interface of a plastinet backend.

    Capabilities (strings in :attr:`capabilities`) and the method each one promises:

    ``"rate_fwp"``
        ``apply_fwp(rule, q, k, v, *, beta=None, alpha=None, modulator=None,
        initial_state=None, form=None) -> (y, W_final)`` with the semantics and shapes of
        :func:`plastinet.fwp.apply`; ``rate_rules`` lists the rule classes supported;
        ``form`` names the evaluation form a backend with several forms should use
        (backends with one form ignore it).
    ``"spiking"``
        ``simulate(network, duration, *, dt=1e-4, seed=None, progress=False) -> Dataset``:
        run a :class:`plastinet.spiking.Network` and return the Dataset layout of the numpy
        engine (:mod:`plastinet.spiking.recordings`), with the global attrs ``backend``,
        ``backend_version``, ``dt`` and ``seed``. Backends should also take
        ``on_numerical`` (``"raise"``/``"warn"``) and ``max_rate`` (the numerical guard,
        ``docs/reliability.md``); the numpy backend also takes ``checkpoint_every``,
        ``checkpoint_path`` and ``partial_path``, and ``chunk_steps`` (steps advanced at
        once; a performance hint that never changes results). A backend may also define
        ``unsupported(network) -> str | None`` naming a feature it cannot lower (the
        compliance suite then skips with that reason).
    ``"reference"``
        The backend is plastinet's own reference engine: the experiment kinds that compute
        with plastinet's numpy code (training, rule inference) run only there.

    A backend with code-generation targets lists them in :attr:`targets` and takes a
    ``target`` constructor argument.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    rate_rules: ClassVar[tuple[type, ...]] = ()
    targets: ClassVar[tuple[str, ...]] = ()

    @property
    @abstractmethod
    def version(self) -> str:
        """Version of the engine behind the backend."""

    @classmethod
    def prepare_process(cls) -> None:
        """Prepare a worker process's main thread before it runs tasks (default: nothing).

        Called by :func:`plastinet.sweep.sweep` on every worker; a backend whose engine
        must be imported in the main thread (brian2 installs a signal handler) does it here.
        """

    @classmethod
    def diagnostics(cls, *, compile: bool = True) -> list[str]:
        """Lines ``plastinet info`` prints about the backend's toolchain (default: none).

        ``compile=False`` (``plastinet info --no-compile``) asks for checks without builds.
        """
        return []

    def supports(self, capability: str) -> bool:
        """Whether the backend declares ``capability``."""
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        """Raise :class:`UnsupportedError` unless the backend declares ``capability``."""
        if capability not in self.capabilities:
            raise UnsupportedError(f"backend {self.name!r}", "capability", capability,
                                   "this backend provides: " + ", ".join(sorted(self.capabilities)))

    def __repr__(self) -> str:
        return f"<plastinet backend {self.name!r}>"


def _registered() -> dict[str, str]:
    """Registered backends by name: the built-in ones first, then entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group="plastinet.backends"):
        found.setdefault(ep.name, ep.value)
    return found


def available_backends() -> list[str]:
    """Names of all registered backends (importable or not)."""
    return sorted(_registered())


def backend_class(name: str) -> type[Backend]:
    """The class of the registered backend ``name`` (imported, not instantiated).

    Raises
    ------
    UnsupportedError
        If no backend has that name, or its package cannot be imported.
    """
    registry = _registered()
    if name not in registry:
        raise UnsupportedError("plastinet", "backend", name, "registered backends: " + ", ".join(sorted(registry)))
    module, _, attr = registry[name].partition(":")
    try:
        return getattr(import_module(module), attr)
    except ImportError as err:
        raise UnsupportedError("plastinet", "backend", name,
                               f"the backend could not be imported ({err}); is its package installed?") from None


def backends_with(capability: str) -> list[str]:
    """Names of the registered backends that declare ``capability`` (importable ones only)."""
    names = []
    for name in _registered():
        try:
            cls = backend_class(name)
        except UnsupportedError:
            continue
        if capability in cls.capabilities:
            names.append(name)
    return names


def backend_targets() -> dict[str, tuple[str, ...]]:
    """Code-generation targets of the registered (importable) backends that have them."""
    found = {}
    for name in _registered():
        try:
            cls = backend_class(name)
        except UnsupportedError:
            continue
        if cls.targets:
            found[name] = cls.targets
    return found


def get_backend(name: str | Backend | None = None, **options: Any) -> Backend:
    """The backend called ``name`` (a :class:`Backend` instance passes through).

    Parameters
    ----------
    name : str, Backend or None
        Registered backend name, e.g. ``"numpy"`` or ``"brian2"``; ``None`` is
        :data:`DEFAULT_BACKEND`.
    **options
        Passed to the backend's constructor (e.g. ``target="cython"`` for brian2).
    """
    if isinstance(name, Backend):
        return name
    return backend_class(DEFAULT_BACKEND if name is None else name)(**options)
