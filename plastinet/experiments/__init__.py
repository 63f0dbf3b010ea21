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


def check_backend(kind_name: str, kind: Kind, backend: str) -> None:
    """Reject a backend the kind cannot run on, naming those it can."""
    if backend not in kind.backends:
        raise UnsupportedError(kind_name, "backend", backend,
                               "this model runs on: " + ", ".join(kind.backends))


from plastinet.experiments import rate_memory as _rate_memory  # noqa: E402  (kinds register themselves)
from plastinet.experiments import spiking_protocols as _spiking_protocols  # noqa: E402
from plastinet.experiments import training_kind as _training_kind  # noqa: E402

__all__ += ["check_backend"]
del _rate_memory, _spiking_protocols, _training_kind
