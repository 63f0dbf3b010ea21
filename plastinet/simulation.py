"""The user front door for spiking networks: one call, any backend.

>>> from plastinet import simulate                                  # doctest: +SKIP
>>> ds = simulate(net, 1.0, backend="brian2", target="cython", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any

import xarray as xr

from plastinet.backends import Backend, backend_class, backends_with, get_backend
from plastinet.errors import UnsupportedError, check_numerical_policy

__all__ = ["simulate", "RUN_OPTIONS", "check_run_options", "durable_backends"]

#: The reliability options of a run (arguments of :func:`simulate`), which code that builds
#: and runs networks (the protocols of :mod:`plastinet.experiments.protocols`) takes as an
#: explicit ``run_options`` mapping and passes on.
RUN_OPTIONS = ("on_numerical", "max_rate", "checkpoint_every", "checkpoint_path", "partial_path")


def check_run_options(owner: str, options: Any) -> dict[str, Any]:
    """``options`` (a mapping of :data:`RUN_OPTIONS`, or ``None``) as a dict.

    Raises
    ------
    UnsupportedError
        For a key that is not one of :data:`RUN_OPTIONS`.
    """
    options = dict(options or {})
    for key in options:
        if key not in RUN_OPTIONS:
            raise UnsupportedError(owner, key, options[key], "allowed run options: " + ", ".join(RUN_OPTIONS))
    return options


def durable_backends() -> list[str]:
    """Registered spiking backends whose runs take checkpoints and partial results."""
    return [name for name in backends_with("spiking")
            if {"checkpoint_path", "partial_path"} <= set(inspect.signature(backend_class(name).simulate).parameters)]


def simulate(network: Any, duration: Any, *, backend: str | Backend | None = None, target: str | None = None,
             dt: Any = 1e-4, seed: int | None = None, progress: bool = False, on_numerical: str = "raise",
             max_rate: Any = None, checkpoint_every: Any = None, checkpoint_path: Any = None,
             partial_path: Any = None, chunk_steps: int | None = None, **options: Any) -> xr.Dataset:
    """Simulate a spiking :class:`~plastinet.spiking.Network` on a backend.

    Parameters
    ----------
    network : Network
        The specification (the same object runs on every backend).
    duration : float or str
        Biological time (s).
    backend : str, Backend or None
        Any registered backend with the ``"spiking"`` capability (``"numpy"``, the
        reference engine, is the default; ``"brian2"``), or a configured instance.
    target : str or None
        Code-generation target of backends that have one (brian2: ``"numpy"``,
        ``"cython"``, ``"cpp_standalone"``); ``None`` is the backend's default.
    dt : float or str
        Time step (s).
    seed : int or None
        Seed of the run.
    progress : bool
        Show progress.
    on_numerical : {"raise", "warn"}
        Numerical policy for non-finite states and runaway rates (``docs/reliability.md``).
    max_rate : float or str or None
        Runaway-rate limit (Hz) of LIF neurons; default ``0.5 / dt``.
    checkpoint_every, checkpoint_path, partial_path
        Durable runs (backends that support them, e.g. the reference engine; see
        :meth:`plastinet.spiking.Simulator.run`).
    chunk_steps : int or None
        Steps a backend may advance at once (a performance hint that never changes
        results; backends without it ignore it).
    **options
        Further backend constructor options (e.g. ``poisson="brian2"`` for brian2).

    Returns
    -------
    xarray.Dataset
        The layout of :mod:`plastinet.spiking.recordings`; attrs name the backend (and the
        brian2 target).

    Raises
    ------
    UnsupportedError
        If the backend cannot take one of the reliability arguments given (e.g.
        checkpoints on brian2), naming it.
    """
    check_numerical_policy("simulate", on_numerical)
    if target is not None:
        options["target"] = target
    be = get_backend(backend, **options)
    be.require("spiking")
    extra = {"on_numerical": on_numerical, "max_rate": max_rate, "checkpoint_every": checkpoint_every,
             "checkpoint_path": checkpoint_path, "partial_path": partial_path}
    accepted = inspect.signature(be.simulate).parameters
    kwargs = {}
    for name, value in extra.items():
        if value is None or (name == "on_numerical" and value == "raise" and name not in accepted):
            continue
        if name not in accepted:
            raise UnsupportedError(f"backend {be.name!r}", name, value,
                                   "this backend does not support it"
                                   + ("; checkpoints are a feature of the backends "
                                      + ", ".join(repr(n) for n in durable_backends())
                                      if name.startswith(("checkpoint", "partial")) else ""))
        kwargs[name] = value
    if chunk_steps is not None and "chunk_steps" in accepted:
        kwargs["chunk_steps"] = chunk_steps
    return be.simulate(network, duration, dt=dt, seed=seed, progress=progress, **kwargs)
