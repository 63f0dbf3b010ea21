"""plastinet: fast weight programmers as plastic rate and spiking networks.

The public API, loaded on first use (so that ``import plastinet`` stays light):

Functions
    :func:`simulate` (run a spiking network on any backend), :func:`load_model` (read and
    validate a model file), :func:`list_models`, :func:`load_result` / :func:`save_result`
    (result files), :func:`load_trained` (a ``plastinet train`` checkpoint for analysis),
    :func:`spike_trains` (the spikes of one population of a result), :func:`to_si`.
Subpackages
    :mod:`~plastinet.spiking` (network specification: populations, projections, rules,
    probes), :mod:`~plastinet.fwp` (fast weight programmers), :mod:`~plastinet.experiments`
    (classic protocols and model kinds), :mod:`~plastinet.analysis`,
    :mod:`~plastinet.plotting`, :mod:`~plastinet.training`, :mod:`~plastinet.tasks`,
    :mod:`~plastinet.io`, :mod:`~plastinet.backends`, :mod:`~plastinet.errors`,
    :mod:`~plastinet.units`.

``dir(plastinet)`` lists all of these.
"""

import importlib as _importlib

from plastinet._version import __version__

#: Public functions and where they live.
_FUNCTIONS = {
    "simulate": "plastinet.simulation",
    "load_model": "plastinet.experiments",
    "list_models": "plastinet.io",
    "load_result": "plastinet.io",
    "save_result": "plastinet.io",
    "load_trained": "plastinet.experiments",
    "spike_trains": "plastinet.spiking",
    "to_si": "plastinet.units",
}
#: Public subpackages and modules.
_MODULES = ("analysis", "backends", "errors", "experiments", "fwp", "io", "plotting", "spiking", "tasks",
            "training", "units")

__all__ = ["__version__", *_FUNCTIONS, *_MODULES]


def __getattr__(name: str):
    if name in _FUNCTIONS:
        return getattr(_importlib.import_module(_FUNCTIONS[name]), name)
    if name in _MODULES:
        return _importlib.import_module(f"plastinet.{name}")
    raise AttributeError(f"module 'plastinet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
